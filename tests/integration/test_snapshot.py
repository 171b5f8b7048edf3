"""Internal snapshots as named jobs on a real QEMU: save, revert, delete, refusals.

The disks are read from outside, after QEMU has stopped: what a revert restored is on
disk where a user would look.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from harness import has_pattern


def snapshot_tags(image: Path) -> list[str]:
    info = json.loads(subprocess.run(['qemu-img', 'info', '-U', '--output=json', str(image)],
                                     capture_output=True, text=True, check=True).stdout)
    return [s['name'] for s in info.get('snapshots') or []]


def test_save_revert_delete_by_name(disks, run_module, ledger_dir):
    args = {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir)}

    def snapshot(name: str, state: str, **more: Any) -> dict[str, Any]:
        return run_module('snapshot', dict(args, name=name, tag='before', state=state, **more))

    saved = snapshot('save-1', 'present')
    assert saved['changed'] and saved['job']['type'] == 'snapshot-save', saved
    assert (saved['job']['status'], saved['job']['outcome']) == ('concluded', 'succeeded')
    again = snapshot('save-1', 'present')
    assert not again['changed'] and again['job']['outcome'] == 'succeeded', again
    listed = run_module('job_info', dict(args, type=['snapshot-save']))
    assert [j['name'] for j in listed['jobs']] == ['save-1']

    disks.write('disk0', 0x77, '1M', '1M')
    disks.write('disk1', 0x78, '2M', '1M')
    reverted = snapshot('revert-1', 'reverted')
    assert reverted['changed'] and reverted['job']['outcome'] == 'succeeded', reverted
    conflict = snapshot('save-1', 'reverted')
    assert conflict['failed'] and "job 'save-1'" in conflict['msg'], conflict

    duplicate = snapshot('save-2', 'present')
    assert duplicate['failed'] and duplicate['job']['outcome'] == 'failed', duplicate
    assert "job 'save-2' failed: " in duplicate['msg'] and 'before' in duplicate['msg'], duplicate

    for name in ('save-1', 'revert-1', 'save-2'):
        dismissed = run_module('job', dict(args, name=name, state='absent'))
        assert dismissed['changed'], dismissed
    disks.daemon.stop(grace=30)  # QEMU closes the images; they are read from outside
    for device, pattern in (('disk0', 0x11), ('disk1', 0x22)):
        image = disks.images[device]
        assert has_pattern(image, pattern, 0, '8M'), f'{device}: the revert did not restore it'
        assert snapshot_tags(image) == ['before']


def test_delete_and_refusals(disks, vm, make_image, run_module, ledger_dir, workdir):
    args = {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir)}
    saved = run_module('snapshot', dict(args, name='s1', tag='t1', devices=['disk1']))
    assert saved['job']['outcome'] == 'succeeded', saved
    deleted = run_module('snapshot', dict(args, name='d1', tag='t1', state='absent',
                                          devices=['disk1']))
    assert deleted['changed'] and deleted['job']['type'] == 'snapshot-delete', deleted
    assert deleted['job']['outcome'] == 'succeeded', deleted
    unknown = run_module('snapshot', dict(args, name='s2', tag='t2', devices=['disk9']))
    assert unknown['failed'] and unknown['msg'].startswith("job 's2': "), unknown
    vmstate = run_module('snapshot', dict(args, name='d2', tag='t1', state='absent',
                                          vmstate='disk0'))
    assert vmstate['failed'] and 'deleting takes none' in vmstate['msg'], vmstate

    raw = vm(name='rawvm', disks={'disk0': make_image('raw.img', '8M', fmt='raw')}, fmt='raw')
    refused = run_module('snapshot', {'socket': str(raw.sock), 'ledger_dir': str(ledger_dir),
                                      'name': 'r1', 'tag': 't'})
    assert refused['failed'] and not refused['changed'], refused
    assert refused['msg'] == ("job 'r1': disk 'disk0' (node disk0-fmt) is a raw image, which "
                              'cannot hold internal snapshots; only qcow2 images can'), refused
    info = run_module('job_info', {'socket': str(raw.sock), 'ledger_dir': str(ledger_dir),
                                   'include_dismissed': True})
    assert info['jobs'] == [], 'a refused snapshot leaves nothing'
    disks.daemon.stop(grace=30)
    assert snapshot_tags(disks.images['disk1']) == []
