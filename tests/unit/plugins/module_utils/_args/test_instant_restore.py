# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_args/instant_restore.py."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args import (
    instant_restore as _instant_args,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument

Record = dict[str, t.Any]


def options(**given: t.Any) -> Record:
    values = {key: spec.get('default') for key, spec in _instant_args.INSTANT_RESTORE.items()}
    values.update({'name': 'ir', 'target': '/vm/d.qcow2'}, **given)
    return values


def test_an_attached_restore_is_a_stream_into_the_new_disk() -> None:
    params = _instant_args.instant_params(options(image='/b/incr/d.qcow2', disk='restored',
                                                  bus='hotplug1', speed=1 << 20))
    assert params['type'] == 'stream' and params['device'] == 'restored'
    assert params['image'] == '/b/incr/d.qcow2' and params['target'] == '/vm/d.qcow2'
    assert params['backing'] == 'absolute' and params['bus'] == 'hotplug1'
    assert params['auto_dismiss'] is False and params['auto_finalize'] is True
    assert 'overwrite' not in params and 'target_mode' not in params, 'how, not what'


def test_paths_are_made_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir('/tmp')
    params = _instant_args.instant_params(options(image='b.qcow2', target='o.qcow2', disk='d'))
    assert params['image'] == '/tmp/b.qcow2' and params['target'] == '/tmp/o.qcow2'


def test_a_backup_by_name() -> None:
    params = _instant_args.instant_params(options(backup='nightly-1', device='vda', disk='vdb'))
    assert params['image'] is None and params['backup'] == 'nightly-1'
    assert params['backup_device'] == 'vda'


@pytest.mark.parametrize(('given', 'message'), [
    ({'disk': 'd'}, 'give the backup chain'),
    ({'image': '/b', 'backup': 'x', 'device': 'vda', 'disk': 'd'}, 'give the backup chain'),
    ({'backup': 'x', 'disk': 'd'}, 'backup needs device'),
    ({'image': '/b', 'device': 'vda', 'disk': 'd'}, 'device goes with backup'),
    ({'image': '/b'}, 'attach needs disk'),
    ({'image': '/b', 'attach': False, 'disk': 'd'}, 'takes no disk; start the stream with'),
    ({'image': '/b', 'attach': False, 'wait': 'concluded'}, 'takes no wait'),
    ({'image': '/b', 'disk': 'd', 'speed': -1}, 'speed must not be negative'),
])
def test_refusals_name_the_job(given: Record, message: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^job 'ir': .*" + message):
        _instant_args.instant_params(options(**given))


def test_how_the_overlay_is_made() -> None:
    assert _instant_args.start_only(options(target_mode='0640', overwrite=True)) == {
        'overwrite': True, 'target_mode': 0o640}
    with pytest.raises(InvalidArgument, match="^job 'ir': target_mode '0400'"):
        _instant_args.start_only(options(target_mode='0400'))
