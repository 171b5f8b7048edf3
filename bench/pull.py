# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pull backups: reading a disk through its NBD export, and what an incremental reads.

- Full read: a VM's qcow2 disk full of non-zero data is exposed by ``vmjobs.qemu.backup
  delivery: pull`` and copied by ``qemu-img convert`` from the export's NBD URI, against
  ``qemu-img convert`` of the image file itself (``-U``: QEMU holds it). Every copy runs
  with the same reader options (``READER``: 16 requests in flight, written out of order;
  the export is named ``-f raw``, not probed) and writes a raw copy in page cache on the
  same file system; the source image is in page cache for QEMU and for the direct read
  alike. They take turns at going first, and dirty pages are written back (sync) before
  each run. Only the copy is timed, not the module.
  A third copy reads an NBD export of the disk's own node on the same server (no
  fleecing): the gap between it and the file is the NBD transport's, not fleecing's.
  A fourth copy reads the same image served by ``qemu-nbd`` (read-only, no lock: QEMU
  holds the image): the same NBD server code outside the VM's QEMU, the transport's
  ceiling that no export configuration can pass.
  A fifth copy reads the same pull export from a second VM (on a copy of the image)
  whose QEMU runs with ``TUNABLES`` in its environment: glibc then serves the NBD
  server's 2 MiB request buffers from its heap instead of mapping fresh pages for
  every request.
- Incremental: after an acknowledged full pull, the guest writes 5% of the disk (HMP
  ``qemu-io``, 512 KiB writes at random 512 KiB-aligned offsets); an incremental pull's
  reader asks the export's dirty-bitmap meta context for the changed extents
  (``qemu-img map`` with ``x-dirty-bitmap``) and reads only those. Bytes read are set
  against the bytes the guest dirtied.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from _common import Row, median, run_direct, workdir
from datapath import fill
from harness.nbd import dirty_extents, read_extents
from harness.qmp import QMPConnection
from harness.vm import start_vm

GOAL_READ = 0.8
GOAL_BYTES = 1.1
WRITE = 512 << 10
#: The reader options of every timed copy: the advice docs/backup.md gives readers.
READER = ['-m', '16', '-W']
#: The environment docs/backup.md advises for the VM's QEMU (32 MiB, 256 MiB).
TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456'


def cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) process ``pid`` used so far; 0 for None."""
    if pid is None:
        return 0.0
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def convert(source: list[str], target: Path, server: int | None = None) -> tuple[float, float]:
    """Seconds ``qemu-img convert READER SOURCE -O raw TARGET`` takes, and the CPU seconds
    it used, with those of the NBD server process ``server`` meanwhile."""
    os.sync()
    cpu = children_cpu() + cpu_of(server)
    start = time.perf_counter()
    subprocess.run(['qemu-img', 'convert', *READER, *source, '-O', 'raw', str(target)],
                   check=True, timeout=3600)
    took = time.perf_counter() - start
    return took, children_cpu() + cpu_of(server) - cpu


@contextlib.contextmanager
def qemu_nbd(image: Path, sock: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``qemu-nbd`` serving ``image`` read-only on ``sock`` (QEMU holds its lock)."""
    server = subprocess.Popen(
        ['qemu-nbd', '--read-only', '--persistent', '--shared=4', '--socket', str(sock),
         '--image-opts', f'driver=qcow2,file.driver=file,file.filename={image},file.locking=off'],
        stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f'qemu-nbd did not start on {sock}')
            time.sleep(0.05)
        yield server
    finally:
        server.terminate()
        server.wait(10)


def dirty(obs: QMPConnection, size: int, share: float, seed: int) -> int:
    """Guest writes over ``share`` of the disk; return the bytes written."""
    slots = random.Random(seed).sample(range(size // WRITE), int(size * share) // WRITE)
    for slot in slots:
        offset = slot * WRITE
        reply = obs.cmd('human-monitor-command', {
            'command-line': f'qemu-io disk0-fmt "write -P 0x77 {offset} {WRITE}"'})
        if str(reply).strip():
            raise RuntimeError(f'qemu-io: {reply}')
    return len(slots) * WRITE


def end(conn: dict[str, str], name: str, work: Path) -> None:
    """Acknowledge pull backup ``name``."""
    result, _end = run_direct('job', dict(conn, name=name, state='absent', verdict='succeeded'),
                              work)
    if result.get('failed'):
        raise RuntimeError(result['msg'])


def run(count: int, log: Callable[[str], None], keep: bool = False,
        mib: int = 1024) -> list[Row]:
    with workdir(keep) as work:
        raw, source = work.path / 'disk0.raw', work.path / 'disk0.qcow2'
        fill(raw, mib)
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', str(raw), str(source)],
                       check=True)
        raw.unlink()
        tuned_source = work.path / 'tuned.qcow2'
        subprocess.run(['cp', str(source), str(tuned_source)], check=True)
        size = mib << 20
        tuned = work.start(start_vm, disks={'disk0': tuned_source}, name='tuned',
                           prefix=['env', f'GLIBC_TUNABLES={TUNABLES}'])
        tuned_conn = {'socket': str(tuned.sock), 'ledger_dir': str(work.path / 'tuned-ledger')}
        daemon = work.start(start_vm, disks={'disk0': source}, name='pull')
        obs = QMPConnection(daemon.obs_sock, timeout=600).connect()
        conn = {'socket': str(daemon.sock), 'ledger_dir': str(work.path / 'ledger')}
        args = dict(conn, disks=[{'device': 'disk0'}], delivery='pull', bitmap='bench')
        ways_all = ['nbd', 'file', 'plain', 'qemu-nbd', 'tuned']
        times: dict[str, list[float]] = {way: [] for way in ways_all}
        cpus: dict[str, list[float]] = {way: [] for way in ways_all}
        qemu = int(daemon.pidfile.read_text())

        def timed(way: str, figures: tuple[float, float]) -> None:
            times[way].append(figures[0])
            cpus[way].append(figures[1])

        def pull_read(i: int) -> None:
            result, _end = run_direct('backup', dict(args, name=f'p{i}', mode='full'),
                                      work.path)
            if result.get('failed'):
                raise RuntimeError(result['msg'])
            uri = result['backup']['disks'][0]['uri']
            target = work.path / f'p{i}.raw'
            timed('nbd', convert(['-f', 'raw', uri], target, qemu))
            # The same NBD server exporting the disk's node itself, without fleecing.
            obs.cmd('block-export-add', {'type': 'nbd', 'id': 'plain', 'node-name': 'disk0-fmt',
                                         'name': 'plain', 'writable': False})
            plain = uri.replace(f'/p{i}.disk0?', '/plain?')
            timed('plain', convert(['-f', 'raw', plain], work.path / 'plain.raw', qemu))
            obs.cmd('block-export-del', {'id': 'plain'})
            (work.path / 'plain.raw').unlink()
            end(conn, f'p{i}', work.path)
            if i:
                target.unlink()

        def tuned_read(i: int) -> None:
            result, _end = run_direct('backup', dict(tuned_conn, disks=[{'device': 'disk0'}],
                                                     delivery='pull', name=f't{i}', mode='full'),
                                      work.path)
            if result.get('failed'):
                raise RuntimeError(result['msg'])
            target = work.path / 't.raw'
            timed('tuned', convert(['-f', 'raw', result['backup']['disks'][0]['uri']], target,
                                   int(tuned.pidfile.read_text())))
            target.unlink()
            end(tuned_conn, f't{i}', work.path)

        def file_read(i: int) -> None:
            target = work.path / f'f{i}.raw'
            timed('file', convert(['-U', '-f', 'qcow2', str(source)], target))
            target.unlink()

        def nbd_read(server: int) -> None:
            target = work.path / 'q.raw'
            timed('qemu-nbd', convert(['-f', 'raw', f'nbd+unix:///?socket={work.path}/q.sock'],
                                      target, server))
            target.unlink()

        with qemu_nbd(source, work.path / 'q.sock') as server:
            for i in range(count):
                ways = [pull_read, file_read, lambda _i: nbd_read(server.pid), tuned_read]
                for way in ways[i % 4:] + ways[:i % 4]:
                    way(i)
                log(f'pull read run {i + 1}/{count}')
        speed = {k: size / median(v) / (1 << 20) for k, v in times.items()}
        ratio = speed['nbd'] / speed['file']

        written = dirty(obs, size, 0.05, 7)
        result, _end = run_direct('backup', dict(args, name='inc', mode='incremental'),
                                  work.path)
        if result.get('failed'):
            raise RuntimeError(result['msg'])
        disk = result['backup']['disks'][0]
        extents = dirty_extents(disk['uri'], disk['meta_context'])
        start = time.perf_counter()
        read = read_extents(disk['uri'], extents, work.path / 'p0.raw', work.path / 'inc.raw')
        took = time.perf_counter() - start
        end(conn, 'inc', work.path)
        log(f'incremental: {len(extents)} extents, {read} bytes read, {written} dirty')
        share = read / written
        what = f'{mib} MiB'
        return [
            Row.of('pull', f'{what}: qemu-img convert from the NBD export', times['nbd']),
            Row.of('pull', f'{what}: qemu-img convert of the image file', times['file']),
            Row.of('pull', f'{what}: the same from an NBD export of the disk, no fleecing',
                   times['plain']),
            Row.of('pull', f'{what}: qemu-img convert from qemu-nbd serving the image file',
                   times['qemu-nbd']),
            Row.of('pull', f'{what}: qemu-img convert from the export, QEMU with TUNABLES',
                   times['tuned']),
            Row('pull', 'read throughput export/file', count, ratio, float('nan'), 'x',
                goal=f'>= {GOAL_READ}', verdict='met' if ratio >= GOAL_READ else 'MISSED',
                extra={'MiB/s': {k: round(v) for k, v in speed.items()}}),
            Row.of('pull', f'{what}: CPU time of a copy from the export (qemu-img + QEMU)',
                   cpus['nbd']),
            Row.of('pull', f'{what}: CPU time of a copy of the image file (qemu-img)',
                   cpus['file']),
            Row.of('pull', f'{what}: CPU time of a copy from the unfleeced export',
                   cpus['plain']),
            Row.of('pull', f'{what}: CPU time of a copy from qemu-nbd (qemu-img + qemu-nbd)',
                   cpus['qemu-nbd']),
            Row.of('pull', f'{what}: CPU time of a copy from the export, QEMU with TUNABLES',
                   cpus['tuned']),
            Row('pull', 'CPU time file/export', count, median(cpus['file']) / median(cpus['nbd']),
                float('nan'), 'x'),
            Row('pull', 'read throughput export/unfleeced export', count,
                speed['nbd'] / speed['plain'], float('nan'), 'x'),
            Row('pull', 'read throughput export (QEMU with TUNABLES)/file', count,
                speed['tuned'] / speed['file'], float('nan'), 'x'),
            Row('pull', 'read throughput export/qemu-nbd', count,
                speed['nbd'] / speed['qemu-nbd'], float('nan'), 'x'),
            Row('pull', 'incremental, 5% dirty: bytes read/dirty bytes', 1, share,
                float('nan'), 'x', goal=f'<= {GOAL_BYTES}',
                verdict='met' if share <= GOAL_BYTES else 'MISSED',
                extra={'extents': len(extents), 'read': read, 'dirty': written,
                       'seconds': round(took, 2)}),
        ]
