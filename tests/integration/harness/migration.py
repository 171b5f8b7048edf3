"""VM pairs for migration tests: a source whose RAM holds data, a destination waiting for it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .images import make_image
from .procs import Daemon
from .qmp import QMPConnection
from .vm import start_vm

#: Where the RAM image is loaded in the guest (above the BIOS areas).
RAM_ADDRESS = 0x1000000


def ram_image(workdir: Path, megabytes: int) -> Path:
    """A file of random bytes to load into guest RAM: zero pages migrate for free."""
    path = workdir / f'ram-{megabytes}M.bin'
    if not path.exists():
        path.write_bytes(os.urandom(megabytes << 20))
    return path


def start_source(workdir: Path, name: str = 'src', ram_mb: int = 16, running: bool = True,
                 prefix: Sequence[str] = ()) -> Daemon:
    """A guest-less VM with ``ram_mb`` MiB of random data in RAM; resumed unless ``running=False``."""
    loader = f'loader,file={ram_image(workdir, ram_mb)},addr={RAM_ADDRESS:#x},force-raw=on'
    daemon = start_vm(workdir, name=name, extra_args=['-device', loader], prefix=prefix)
    if running:
        with QMPConnection(daemon.obs_sock) as qmp:
            qmp.cmd('cont')
    return daemon


def start_destination(workdir: Path, name: str = 'dst', prefix: Sequence[str] = ()) -> Daemon:
    """The same VM, started with ``-incoming defer`` (it waits for ``migrate-incoming``)."""
    return start_vm(workdir, name=name, extra_args=['-incoming', 'defer'], prefix=prefix)


@contextmanager
def frozen_destination(workdir: Path, name: str = 'dst') -> Iterator[tuple[Daemon, str]]:
    """A destination that listens and never reads: ``(daemon, uri)``.

    The destination runs ``migrate-incoming`` and is then stopped with SIGSTOP. The kernel
    still accepts the source's connection, the source fills the socket buffers and blocks,
    so a migration to ``uri`` stays ``active`` with part of the RAM sent (the source's RAM
    is random data, far more than the buffers hold) until the block ends: then the
    destination is continued (SIGCONT) and stopped.
    """
    dest = start_destination(workdir, name=name)
    try:
        with QMPConnection(dest.obs_sock) as qmp:
            qmp.cmd('migrate-incoming', uri='tcp:127.0.0.1:0')
            address = qmp.cmd('query-migrate')['socket-address'][0]
        os.kill(dest.pid, signal.SIGSTOP)
        try:
            yield dest, f"tcp:{address['host']}:{address['port']}"
        finally:
            os.kill(dest.pid, signal.SIGCONT)
    finally:
        dest.stop()


def disk_pair(workdir: Path, sizes: dict[str, str], dest_sizes: dict[str, str] | None = None,
              ram_mb: int = 16) -> tuple[Daemon, Daemon, dict[str, tuple[Path, Path]]]:
    """A running source with qcow2 disks of ``sizes`` and a destination waiting with its own
    empty disks (``dest_sizes``, the same sizes unless given; a disk left out is missing):
    ``(source, dest, {device: (source image, destination image)})``."""
    images: dict[str, tuple[Path, Path]] = {}
    for device, size in sizes.items():
        source_image = make_image(workdir / f'src-{device}.qcow2', size)
        dest_size = (sizes if dest_sizes is None else dest_sizes).get(device)
        dest_image = workdir / f'dst-{device}.qcow2'
        if dest_size is not None:
            make_image(dest_image, dest_size)
        images[device] = (source_image, dest_image)
    loader = f'loader,file={ram_image(workdir, ram_mb)},addr={RAM_ADDRESS:#x},force-raw=on'
    source = start_vm(workdir, {d: pair[0] for d, pair in images.items()}, name='src',
                      extra_args=['-device', loader])
    try:
        with QMPConnection(source.obs_sock) as qmp:
            qmp.cmd('cont')
        dest = start_vm(workdir, {d: pair[1] for d, pair in images.items() if pair[1].exists()},
                        name='dst', extra_args=['-incoming', 'defer'])
    except BaseException:
        source.stop()
        raise
    return source, dest, images
