# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_qmp/snapshots.py over the recorded two-disk VM."""

from __future__ import annotations

import json
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.snapshot import (
    snapshot_params,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import (
    snapshots as _qmp_snapshots,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp.nodes import node
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._qmp.test_backup import (
    FIXTURE,
    FLAT,
    FakeMonitor,
)

Record = dict[str, t.Any]
ALL = frozenset({'snapshot-save', 'snapshot-load', 'snapshot-delete'})


@pytest.fixture
def rec() -> Record:
    with open(FIXTURE, encoding='utf-8') as handle:
        return t.cast(Record, json.load(handle))


def params(state: str = 'present', **options: t.Any) -> Record:
    return snapshot_params(dict({'name': 's1', 'tag': 'before', 'state': state, 'devices': [],
                                 'vmstate': None}, **options))


def start(rec: Record, given: Record, have: frozenset[str] = ALL,
          monkeypatch: pytest.MonkeyPatch | None = None) -> FakeMonitor:
    mon = FakeMonitor(rec)
    assert monkeypatch is not None
    monkeypatch.setattr(_qmp_snapshots, 'commands', lambda _mon: have)
    _qmp_snapshots.start_snapshot(t.cast(t.Any, mon), 's1', given)
    return mon


@pytest.mark.parametrize('state, command', [('present', 'snapshot-save'),
                                            ('reverted', 'snapshot-load')])
def test_every_writable_disk_takes_part_and_the_first_holds_the_vm_state(
        rec: Record, monkeypatch: pytest.MonkeyPatch, state: str, command: str) -> None:
    mon = start(rec, params(state), monkeypatch=monkeypatch)
    assert mon.calls[-1] == (command, {'job-id': 's1', 'tag': 'before', 'vmstate': 'disk0-fmt',
                                       'devices': ['disk0-fmt', 'disk1-fmt']})


def test_a_delete_takes_the_listed_disks_and_no_vm_state(
        rec: Record, monkeypatch: pytest.MonkeyPatch) -> None:
    mon = start(rec, params('absent', devices=['disk1']), monkeypatch=monkeypatch)
    assert mon.calls[-1] == ('snapshot-delete', {'job-id': 's1', 'tag': 'before',
                                                 'devices': ['disk1-fmt']})


def test_a_raw_disk_is_refused_before_qemu_is_asked(rec: Record,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    node(rec['vm'][FLAT], 'disk1-fmt')['drv'] = 'raw'
    with pytest.raises(InvalidArgument, match=r"^job 's1': disk 'disk1' \(node disk1-fmt\) is a "
                                              'raw image, which cannot hold internal snapshots; '
                                              'only qcow2 images can$'):
        start(rec, params(), monkeypatch=monkeypatch)


def test_a_qemu_without_the_command_is_refused(rec: Record,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgument, match="^job 's1': this QEMU has no snapshot-save command$"):
        start(rec, params(), frozenset(), monkeypatch)


@pytest.mark.parametrize('options, problem', [
    ({'tag': ''}, 'the tag must be 1 to 128 characters'),
    ({'state': 'absent', 'vmstate': 'disk0'}, 'deleting takes none'),
    ({'devices': ['disk0', 'disk0']}, 'a disk is listed twice'),
    ({'name': '1bad'}, 'invalid job name'),
])
def test_bad_options(options: Record, problem: str) -> None:
    state = options.pop('state', 'present')
    with pytest.raises(InvalidArgument, match=problem):
        params(state, **options)
