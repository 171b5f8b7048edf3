# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_ledger/metadata.py over an in-memory metadata store."""

from __future__ import annotations

import pathlib

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import TransportError
from ansible_collections.vmjobs.qemu.plugins.module_utils._ledger.metadata import (
    MetadataLedger,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt.metaxml import (
    decode_jobs,
    encode_jobs,
)

SCOPE = 'libvirt:qemu:///system#vm1'


class Store:
    """The domain's metadata element as text; ``gone`` makes it unreachable like a domain
    that has left."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.gone = False
        self.writes = 0
        self.job = False

    def read_metadata(self) -> str | None:
        if self.gone:
            raise TransportError("domain 'vm1' not found")
        return self.text

    def write_metadata(self, text: str | None) -> None:
        if self.gone:
            raise TransportError("domain 'vm1' not found")
        assert not self.job, 'libvirt would block until the domain job ends'
        self.text = text
        self.writes += 1

    def domain_job_running(self) -> bool:
        return self.job


class Clock:
    def __init__(self) -> None:
        self.now = 1_763_700_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: pathlib.Path, store: Store, clock: Clock) -> MetadataLedger:
    return MetadataLedger(store, str(tmp_path / 'root'), SCOPE, 1.0, clock)


def test_records_live_in_the_metadata(ledger: MetadataLedger, store: Store) -> None:
    assert ledger.get('copy1') is None and ledger.all() == []
    put = ledger.put({'name': 'copy1', 'type': 'mirror', 'state': 'starting',
                      'params': {'device': 'vda'}})
    assert put['scope'] == SCOPE and put['created'] == put['updated'] == 1_763_700_000.0
    assert decode_jobs(store.text) == [put]
    assert ledger.update('copy1', state='started')['state'] == 'started'
    assert ledger.update('nope', state='x') is None
    ledger.put({'name': 'a', 'type': 'stream'})
    assert [r['name'] for r in ledger.all()] == ['a', 'copy1']
    assert ledger.delete('copy1') and not ledger.delete('copy1')
    assert [r['name'] for r in ledger.all()] == ['a']
    assert ledger.delete('a') and store.text is None, 'no empty element is left behind'
    assert not (pathlib.Path(ledger.directory) / 'copy1.json').exists()


def test_migrations_are_kept_on_the_host_too(ledger: MetadataLedger, store: Store) -> None:
    ledger.put({'name': 'move', 'type': 'migration', 'state': 'started'})
    ledger.put({'name': 'copy1', 'type': 'mirror', 'state': 'started'})
    store.gone = True
    assert [r['name'] for r in ledger.all()] == ['move'], 'the host remembers migrations only'
    assert ledger.update('move', last={'outcome': 'succeeded'})['last'] == {'outcome': 'succeeded'}
    assert ledger.get('move')['last']['outcome'] == 'succeeded'
    assert ledger.get('copy1') is None
    with pytest.raises(TransportError, match="the domain is gone; cannot record job 'copy1'"):
        ledger.put({'name': 'copy1', 'type': 'mirror'})
    assert ledger.delete('move') and ledger.all() == []


def test_prune_drops_old_tombstones(ledger: MetadataLedger, clock: Clock) -> None:
    ledger.put({'name': 'old', 'type': 'mirror', 'state': 'dismissed'})
    ledger.put({'name': 'live', 'type': 'mirror', 'state': 'started'})
    clock.now += 0.5 * 86400
    ledger.put({'name': 'young', 'type': 'mirror', 'state': 'dismissed'})
    clock.now += 0.6 * 86400
    assert ledger.prune() == ['old']
    assert [r['name'] for r in ledger.all()] == ['live', 'young']


def test_lock_is_reentrant(ledger: MetadataLedger, store: Store) -> None:
    with ledger.lock():
        with ledger.lock():
            ledger.put({'name': 'x', 'type': 'mirror'})
        ledger.update('x', state='started')
    with ledger.lock():
        assert ledger.get('x')['state'] == 'started'
    assert store.writes == 2


def test_names_are_checked(ledger: MetadataLedger) -> None:
    with pytest.raises(ValueError):
        ledger.get('1bad')
    with pytest.raises(ValueError):
        ledger.put({'name': 'bad name'})


def test_changes_wait_on_the_host_while_a_domain_job_runs(ledger: MetadataLedger, store: Store,
                                                          clock: Clock) -> None:
    ledger.put({'name': 'bk', 'type': 'backup', 'state': 'starting'})
    ledger.put({'name': 'old', 'type': 'mirror', 'state': 'dismissed'})
    store.job = True
    clock.now += 1
    ledger.update('bk', state='started')
    ledger.put({'name': 'new', 'type': 'stream', 'state': 'starting'})
    assert ledger.delete('old')
    assert {r['name']: r['state'] for r in ledger.all()} == {'bk': 'started', 'new': 'starting'}
    assert ledger.get('bk')['scope'] == SCOPE
    assert [r['name'] for r in decode_jobs(store.text)] == ['bk', 'old'], 'metadata untouched'
    store.job = False
    clock.now += 1
    ledger.update('new', state='started')
    states = {r['name']: r['state'] for r in decode_jobs(store.text)}
    assert states == {'bk': 'started', 'new': 'started'}
    assert ledger.pending.all() == []


def test_a_newer_metadata_record_wins_over_a_pending_one(ledger: MetadataLedger, store: Store,
                                                         clock: Clock) -> None:
    store.job = True
    ledger.put({'name': 'bk', 'type': 'backup', 'state': 'starting'})
    store.job = False
    clock.now += 1
    store.text = encode_jobs([{'name': 'bk', 'type': 'backup', 'state': 'started',
                               'updated': clock.now}])
    assert ledger.get('bk')['state'] == 'started'
