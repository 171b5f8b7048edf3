"""Backup chains under test: a VM whose disks take guest writes, and the images they should equal.

``Disks`` starts a VM whose virtio disks allow a second writer (``share-rw=on``), so
that ``qemu-io`` in QEMU's monitor can write through the disk's node as a guest
would. Every write also goes to a reference copy of the disk that QEMU never
opens; ``remember(label)`` copies the references, which are then exactly the disks
at that moment, for ``qemu-img compare`` with a backup read back through its chain.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .guest import inserted_node
from .nodes import blockdev_args, image_nodes
from .procs import Daemon
from .qmp import QMPConnection


def shared_disk_args(disks: Mapping[str, Path]) -> list[str]:
    """``-blockdev``/``-device`` arguments: disk ``X`` on node ``X-fmt``, writable by qemu-io too."""
    args: list[str] = []
    for dev, path in disks.items():
        args += blockdev_args('-blockdev', image_nodes(f'{dev}-fmt', path, file_node=f'{dev}-file'))
        args += ['-device', f'virtio-blk-pci,drive={dev}-fmt,id={dev},share-rw=on']
    return args


def run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode:
        raise AssertionError(f'{" ".join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}')
    return proc.stdout


def compare(image: Path | str, reference: Path | str) -> None:
    """``qemu-img compare``: the image, read through its backing chain, equals the reference."""
    run('qemu-img', 'compare', str(image), str(reference))


def backing_file(image: Path | str) -> str | None:
    """The backing file name recorded in a qcow2 header (as written, maybe relative)."""
    info: dict[str, Any] = json.loads(run('qemu-img', 'info', '-U', '--output=json', str(image)))
    return info.get('backing-filename')


class Disks:
    """A VM with disks ``disk0``, ``disk1``, ... and a reference copy of each.

    :param vm: the ``vm`` fixture.
    :param make_image: the ``make_image`` fixture.
    :param workdir: the ``workdir`` fixture.
    :param patterns: one disk per byte value, filled with it.
    """

    def __init__(self, vm: Callable[..., Daemon], make_image: Callable[..., Path], workdir: Path,
                 patterns: tuple[int, ...] = (0x11, 0x22), size: str = '8M', name: str = 'vm') -> None:
        self.workdir = workdir
        self.name = name
        self._vm, self._make_image, self._size = vm, make_image, size
        self.images: dict[str, Path] = {}
        self.references: dict[str, Path] = {}
        for pattern in patterns:
            self._add(pattern)
        self.daemon = vm(name=name, extra_args=shared_disk_args(self.images))
        self.obs = QMPConnection(self.daemon.obs_sock).connect()

    def _add(self, pattern: int) -> None:
        dev = f'disk{len(self.images)}'
        self.images[dev] = self._make_image(f'{self.name}-{dev}.qcow2', self._size,
                                            pattern=pattern)
        self.references[dev] = self.workdir / f'{self.name}-{dev}.ref.qcow2'
        shutil.copyfile(self.images[dev], self.references[dev])

    def restart(self, crash: bool = False, add: tuple[int, ...] = ()) -> None:
        """Stop QEMU and start it again on the same images, with disks ``add`` added.

        A clean stop (SIGTERM) saves the persistent bitmaps; a ``crash`` (SIGKILL) leaves
        them marked in use, so QEMU finds them inconsistent when it opens them again.
        """
        self.obs.close()
        if crash:
            self.daemon.proc.kill()
            self.daemon.proc.wait(10)
        else:
            self.daemon.stop(grace=30)
        assert self.daemon.proc.returncode is not None
        for sock in (self.daemon.sock, self.daemon.obs_sock):
            sock.unlink(missing_ok=True)
        for pattern in add:
            self._add(pattern)
        self.daemon = self._vm(name=self.name, extra_args=shared_disk_args(self.images))
        self.obs = QMPConnection(self.daemon.obs_sock).connect()

    def close(self) -> None:
        self.obs.close()

    def write(self, device: str, pattern: int | None, offset: str, length: str) -> None:
        """Write ``pattern`` (``None``: zeroes) through the disk, and into its reference."""
        command = f'write -z {offset} {length}' if pattern is None else \
            f'write -P {pattern} {offset} {length}'
        node = inserted_node(self.obs, device)  # a backup's filter, while one runs
        out = str(self.obs.cmd('human-monitor-command',
                               {'command-line': f'qemu-io {node} "{command}"'}))
        if out.strip():  # qemu-io prints to QEMU's stdout; the reply carries only errors
            raise AssertionError(f'qemu-io {node} "{command}": {out.strip()}')
        run('qemu-io', '-f', 'qcow2', '-c', command, str(self.references[device]))

    def remember(self, label: str) -> dict[str, Path]:
        """Copies of the references: the disks as they are now."""
        folder = self.workdir / 'refs' / label
        folder.mkdir(parents=True)
        copies = {}
        for dev, reference in self.references.items():
            copies[dev] = folder / f'{dev}.qcow2'
            shutil.copyfile(reference, copies[dev])
        return copies

    def bitmaps(self, device: str) -> dict[str, dict[str, Any]]:
        """The dirty bitmaps of a disk's node, by name."""
        for node in self.obs.cmd('query-named-block-nodes', flat=True):
            if node['node-name'] == f'{device}-fmt':
                return {b['name']: b for b in node.get('dirty-bitmaps') or [] if 'name' in b}
        raise LookupError(device)

    def attached_by_collection(self) -> list[str]:
        return [n['node-name'] for n in self.obs.cmd('query-named-block-nodes', flat=True)
                if n['node-name'].startswith('vj')]
