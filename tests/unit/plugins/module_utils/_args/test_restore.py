# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_args/restore.py: a restore's identity and its checks."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args import (
    restore as _restore,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument


def options(**given: t.Any) -> dict[str, t.Any]:
    return dict({'name': 'r1', 'backup': None, 'device': None, 'image': None, 'socket': None,
                 'domain': None, 'target': '/i/r.qcow2', 'target_format': 'qcow2',
                 'target_mode': None, 'overwrite': False}, **given)


def test_a_backup_is_named_with_its_disk() -> None:
    params, start_only = _restore.restore_params(options(backup='b1', device='disk0',
                                                         socket='/run/vm.sock'))
    assert params == {'type': 'restore', 'backup': 'b1', 'device': 'disk0',
                      'target': '/i/r.qcow2', 'target_format': 'qcow2'}
    assert start_only == {'overwrite': False, 'target_mode': None}


def test_an_image_needs_no_vm_and_overwrite_is_no_identity() -> None:
    params, start_only = _restore.restore_params(options(image='/b/i1/d.qcow2', overwrite=True,
                                                         target_mode='0640'))
    assert params == {'type': 'restore', 'source': '/b/i1/d.qcow2', 'target': '/i/r.qcow2',
                      'target_format': 'qcow2'}
    assert start_only == {'overwrite': True, 'target_mode': 0o640}


@pytest.mark.parametrize('given, message', [
    ({'backup': 'b1', 'device': 'disk0'}, "job 'r1': backup names a backup of a VM; give"),
    ({'name': '1bad', 'image': '/x'}, 'bad'),
    ({'image': '/x', 'target_mode': '0400'}, 'leaves the owner without read and write'),
])
def test_refused(given: dict[str, t.Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _restore.restore_params(options(**given))


def test_verify_params() -> None:
    assert _restore.source_params(options(image='/b/d.qcow2'), 'verify') == {
        'type': 'verify', 'source': '/b/d.qcow2'}
