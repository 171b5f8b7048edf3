"""``mode: auto`` against a real VM: a chain that cannot go on heals per disk, with the reason.

A deleted image, a disk added to the VM and QEMU killed in the middle of a backup each
give a full backup of the disks concerned and an incremental of the others; every
backup reads back through its chain as the disks were when it started.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.chains import Disks, compare


def backup(run_module, machine: Disks, ledger_dir: Path, name: str, **options: Any) -> dict[str, Any]:
    target_dir = machine.workdir / name
    target_dir.mkdir(exist_ok=True)
    args = {'socket': str(machine.daemon.sock), 'ledger_dir': str(ledger_dir), 'name': name,
            'mode': 'auto', 'bitmap': 'nightly', 'target_dir': str(target_dir),
            'wait': 'concluded', 'wait_timeout': 60}
    args.update(options)
    result = run_module('backup', args)
    assert not result['failed'], result
    return result


def modes(result: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {disk['device']: (disk['mode'], disk['reason']) for disk in result['backup']['disks']}


def check(machine: Disks, name: str, expected: dict[str, Path]) -> None:
    for device, reference in expected.items():
        compare(machine.workdir / name / f'{device}.qcow2', reference)


def sound(machine: Disks, device: str) -> bool:
    bitmaps = machine.bitmaps(device)
    return all(not b.get('inconsistent') and b['recording'] and b['persistent']
               for b in bitmaps.values()) and set(bitmaps) == {'nightly', 'nightly.full'}


def no_full(device: str) -> str:
    return (f"there is no full backup of disk '{device}' with bitmap 'nightly' to build an "
            'incremental backup on')


def test_auto_heals_each_disk_that_cannot_go_on(disks, run_module, ledger_dir, workdir):
    first = backup(run_module, disks, ledger_dir, 'a1')
    assert modes(first) == {'disk0': ('full', no_full('disk0')), 'disk1': ('full', no_full('disk1'))}
    check(disks, 'a1', disks.remember('a1'))

    # an image of the chain is deleted: that disk starts over, the other goes on
    disks.write('disk0', 0x31, '1M', '1M')
    disks.write('disk1', 0x32, '2M', '1M')
    os.unlink(workdir / 'a1' / 'disk1.qcow2')
    expected = disks.remember('a2')
    healed = backup(run_module, disks, ledger_dir, 'a2')
    gone = (f"image {workdir}/a1/disk1.qcow2 of full backup 'a1' (disk 'disk1'), which this "
            'backup would build on, is gone')
    assert modes(healed) == {'disk0': ('incremental', None), 'disk1': ('full', gone)}, healed
    check(disks, 'a2', expected)

    # a disk is added to the VM (stopped cleanly: the bitmaps are saved)
    disks.restart(add=(0x33,))
    disks.write('disk1', 0x34, '3M', '1M')
    expected = disks.remember('a3')
    grown = backup(run_module, disks, ledger_dir, 'a3')
    assert modes(grown) == {'disk0': ('incremental', None), 'disk1': ('incremental', None),
                            'disk2': ('full', no_full('disk2'))}, grown
    check(disks, 'a3', expected)

    # QEMU is killed while an incremental of disk0 runs
    disks.write('disk0', 0x35, '4M', '2M')
    disks.write('disk2', 0x36, '0', '1M')
    slow = backup(run_module, disks, ledger_dir, 'i4', mode='incremental', wait='none',
                  speed=64 << 10, disks=[{'device': 'disk0'}])
    assert slow['job']['status'] == 'running', slow
    disks.restart(crash=True)
    assert disks.bitmaps('disk1')['nightly'].get('inconsistent'), 'QEMU lost the bitmaps'
    expected = disks.remember('a5')
    after = backup(run_module, disks, ledger_dir, 'a5')
    lost = ("incremental backup 'i4' of disk 'disk0' has an outcome that was never seen (its "
            "record is gone or QEMU lost the job), so bitmap 'nightly' may have been cleared")
    # disk1's bitmap was saved in its image at the clean stop, and marked in use since;
    # disk2's was made after QEMU opened it, and only ever lived in QEMU's memory
    bitmap = "dirty bitmap 'nightly' of disk '{0}' (node {0}-fmt) is {1}"
    assert modes(after) == {
        'disk0': ('full', lost),
        'disk1': ('full', bitmap.format('disk1', 'inconsistent (QEMU stopped without saving it)')),
        'disk2': ('full', bitmap.format('disk2', 'missing'))}, after
    check(disks, 'a5', expected)
    assert all(sound(disks, device) for device in disks.images), 'the bitmaps were made anew'

    disks.write('disk1', 0x37, '5M', '1M')
    expected = disks.remember('a6')
    again = backup(run_module, disks, ledger_dir, 'a6')
    assert set(modes(again).values()) == {('incremental', None)}, again
    check(disks, 'a6', expected)
