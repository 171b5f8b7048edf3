# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the ledger's schema: 0.1.0 records upgraded, damaged or newer ones refused."""

from __future__ import annotations

import json
import pathlib
import shutil
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.backup import (
    chain_ledger,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import LedgerError
from ansible_collections.vmjobs.qemu.plugins.module_utils._ledger import (
    files as _files,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._ledger import (
    schema as _schema,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._ledger.files import Ledger
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.shapes import (
    BACKEND_KEYS,
    ENTRY_KEYS,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._waiter import Waiter
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    CheckedLedger,
    FakeClock,
    FakeVM,
    block_job_params,
)

FIXTURES = pathlib.Path(__file__).parents[3] / 'fixtures' / 'ledger-0.1.0'
#: The scope the 0.1.0 records were written for.
SCOPE = 'qmp:/tmp/exp/m.sock'
Record = dict[str, t.Any]


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    shutil.copytree(FIXTURES, tmp_path / 'ledger')
    return tmp_path / 'ledger'


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_796_281_300.0)


@pytest.fixture
def ledger(root: pathlib.Path, clock: FakeClock) -> CheckedLedger:
    return CheckedLedger(str(root), SCOPE, clock=clock)


@pytest.fixture
def client(ledger: CheckedLedger, clock: FakeClock) -> JobClient:
    vm = FakeVM(clock, scope=SCOPE)
    return JobClient(vm, ledger, Waiter(clock=clock, sleep=clock.sleep), now=clock)


def test_the_0_1_0_records_are_read_in_the_current_schema(ledger: CheckedLedger) -> None:
    records = {r['name']: r for r in ledger.all()}
    assert sorted(records) == ['full-disk0', 'move-disk1', 'nightly-1', 'scratch']
    assert ledger.damaged == {}
    assert {r['schema'] for r in records.values()} == {_schema.SCHEMA}
    assert not any('created_file' in r for r in records.values())
    assert records['full-disk0']['created_files'] == ['/tmp/exp/b0.qcow2']
    assert records['nightly-1']['created_files'] == ['/tmp/exp/nightly/disk0.qcow2',
                                                     '/tmp/exp/nightly/disk1.qcow2']
    assert records['move-disk1']['state'] == 'dismissed'


def test_the_0_1_0_chain_record_is_read(ledger: CheckedLedger) -> None:
    chains = chain_ledger(ledger)
    chain = chains.get('nightly')
    assert chain is not None and chain['schema'] == _schema.SCHEMA
    assert [a['job'] for a in chain['attempts']] == ['nightly-1']


def test_a_write_stores_the_upgraded_record(ledger: CheckedLedger, root: pathlib.Path) -> None:
    with ledger.lock():
        ledger.update('scratch', state='started')
    [path] = root.glob('*/scratch.json')
    stored = json.loads(path.read_text())
    assert stored['schema'] == _schema.SCHEMA and 'created_file' not in stored
    assert stored['created_files'] == ['/tmp/exp/s.qcow2']


def test_the_jobs_0_1_0_recorded_are_still_recognised(client: JobClient) -> None:
    records = {r['name']: r for r in client.list(include_dismissed=True)}
    assert records['move-disk1']['dismissed'] and records['move-disk1']['target_state'] == 'in_use'
    assert records['full-disk0']['outcome'] == 'succeeded'
    assert records['full-disk0']['target_state'] == 'open', '0.1.0 left it attached'
    params = block_job_params('full-disk0', 'backup', device='disk0', target='/tmp/exp/b0.qcow2')
    first = client.start('full-disk0', params)
    assert first.changed is True, 'the re-run closes what 0.1.0 left attached'
    assert first.record['target_state'] == 'closed'
    again = client.start('full-disk0', params)
    assert (again.changed, again.record['outcome']) == (False, 'succeeded')
    tomb = client.start('move-disk1', block_job_params('move-disk1', 'mirror', device='disk1',
                                                       target='/tmp/exp/m1.qcow2'))
    assert tomb.changed is False and tomb.record['dismissed'] is True


# -- schema 3: backend keys in sub-records -------------------------------------------------------

SCHEMA_2 = {'name': 'cp', 'type': 'mirror', 'state': 'started', 'params': {'device': 'vda'},
            'created_files': ['/srv/cp.qcow2'], 'targets': 'closed', 'attached': ['vjcp'],
            'kept_nodes': [], 'libvirt_type': 'copy', 'disk': 'vda', 'expect_source': '/srv/cp',
            'scope': SCOPE, 'created': 1.0, 'updated': 2.0, 'schema': 2}


def test_the_backend_keys_are_declared_entry_keys_of_one_backend_each() -> None:
    qmp, libvirt = BACKEND_KEYS['qmp'], BACKEND_KEYS['libvirt']
    assert qmp <= ENTRY_KEYS and libvirt <= ENTRY_KEYS and not qmp & libvirt
    assert not set(BACKEND_KEYS) & ENTRY_KEYS, 'a sub-record name is no entry key'


def test_a_record_is_stored_with_its_backend_keys_apart(root: pathlib.Path,
                                                        ledger: CheckedLedger) -> None:
    with ledger.lock():
        written = ledger.put(dict(SCHEMA_2))
    assert written['schema'] == 3 and written['attached'] == ['vjcp'], 'used flat'
    [path] = root.glob('*/cp.json')
    on_disk = json.loads(path.read_text())
    assert on_disk['qmp'] == {'attached': ['vjcp'], 'kept_nodes': []}
    assert on_disk['libvirt'] == {'libvirt_type': 'copy', 'disk': 'vda',
                                  'expect_source': '/srv/cp'}
    assert not (set(on_disk) & (BACKEND_KEYS['qmp'] | BACKEND_KEYS['libvirt']))
    assert on_disk['created_files'] == ['/srv/cp.qcow2'] and on_disk['targets'] == 'closed'
    assert ledger.get('cp') == dict(written)


def test_a_schema_2_record_is_read_flat_and_stored_in_schema_3() -> None:
    read = _schema.upgrade(dict(SCHEMA_2), 'cp.json')
    assert read == dict(SCHEMA_2, schema=3)
    assert _schema.upgrade(_schema.stored(read), 'cp.json') == read
    assert _schema.stored({'name': 'nightly', 'attempts': []}) == {
        'name': 'nightly', 'attempts': []}, 'a chain record has no backend keys'


# -- records that cannot be read -----------------------------------------------------------------

def damage(ledger: Ledger, name: str, text: str) -> pathlib.Path:
    path = pathlib.Path(ledger.directory) / f'{name}.json'
    path.write_text(text)
    return path


@pytest.mark.parametrize('text, why', [
    ('{"name": "b1", "type": "bac', 'is damaged'),
    ('', 'is damaged'),
    ('[1, 2]', 'holds no job record'),
    ('{"name": "other", "type": "backup"}', "names 'other'"),
    ('{"name": "b1", "type": "backup", "schema": 99}', 'has schema 99, newer than this release'),
])
def test_a_record_that_cannot_be_read_leaves_the_other_jobs_usable(
        client: JobClient, ledger: CheckedLedger, text: str, why: str) -> None:
    path = damage(ledger, 'b1', text)
    names = ['full-disk0', 'move-disk1', 'nightly-1', 'scratch']
    assert [r['name'] for r in ledger.all()] == names
    assert str(path) in ledger.damaged['b1'] and why in ledger.damaged['b1']
    with pytest.raises(LedgerError) as err:
        client.get('b1')
    assert str(path) in str(err.value) and why in str(err.value) and '\n' not in str(err.value)
    with pytest.raises(LedgerError):
        client.start('b1', block_job_params('b1', 'backup', device='disk0', target='/srv/b1'))
    assert path.read_text() == text, 'the damaged record is left as it was'
    assert client.get('full-disk0')[0]['outcome'] == 'succeeded'
    assert client.start('b2', block_job_params('b2', 'stream', device='disk0')).changed


def test_a_ledger_that_cannot_be_written_fails_the_start_before_qemu(
        client: JobClient, ledger: CheckedLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = _files.os.open

    def full(path: str, flags: int, mode: int = 0o777) -> int:
        if path.endswith('.tmp'):
            raise OSError(28, 'No space left on device')
        return real_open(path, flags, mode)

    monkeypatch.setattr(_files.os, 'open', full)
    with pytest.raises(LedgerError) as err:
        client.start('b2', block_job_params('b2', 'backup', device='disk0', target='/srv/b2'))
    assert str(err.value).startswith("job 'b2': cannot write ledger record ")
    assert str(err.value).endswith('b2.json: No space left on device')
    vm = t.cast(FakeVM, client.backend)
    assert [c for c in vm.calls if c[0] == 'start'] == [], 'QEMU was not asked to start it'


def test_a_withdrawn_file_is_no_longer_the_jobs(ledger: CheckedLedger) -> None:
    """A start notes the file it is about to create, and withdraws it if something else
    made it first (so that no clean-up removes a file that is not the job's)."""
    with ledger.lock():
        ledger.put({'name': 'b3', 'type': 'backup', 'state': 'starting', 'attached': []})
        ledger.update('b3', created_files=['/srv/b3.qcow2'], attached=['vjxf'])
        assert (ledger.get('b3') or {})['created_files'] == ['/srv/b3.qcow2']
        ledger.update('b3', created_files=[])
    assert (ledger.get('b3') or {})['created_files'] == []
