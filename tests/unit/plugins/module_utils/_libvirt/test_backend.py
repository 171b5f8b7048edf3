# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_libvirt/backend.py over a scripted domain.

The domain answers with XML and replies recorded from libvirt 9.0
(``tests/unit/fixtures/libvirt/``) and records every call, so the tests check
which libvirt calls (with which flags) each job operation makes.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _targets
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import route as _route
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.observer import (
    Observer,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    BackendError,
    InvalidArgument,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._ledger.metadata import (
    MetadataLedger,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    binding as _libvirt,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    domxml as _libvirt_xml,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt.backend import (
    LibvirtBackend,
    LibvirtSession,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt.metaxml import (
    decode_jobs,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.shapes import (
    ledger_entry,
)

FIXTURES = pathlib.Path(__file__).parents[4] / 'unit' / 'fixtures' / 'libvirt'
DIR = '/tmp/vjrec'
Record = dict[str, t.Any]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


class FakeDomain:
    """Answers ``call`` from scripted replies; keeps the metadata element."""

    def __init__(self) -> None:
        self.live_xml = fixture('domain-chain.xml')
        self.inactive_xml = fixture('domain-chain.xml')
        self.jobs: dict[str, Record] = {}
        self.stats: Record = json.loads(fixture('jobstats-none.json'))
        self.completed: Record = json.loads(fixture('jobstats-none.json'))
        self.is_persistent = False
        self.calls: list[tuple[t.Any, ...]] = []
        self.metadata_text: str | None = None
        self.refuse: dict[str, BackendError] = {}

    def call(self, command: str, *args: t.Any) -> t.Any:
        self.calls.append((command, *args))
        if command in self.refuse:
            raise self.refuse[command]
        if command == 'blockJobInfo':
            return self.jobs.get(args[0], {})
        if command == 'jobStats':
            return self.completed if args[0] & _libvirt.JOB_STATS_COMPLETED else self.stats
        return 0

    def xml(self, inactive: bool = False) -> str:
        return self.inactive_xml if inactive else self.live_xml

    def persistent(self) -> bool:
        return self.is_persistent

    def active(self) -> bool:
        return True


class FakeConnection:
    def __init__(self, domain: FakeDomain) -> None:
        self.domain = domain
        self.defined: list[str] = []
        self.queue: collections.deque[Record] = collections.deque()

    def wait_event(self, timeout: float) -> Record | None:
        return self.queue.popleft() if self.queue else None

    def define(self, xml: str) -> None:
        self.defined.append(xml)

    def drain(self) -> list[Record]:
        events = list(self.queue)
        self.queue.clear()
        return events


class Store:
    def __init__(self, domain: FakeDomain) -> None:
        self.domain = domain

    def read_metadata(self) -> str | None:
        return self.domain.metadata_text

    def write_metadata(self, text: str | None) -> None:
        self.domain.metadata_text = text

    def domain_job_running(self) -> bool:
        return False


class FakeTargets:
    """Target files on paper: the checks of ``_targets`` without the file system."""

    def __init__(self) -> None:
        self.made: list[tuple[str, int | None]] = []
        self.race = False
        self.formatted: list[tuple[str, str, int, tuple[str, str] | None]] = []

    def check(self, job: str, path: str, what: str = 'target') -> _targets.Target:
        directory = os.path.dirname(path)
        if directory != DIR and not os.path.isdir(directory):
            raise InvalidArgument(f"job '{job}': the directory {directory} of {what} {path} "
                                  'does not exist', job)
        return _targets.Target(path, False)

    def create(self, job: str, path: str, mode: int | None = None,
               qemu: tuple[int, int] | None = None) -> None:
        if self.race:
            raise _targets.TargetRace(f"job '{job}': target {path} appeared", job)
        self.made.append((path, mode))

    def format(self, job: str, path: str, fmt: str, size: int,
               backing: tuple[str, str] | None = None) -> None:
        self.formatted.append((path, fmt, size, backing))


@pytest.fixture
def targets() -> FakeTargets:
    return FakeTargets()


@pytest.fixture
def domain() -> FakeDomain:
    return FakeDomain()


@pytest.fixture
def session(domain: FakeDomain, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
            targets: FakeTargets) -> LibvirtSession:
    monkeypatch.setattr('ansible_collections.vmjobs.qemu.plugins.module_utils.'
                        '_libvirt.reading.SETTLE_SECONDS', 0.0)
    backend = LibvirtBackend('qemu:///system', 'vm1')
    backend.targets = t.cast(t.Any, targets)
    session = LibvirtSession(t.cast(t.Any, FakeConnection(domain)), backend)
    return session


@pytest.fixture
def ledger(domain: FakeDomain, tmp_path: pathlib.Path) -> MetadataLedger:
    return MetadataLedger(Store(domain), str(tmp_path), 'libvirt:qemu:///system#vm1')


def look(session: LibvirtSession, ledger: MetadataLedger) -> list[Record]:
    """Read the records as the job client does: the session knows the ledger's entries,
    and the observer keeps the outcomes libvirt tells only once."""
    session.know(ledger.all())
    records = session.records()
    Observer(session.backend, t.cast(t.Any, ledger)).keep_ended(session.ended())
    return records


def steer(session: LibvirtSession, ledger: MetadataLedger, name: str, verb: str,
          **arguments: t.Any) -> None:
    """Apply a verb as the job client does (a job started elsewhere is adopted)."""
    observer = Observer(session.backend, t.cast(t.Any, ledger))
    _route.apply(session, t.cast(t.Any, ledger), name, verb, observer.adopt, **arguments)


def block_params(**values: t.Any) -> Record:
    params = dict.fromkeys(('device', 'base', 'top', 'target', 'target_format', 'sync',
                            'bitmap', 'bitmap_mode', 'speed', 'on_error', 'granularity',
                            'buf_size', 'size'))
    params.update(reuse_target=False, auto_dismiss=False, auto_finalize=True)
    params.update(values)
    return params


def started(session: LibvirtSession, ledger: MetadataLedger, name: str,
            params: Record) -> list[Record]:
    """Start through the session the way the job client does: entry first, notes, started."""
    session.know(ledger.all())
    ledger.put(ledger_entry(name, params['type'], params, 1.0))
    notes: list[Record] = []

    def note(**facts: t.Any) -> None:
        notes.append(facts)
        ledger.update(name, **facts)
    session.start(name, params, note)
    ledger.update(name, state='started')
    session.know(ledger.all())  # as the client's next look tells it
    return notes


def test_copy_of_a_persistent_domain_is_a_transient_job(
        session: LibvirtSession, ledger: MetadataLedger, domain: FakeDomain, tmp_path: pathlib.Path,
        targets: FakeTargets) -> None:
    domain.is_persistent = True
    target = str(tmp_path / 'copy.qcow2')
    notes = started(session, ledger, 'copy1', block_params(type='mirror', device='vda', target=target,
                                                           speed=1 << 20, sync='top'))
    command, disk, xml, typed, flags = domain.calls[-1]
    assert (command, disk, typed) == ('blockCopy', 'vda', {'bandwidth': 1 << 20})
    assert flags == (_libvirt.BLOCK_COPY_SHALLOW | _libvirt.BLOCK_COPY_TRANSIENT_JOB
                     | _libvirt.BLOCK_COPY_REUSE_EXT), 'the collection made the file'
    assert target in xml
    assert targets.made == [(target, None)]
    assert targets.formatted == [(target, 'qcow2', 0, (f'{DIR}/mid.qcow2', 'qcow2'))]
    assert notes == [{'disk': 'vda', 'libvirt_type': 'copy', 'chain': [
        f'{DIR}/top.qcow2', f'{DIR}/mid.qcow2', f'{DIR}/base.qcow2'], 'expect_source': target,
        'target_format': 'qcow2', 'transient_job': True, 'created_files': [target]}]


@pytest.mark.parametrize('params', [
    block_params(type='mirror', device='vda', target=f'{DIR}/copy.qcow2'),
    block_params(type='backup', device='vda', target=f'{DIR}/b.qcow2'),
])
def test_a_target_that_appeared_is_not_noted_as_ours(
        session: LibvirtSession, domain: FakeDomain, targets: FakeTargets, params: Record) -> None:
    targets.race = True
    notes: list[Record] = []
    with pytest.raises(_targets.TargetRace):
        session.start('j1', params, lambda **facts: notes.append(facts))
    assert notes[-1].get('created_file', 'none') is None or notes[-1].get('created_files') == []
    assert not [c for c in domain.calls if c[0] in ('blockCopy', 'backupBegin')]


def test_running_jobs_are_named_from_the_metadata(
        session: LibvirtSession, ledger: MetadataLedger, domain: FakeDomain, tmp_path: pathlib.Path) -> None:
    started(session, ledger, 'copy1', block_params(type='mirror', device='vda',
                                                   target=f'{DIR}/copy.qcow2'))
    domain.live_xml = fixture('domain-copy-ready.xml')
    domain.jobs = {'vda': json.loads(fixture('blockjobinfo-copy-ready.json')),
                   'vdb': {'type': 1, 'cur': 0, 'end': 8, 'bandwidth': 0}}
    records = {r['name']: r for r in look(session, ledger)}
    assert set(records) == {'copy1', 'libvirt-vdb-pull'}
    assert records['copy1']['status'] == 'ready'
    assert records['libvirt-vdb-pull']['type'] == 'stream'


def test_an_ended_copy_is_concluded_and_its_outcome_kept(
        session: LibvirtSession, ledger: MetadataLedger, domain: FakeDomain) -> None:
    started(session, ledger, 'copy1', block_params(type='mirror', device='vda',
                                                   target=f'{DIR}/copy.qcow2'))
    domain.live_xml = fixture('domain-after-pivot.xml')
    (record,) = look(session, ledger)
    assert (record['name'], record['status']) == ('copy1', 'concluded')
    assert record['outcome'] == 'succeeded'
    kept = decode_jobs(domain.metadata_text)[0]
    assert kept['last']['outcome'] == 'succeeded'
    domain.live_xml = fixture('domain-chain.xml')  # later changes do not rewrite history
    assert look(session, ledger)[0]['outcome'] == 'succeeded'


def test_a_copy_that_ended_without_pivot_failed_unless_canceled(
        session: LibvirtSession, ledger: MetadataLedger, domain: FakeDomain) -> None:
    started(session, ledger, 'copy1', block_params(type='mirror', device='vda',
                                                   target=f'{DIR}/copy.qcow2'))
    session.conn.queue.append({'event': 'block-job', 'disk': 'vda', 'type': 'copy',  # type: ignore[attr-defined]
                               'status': 'canceled'})
    assert session.events() == [{'event': 'BLOCK_JOB_CANCELLED', 'data': {'device': 'copy1'}}]
    assert look(session, ledger)[0]['outcome'] == 'canceled'


def test_commit_and_pull_calls(session: LibvirtSession, ledger: MetadataLedger, domain: FakeDomain) -> None:
    notes = started(session, ledger, 'c1', block_params(type='commit', device='vda',
                                                        top=f'{DIR}/mid.qcow2'))
    assert domain.calls[-1] == ('blockCommit', 'vda', None, f'{DIR}/mid.qcow2', 0,
                                _libvirt.BLOCK_COMMIT_BANDWIDTH_BYTES)
    assert notes[0]['expect_chain'] == [f'{DIR}/top.qcow2', f'{DIR}/base.qcow2']
    assert notes[0]['active'] is False
    notes = started(session, ledger, 'c2', block_params(type='commit', device='vda', speed=5))
    assert domain.calls[-1] == ('blockCommit', 'vda', None, None, 5,
                                _libvirt.BLOCK_COMMIT_BANDWIDTH_BYTES | _libvirt.BLOCK_COMMIT_ACTIVE)
    assert notes[0]['expect_source'] == f'{DIR}/base.qcow2' and notes[0]['active'] is True
    started(session, ledger, 'p1', block_params(type='stream', device='vda', base='vda[4]'))
    assert domain.calls[-1] == ('blockRebase', 'vda', f'{DIR}/base.qcow2', 0,
                                _libvirt.BLOCK_REBASE_BANDWIDTH_BYTES)
    started(session, ledger, 'p2', block_params(type='stream', device=f'{DIR}/top.qcow2'))
    assert domain.calls[-1] == ('blockPull', 'vda', 0, _libvirt.BLOCK_PULL_BANDWIDTH_BYTES)


@pytest.mark.parametrize('params, message', [
    (block_params(type='create', target='/x', size=1), 'type create is not available'),
    (block_params(type='amend', device='vda', amend={'encrypt': {}}),
     'type amend is not available for libvirt domains'),
    (block_params(type='stream', device='vda', on_error='stop'),
     'on_error cannot be used with a libvirt domain'),
    (block_params(type='commit', device='vdb'), "disk 'vdb' has no backing file"),
    (block_params(type='commit', device='vda', top=f'{DIR}/base.qcow2',
                  base=f'{DIR}/mid.qcow2'), 'is not below top'),
    (block_params(type='mirror', device='vda', target='/x.qcow2', sync='none'),
     'takes sync full or top'),
    (block_params(type='backup', device='vda', target='/x/y.qcow2', speed=3),
     'does not exist'),
])
def test_refused_before_libvirt_is_asked(
        session: LibvirtSession, domain: FakeDomain, params: Record, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        session.start('j1', params, lambda **_: None)
    assert not [c for c in domain.calls if c[0] not in ('blockJobInfo', 'jobStats')]


def test_libvirt_refusals_name_the_job(
        session: LibvirtSession, domain: FakeDomain, tmp_path: pathlib.Path) -> None:
    domain.refuse['blockCopy'] = BackendError(
        'blockCopy', 'VIR_ERR_BLOCK_COPY_ACTIVE',
        "block copy still active: disk 'vda' already in active block job")
    with pytest.raises(BackendError) as err:
        session.start('j1', block_params(type='mirror', device='vda',
                                         target=str(tmp_path / 'c.qcow2')), lambda **_: None)
    assert str(err.value) == ("job 'j1': blockCopy failed: VIR_ERR_BLOCK_COPY_ACTIVE: block "
                              "copy still active: disk 'vda' already in active block job")


def test_backup_of_one_disk_with_a_checkpoint(
        session: LibvirtSession, ledger: MetadataLedger, domain: FakeDomain, tmp_path: pathlib.Path,
        targets: FakeTargets) -> None:
    target = str(tmp_path / 'b.qcow2')
    started(session, ledger, 'bk', block_params(type='backup', device='vdb', target=target,
                                                bitmap='ck1', sync='full', target_mode=0o640))
    command, backup, checkpoint, flags = domain.calls[-1]
    assert command == 'backupBegin' and flags == _libvirt.BACKUP_BEGIN_REUSE_EXTERNAL
    assert targets.made == [(target, 0o640)]
    assert f"<disk name=\"vdb\" backup=\"yes\" type=\"file\"><target file=\"{target}\"" in backup
    assert '<name>ck1</name>' in checkpoint and '<disk name="vda" checkpoint="no"/>' in checkpoint
    domain.stats = dict(json.loads(fixture('jobstats-backup-completed.json')), type=1)
    (record,) = look(session, ledger)
    assert (record['name'], record['type'], record['status']) == ('bk', 'backup', 'running')
    domain.stats = json.loads(fixture('jobstats-none.json'))
    domain.completed = json.loads(fixture('jobstats-backup-completed.json'))
    (record,) = look(session, ledger)
    assert record['outcome'] == 'succeeded'


def test_verbs(session: LibvirtSession, ledger: MetadataLedger, domain: FakeDomain) -> None:
    started(session, ledger, 'copy1', block_params(type='mirror', device='vda',
                                                   target=f'{DIR}/copy.qcow2'))
    steer(session, ledger, 'copy1', 'set-speed', speed=7)
    steer(session, ledger, 'copy1', 'cancel')
    steer(session, ledger, 'copy1', 'dismiss')
    assert domain.calls[-2:] == [
        ('blockJobSetSpeed', 'vda', 7, _libvirt.BLOCK_JOB_SPEED_BANDWIDTH_BYTES),
        ('blockJobAbort', 'vda', _libvirt.BLOCK_JOB_ABORT_ASYNC)]
    with pytest.raises(BackendError, match='libvirt cannot pause a block job'):
        steer(session, ledger, 'copy1', 'pause')


def test_pivot_of_a_transient_job_updates_the_definition(
        session: LibvirtSession, ledger: MetadataLedger, domain: FakeDomain) -> None:
    domain.is_persistent = True
    started(session, ledger, 'copy1', block_params(type='mirror', device='vda',
                                                   target=f'{DIR}/copy.qcow2'))
    steer(session, ledger, 'copy1', 'complete')
    assert domain.calls[-1] == ('blockJobAbort', 'vda', _libvirt.BLOCK_JOB_ABORT_PIVOT)
    (defined,) = session.conn.defined  # type: ignore[attr-defined]
    vda = _libvirt_xml.disks(defined)[0]
    assert vda['source'] == f'{DIR}/copy.qcow2' and len(vda['chain']) == 1


def test_jobs_started_elsewhere_are_adopted_when_steered(
        session: LibvirtSession, ledger: MetadataLedger, domain: FakeDomain) -> None:
    domain.live_xml = fixture('domain-copy-ready.xml')
    steer(session, ledger, 'libvirt-vda-copy', 'complete')
    assert domain.calls[-1] == ('blockJobAbort', 'vda', _libvirt.BLOCK_JOB_ABORT_PIVOT)
    (entry,) = decode_jobs(domain.metadata_text)
    assert entry['name'] == 'libvirt-vda-copy' and entry['libvirt']['adopted']
    assert entry['libvirt']['expect_source'] == f'{DIR}/copy.qcow2', 'in its sub-record'
    domain.live_xml = fixture('domain-after-pivot.xml')
    assert look(session, ledger)[0]['outcome'] == 'succeeded'
    steer(session, ledger, 'libvirt-domain-backup', 'cancel')
    assert domain.calls[-1] == ('abortJob',)
