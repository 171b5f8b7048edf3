"""The backup module on a libvirt domain: the chain rules of the QMP path, with checkpoints.

Every backup is read back through its backing chain (no rebase) and must equal a
copy of the disk taken when it started. Writes are made with the domain shut off
(the images' persistent bitmaps record them), between ``virsh destroy`` and ``start``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from harness import write_pattern
from harness.chains import backing_file, compare
from harness.domain import Domain
from harness.libvirt import LibvirtHost


@pytest.fixture(scope='module')
def host(libvirt_host: LibvirtHost) -> LibvirtHost:
    return libvirt_host


def backup(dom: Domain, name: str, mode: str, **options: Any) -> dict[str, Any]:
    """Run backup ``name`` into its own directory (waited for), then run it again."""
    (dom.workdir / name).mkdir(exist_ok=True)
    args = dict({'name': name, 'target_dir': str(dom.workdir / name), 'mode': mode,
                 'bitmap': 'nightly'}, **options)
    done, again = dom.play(('backup', dict(args, wait='concluded')), ('backup', args))
    if not done['failed']:
        assert not again['changed'] and again['job']['outcome'] == 'succeeded', again
    return done


def offline(host: LibvirtHost, dom: Domain, *writes: tuple[Path, int, str]) -> None:
    """Shut the domain off, write the patterns into its images, start it again (paused)."""
    host.virsh('destroy', dom.name, '--graceful')
    for image, pattern, offset in writes:
        write_pattern(image, pattern, offset, '1M')
    host.virsh('start', dom.name, '--paused')


def remember(workdir: Path, point: str, disks: dict[str, Path]) -> dict[str, Path]:
    """Copies of the (shut off or paused, hence flushed) images: the disks at ``point``."""
    (workdir / 'ref').mkdir(exist_ok=True)
    copies = {}
    for device, image in disks.items():
        copies[device] = workdir / 'ref' / f'{point}-{device}.qcow2'
        shutil.copyfile(image, copies[device])
    return copies


def modes(result: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {disk['device']: (disk['mode'], disk['reason']) for disk in result['backup']['disks']}


def checkpoints(host: LibvirtHost, dom: Domain) -> list[str]:
    return sorted(host.virsh('checkpoint-list', dom.name, '--name').stdout.split())


def test_full_incrementals_and_differential_of_two_disks(host, workdir, make_image, domain):
    disks = {'vda': make_image('a.qcow2', '16M', pattern=0x0A),
             'vdb': make_image('b.qcow2', '8M', pattern=0x0B)}
    dom = domain(disks, persistent=True)
    expected = {}
    full = backup(dom, 'f1', 'full')
    assert full['changed'] and full['job']['outcome'] == 'succeeded', full
    assert checkpoints(host, dom) == ['f1']
    offline(host, dom, (disks['vdb'], 0x0C, '1M'))
    expected['i1'] = remember(workdir, 'i1', disks)
    inc = backup(dom, 'i1', 'incremental')
    assert inc['job']['outcome'] == 'succeeded', inc
    assert [(d['device'], d['backing']) for d in inc['backup']['disks']] == [
        ('vda', str(workdir / 'f1' / 'vda.qcow2')), ('vdb', str(workdir / 'f1' / 'vdb.qcow2'))]
    offline(host, dom, (disks['vda'], 0x0D, '2M'))
    expected['i2'] = remember(workdir, 'i2', disks)
    assert backup(dom, 'i2', 'incremental')['job']['outcome'] == 'succeeded'
    offline(host, dom, (disks['vdb'], 0x0E, '3M'))
    expected['d1'] = remember(workdir, 'd1', disks)
    diff = backup(dom, 'd1', 'differential')
    assert diff['job']['outcome'] == 'succeeded', diff
    assert checkpoints(host, dom) == ['f1', 'i1', 'i2'], 'a differential adds no checkpoint'
    dom.stop()
    for name, backing in (('i1', '../f1'), ('i2', '../i1'), ('d1', '../f1')):
        for device in ('vda', 'vdb'):
            image = workdir / name / f'{device}.qcow2'
            assert backing_file(image) == f'{backing}/{device}.qcow2'
            compare(image, expected[name][device])


def test_refusals_are_those_of_the_qmp_path(host, workdir, make_image, domain):
    disks = {'vda': make_image('a.qcow2', '16M', pattern=0x1A),
             'vdb': make_image('b.qcow2', '8M', pattern=0x1B)}
    dom = domain(disks, persistent=True)
    refused = backup(dom, 'i0', 'incremental')
    assert refused['failed'] and refused['msg'] == (
        "job 'i0': there is no full backup of disk 'vda' with bitmap 'nightly' to build an "
        'incremental backup on; run a full backup first'), refused
    assert backup(dom, 'f1', 'full')['job']['outcome'] == 'succeeded'
    host.virsh('checkpoint-delete', dom.name, 'f1')
    refused = backup(dom, 'i1', 'incremental')
    assert refused['failed'] and refused['msg'] == (
        "job 'i1': checkpoint 'f1' of disk 'vda' is missing; run a full backup"), refused
    os.unlink(workdir / 'f1' / 'vdb.qcow2')
    refused = backup(dom, 'd1', 'differential', disks=[{'device': 'vdb'}])
    assert refused['msg'] == (
        f"job 'd1': image {workdir}/f1/vdb.qcow2 of full backup 'f1' (disk 'vdb'), which "
        'this backup would build on, is gone; run a full backup'), refused
    assert not os.listdir(workdir / 'i1') and not os.listdir(workdir / 'd1'), \
        'a refused backup leaves nothing behind'
    again = backup(dom, 'f2', 'full')
    assert again['job']['outcome'] == 'succeeded', 'a full backup starts the chain anew'
    assert backup(dom, 'i2', 'incremental')['job']['outcome'] == 'succeeded'
    dom.stop()
    for device, image in disks.items():
        compare(workdir / 'i2' / f'{device}.qcow2', image)


def test_auto_heals_per_disk_as_on_qmp(host, workdir, make_image, domain):
    disks = {'vda': make_image('a.qcow2', '16M', pattern=0x2A),
             'vdb': make_image('b.qcow2', '8M', pattern=0x2B)}
    dom = domain(disks, persistent=True)
    first = backup(dom, 'a1', 'auto')
    no_full = ("there is no full backup of disk '{}' with bitmap 'nightly' to build an "
               'incremental backup on')
    assert modes(first) == {d: ('full', no_full.format(d)) for d in disks}, first
    offline(host, dom, (disks['vda'], 0x2C, '1M'), (disks['vdb'], 0x2D, '2M'))
    os.unlink(workdir / 'a1' / 'vdb.qcow2')
    expected = {'a2': remember(workdir, 'a2', disks)}
    healed = backup(dom, 'a2', 'auto')
    gone = (f"image {workdir}/a1/vdb.qcow2 of full backup 'a1' (disk 'vdb'), which this backup "
            'would build on, is gone')
    assert modes(healed) == {'vda': ('incremental', None), 'vdb': ('full', gone)}, healed
    host.virsh('checkpoint-delete', dom.name, 'a2')
    offline(host, dom, (disks['vdb'], 0x2E, '3M'))
    expected['a3'] = remember(workdir, 'a3', disks)
    missing = backup(dom, 'a3', 'auto')
    assert modes(missing) == {
        disk: ('full', f"checkpoint 'a2' of disk '{disk}' is missing") for disk in disks}, missing
    offline(host, dom, (disks['vda'], 0x2F, '4M'))
    expected['a4'] = remember(workdir, 'a4', disks)
    again = backup(dom, 'a4', 'auto')
    assert set(modes(again).values()) == {('incremental', None)}, again
    assert again['backup']['marks'] == [{'device': d, 'names': ['a4']} for d in disks]
    (forgot,) = dom.play(('backup', {'state': 'absent', 'bitmap': 'nightly'}))
    assert forgot['changed'] and checkpoints(host, dom) == [], forgot
    assert {tuple(r['names']) for r in forgot['chain']['removed']} == {('a4', 'a3', 'a1')}
    dom.stop()
    for name, copies in expected.items():
        for device, copy in copies.items():
            compare(workdir / name / f'{device}.qcow2', copy)
