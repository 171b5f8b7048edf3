"""Pull backups of a libvirt domain: ``backupBegin`` in pull mode, read by an NBD reader.

The guest writes through its devices (HMP ``qemu-io -d``, passed through libvirt by the
test: that taints the domain, so the modules' own taint check is made before) while the
full backup is read; other writes are made with the domain shut off (the images'
persistent bitmaps record them). Every read is compared, after the backup has ended and
from another process, with a copy of the disks taken when the backup started; the next
incremental must bring the guest's writes. The reader's verdict decides whether the
backup's checkpoint stays; nothing else stays. Over TCP the exports use TLS with the
certificates of this module's libvirtd (``backup_tls_x509_cert_dir`` in its qemu.conf).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.domain import Domain
from harness.libvirt import LibvirtHost, running
from harness.nbd import (
    compare_raw,
    dirty_extents,
    free_port,
    make_tls_dir,
    plain_refused,
    read_extents,
    read_full_async,
    read_tls,
    writes_while,
)
from test_libvirt_backup import checkpoints, offline, remember

DEVICES = ('vda', 'vdb')
MIB = 1 << 20
#: What the guest writes while the full backup is read: (device, pattern, offset, length).
GUEST_WRITES = (('vdb', 0x32, 3 * MIB, MIB // 2), ('vda', 0x33, 6 * MIB, MIB),
                ('vdb', 0x34, 0, 64 << 10))
#: Every range the guest writes during the full backup, which the next incremental must bring.
WRITTEN = {'vda': [(0, MIB), (6 * MIB, MIB)], 'vdb': [(3 * MIB, MIB // 2), (0, 64 << 10)]}


@pytest.fixture(scope='module')
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA with server and client certificates for 127.0.0.1 (as the QMP TLS test makes)."""
    return make_tls_dir(tmp_path_factory.mktemp('libvirt-tls') / 'pki')


@pytest.fixture(scope='module')
def libvirt_host(tls_dir: Path) -> Iterator[LibvirtHost]:
    """This module's libvirtd, with ``backup_tls_x509_cert_dir`` pointing at ``tls_dir``."""
    with running(LibvirtHost(backup_tls_dir=tls_dir)) as daemon:
        yield daemon


@pytest.fixture(scope='module')
def host(libvirt_host: LibvirtHost) -> LibvirtHost:
    return libvirt_host


def pull(dom: Domain, name: str, mode: str, **options: Any) -> dict[str, Any]:
    return dom.run('backup', name=name, mode=mode, bitmap='nightly', delivery='pull',
                   **options)


def end(dom: Domain, name: str, **options: Any) -> dict[str, Any]:
    return dom.run('job', name=name, state='absent', **options)


def uris(result: dict[str, Any]) -> dict[str, str]:
    return {disk['device']: disk['uri'] for disk in result['backup']['disks']}


def assert_clean(host: LibvirtHost, dom: Domain, result: dict[str, Any]) -> None:
    """No domain job, and no scratch image left in the backup's private directory."""
    info = host.virsh('domjobinfo', dom.name).stdout
    assert 'None' in info.split('Job type:')[1].splitlines()[0], info
    directory = os.path.dirname(uris(result)['vda'].split('socket=')[1])
    assert [f for f in os.listdir(directory) if f.endswith('.qcow2')] == []


def test_full_then_incremental_and_a_failed_read(host, workdir, make_image, domain):
    disks = {'vda': make_image('a.qcow2', '16M', pattern=0x0A),
             'vdb': make_image('b.qcow2', '8M', pattern=0x0B)}
    dom = domain(disks, persistent=True)
    at_full = remember(workdir, 'p1', disks)
    full = pull(dom, 'p1', 'full')
    assert full['changed'] and full['job']['status'] == 'running', full
    assert [(d['device'], d['export'], d['meta_context']) for d in full['backup']['disks']] == [
        ('vda', 'p1.vda', None), ('vdb', 'p1.vdb', None)]
    # The guest writes after the start instant and while the reader reads: none may show.
    dom.device_write('vda', 0x31, 0, '1M')
    reads = [read_full_async(uri, workdir / f'p1-{dev}.raw') for dev, uri in uris(full).items()]
    writes_while(dom.device_write, GUEST_WRITES, reads)
    done = end(dom, 'p1', verdict='succeeded')
    assert done['changed'] and done['job']['outcome'] == 'succeeded', done
    for dev in DEVICES:
        compare_raw(workdir / f'p1-{dev}.raw', at_full[dev])
    assert checkpoints(host, dom) == ['p1']
    assert_clean(host, dom, full)

    offline(host, dom, (disks['vdb'], 0x0C, '1M'))
    failed = pull(dom, 'p2', 'incremental')
    assert [d['meta_context'] for d in failed['backup']['disks']] == [
        'qemu:dirty-bitmap:nightly'] * 2, failed
    bare = end(dom, 'p2')
    assert bare['failed'] and 'give verdict' in bare['msg'] and '\n' not in bare['msg'], bare
    ended = end(dom, 'p2', verdict='failed')
    assert ended['job']['outcome'] == 'failed', ended
    assert checkpoints(host, dom) == ['p1'], 'an unacknowledged backup leaves no checkpoint'
    assert_clean(host, dom, failed)

    offline(host, dom, (disks['vda'], 0x0D, '2M'))
    at_inc = remember(workdir, 'p3', disks)
    inc = pull(dom, 'p3', 'incremental')
    read = 0
    for dev, uri in uris(inc).items():
        extents = dirty_extents(uri, 'qemu:dirty-bitmap:nightly')
        for offset, length in WRITTEN[dev]:
            assert any(start <= offset and offset + length <= start + size
                       for start, size in extents), (dev, offset, extents)
        read += read_extents(uri, extents, workdir / f'p1-{dev}.raw', workdir / f'p3-{dev}.raw')
        compare_raw(workdir / f'p3-{dev}.raw', at_inc[dev])
    assert read < 16 * 2**20, 'the incremental reads the changed extents only'
    assert end(dom, 'p3', verdict='succeeded')['job']['outcome'] == 'succeeded'
    assert checkpoints(host, dom) == ['p1', 'p3']
    assert_clean(host, dom, inc)

    canceled = pull(dom, 'p4', 'incremental')
    gone = end(dom, 'p4', cancel=True, forget=True)
    assert gone['changed'] and gone['job']['outcome'] == 'canceled', gone
    assert checkpoints(host, dom) == ['p1', 'p3']
    assert_clean(host, dom, canceled)
    again = pull(dom, 'p5', 'incremental')
    assert [d['mode'] for d in again['backup']['disks']] == ['incremental'] * 2, again
    end(dom, 'p5', verdict='succeeded')


def test_exports_over_tcp_with_libvirtds_tls(host, workdir, make_image, domain, tls_dir):
    disks = {'vda': make_image('a.qcow2', '16M', pattern=0x0A),
             'vdb': make_image('b.qcow2', '8M', pattern=0x0B)}
    dom = domain(disks, persistent=True)
    port = free_port()
    address = f'127.0.0.1:{port}'
    mine = pull(dom, 'p1', 'full', nbd_address=address, nbd_tls_dir=str(tls_dir))
    assert mine['failed'] and not mine['changed'], mine
    assert mine['msg'] == ("job 'p1': a libvirt domain exports with libvirtd's own TLS "
                           'certificates (backup_tls_x509_cert_dir in qemu.conf); remove '
                           'nbd_tls_dir'), mine['msg']

    taken = free_port()
    with socket.socket() as holder:  # libvirt's own error, nothing left behind
        holder.bind(('127.0.0.1', taken))
        holder.listen()
        busy = pull(dom, 'p1', 'full', nbd_address=f'127.0.0.1:{taken}')
    assert busy['failed'] and not busy['changed'], busy
    assert busy['msg'].startswith("job 'p1': ") and '\n' not in busy['msg'], busy['msg']
    assert 'Traceback' not in busy['raw'] and 'ddress already in use' in busy['msg'], busy['msg']
    assert checkpoints(host, dom) == []
    assert 'None' in host.virsh('domjobinfo', dom.name).stdout.split('Job type:')[1]

    at_full = remember(workdir, 'p1', disks)
    full = pull(dom, 'p1', 'full', nbd_address=address)
    assert full['changed'] and not full['failed'], full
    assert uris(full) == {dev: f'nbds://127.0.0.1:{port}/p1.{dev}' for dev in DEVICES}
    assert not pull(dom, 'p1', 'full', nbd_address=address)['changed']
    dom.device_write('vda', 0x71, 0, '1M')
    assert plain_refused('127.0.0.1', port, 'p1.vda'), 'a reader without TLS is turned away'
    for dev in DEVICES:
        read = read_tls('127.0.0.1', port, f'p1.{dev}', tls_dir, workdir / f'p1-{dev}.raw')
        assert read.returncode == 0, read.stderr
    done = end(dom, 'p1', verdict='succeeded')
    assert done['job']['outcome'] == 'succeeded', done
    for dev in DEVICES:
        compare_raw(workdir / f'p1-{dev}.raw', at_full[dev])
    assert checkpoints(host, dom) == ['p1']
    assert 'None' in host.virsh('domjobinfo', dom.name).stdout.split('Job type:')[1]
