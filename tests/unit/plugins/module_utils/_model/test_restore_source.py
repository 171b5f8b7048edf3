# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/restore_source.py: backup name + disk -> image."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.restore_source import (
    backup_image,
)

Record = dict[str, t.Any]


def attempt(job: str, outcome: str | None = 'succeeded', **targets: str) -> Record:
    return {'job': job, 'mode': 'full', 'state': 'started', 'outcome': outcome,
            'disks': {device: {'target': path, 'format': 'qcow2', 'backing': None}
                      for device, path in targets.items()}}


CHAINS = [{'name': 'nightly', 'attempts': [
    attempt('f1', disk0='/b/f1/disk0.qcow2', disk1='/b/f1/disk1.qcow2'),
    attempt('i1', disk0='/b/i1/disk0.qcow2'),
    attempt('i2', 'failed', disk0='/b/i2/disk0.qcow2'),
    attempt('again', 'failed', disk0='/b/x/disk0.qcow2'),
    attempt('again', disk0='/b/again/disk0.qcow2'),
]}]
ENTRIES = [
    {'name': 'plain', 'type': 'backup', 'last': {'outcome': 'succeeded'},
     'disks': [{'device': 'disk0', 'target': '/b/plain/disk0.raw', 'member': 'plain.disk0'}]},
    {'name': 'copy1', 'type': 'mirror', 'params': {'target': '/b/m.qcow2'}},
]


@pytest.mark.parametrize('backup, device, expected', [
    ('f1', 'disk1', '/b/f1/disk1.qcow2'),
    ('i1', 'disk0', '/b/i1/disk0.qcow2'),
    ('again', 'disk0', '/b/again/disk0.qcow2'),  # a name used again: its newest backup
    ('plain', 'disk0', '/b/plain/disk0.raw'),  # no chain: its job record
])
def test_found(backup: str, device: str, expected: str) -> None:
    assert backup_image('r', backup, device, CHAINS, ENTRIES) == expected


@pytest.mark.parametrize('backup, device, message', [
    ('nope', 'disk0', ("job 'r': no backup named 'nope' in this VM's ledger "
                       '(backups known: again, f1, i1, i2, plain)')),
    ('copy1', 'disk0', "no backup named 'copy1'"),
    ('i1', 'disk1', "job 'r': backup 'i1' has no disk 'disk1' (its disks: disk0)"),
    ('i2', 'disk0', "job 'r': backup 'i2' did not succeed (failed); restore from a backup that did"),
])
def test_refused(backup: str, device: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace('(', r'\(').replace(')', r'\)')):
        backup_image('r', backup, device, CHAINS, ENTRIES)


def test_an_outcome_never_seen_is_refused() -> None:
    entries = [{'name': 'lost', 'type': 'backup', 'disks': [{'device': 'd', 'target': '/x'}]}]
    with pytest.raises(InvalidArgument, match='its outcome was never seen'):
        backup_image('r', 'lost', 'd', [], entries)
