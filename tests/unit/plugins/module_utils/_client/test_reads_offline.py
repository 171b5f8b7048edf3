# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_client/reads.py: records of jobs whose own daemon has exited."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.reads import Reads
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import TransportError
from ansible_collections.vmjobs.qemu.plugins.module_utils._ledger.files import Ledger
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.shapes import (
    ledger_entry,
)


class Gone:
    """A backend whose daemon has exited."""

    scope = 'qmp:/var/lib/vmjobs/daemons/0123/qmp.sock'
    change_marks = 'bitmap'
    nbd_tls = 'dir'

    def session(self) -> t.ContextManager[t.Any]:
        raise TransportError(f'no QMP socket at {self.scope[4:]}: is the VM running?')

    def witness(self, entry: dict[str, t.Any]) -> None:
        raise AssertionError('only a migration is asked of its destination')


def ledger(tmp_path: t.Any, *entries: dict[str, t.Any]) -> Ledger:
    kept = Ledger(str(tmp_path), Gone.scope)
    with kept.lock():
        for entry in entries:
            kept.put(entry)
    return kept


def restore_entry(name: str, outcome: str | None) -> dict[str, t.Any]:
    last = {'status': 'concluded', 'outcome': outcome} if outcome else {}
    return ledger_entry(name, 'restore', {'type': 'restore', 'source': '/b/d.qcow2'}, 1.0,
                        state='dismissed' if outcome else 'started', last=last,
                        created_files=['/i/r.qcow2'], targets='closed')


def test_a_tombstone_is_listed_with_or_without_its_name(tmp_path: t.Any) -> None:
    reads = Reads(t.cast(t.Any, Gone()), ledger(tmp_path, restore_entry('r1', 'succeeded')))
    for names in ((), ('r1',)):
        found = reads.listed(names, include_dismissed=True)
        assert [(r['name'], r['type'], r['outcome'], r['target_state']) for r in found] == [
            ('r1', 'restore', 'succeeded', 'closed')]


def test_a_job_whose_daemon_died_reads_as_lost(tmp_path: t.Any) -> None:
    reads = Reads(t.cast(t.Any, Gone()), ledger(tmp_path, restore_entry('r1', None)))
    record = reads.listed(('r1',))[0]
    assert record['lost'] and record['outcome'] is None


def test_other_jobs_still_need_their_vm(tmp_path: t.Any) -> None:
    other = ledger_entry('m1', 'mirror', {'type': 'mirror'}, 1.0, state='started')
    reads = Reads(t.cast(t.Any, Gone()), ledger(tmp_path, restore_entry('r1', 'succeeded'), other))
    with pytest.raises(TransportError, match='no QMP socket'):
        reads.listed()
    with pytest.raises(TransportError):
        reads.listed(('m1',))
    assert reads.listed(('r1',), include_dismissed=True)[0]['name'] == 'r1'
    empty = Reads(t.cast(t.Any, Gone()), ledger(tmp_path / 'none'))
    with pytest.raises(TransportError):
        empty.listed()
