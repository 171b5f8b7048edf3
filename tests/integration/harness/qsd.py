"""qemu-storage-daemon: block jobs with no VM at all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .compat import compat_args
from .nodes import BlockdevSpec, blockdev_args, image_nodes, monitor_args
from .procs import Daemon, start_daemon


def start_qsd(workdir: Path, disks: Mapping[str, str | Path] | None = None,
              blockdevs: Sequence[BlockdevSpec] = (), name: str = 'qsd',
              extra_args: Sequence[str] = ()) -> Daemon:
    """Start qemu-storage-daemon.

    ``disks`` maps node names to qcow2 images: each becomes node ``<name>`` over
    file node ``<name>-file``. ``blockdevs`` are further raw ``--blockdev`` specs.
    """
    specs = [spec for node, path in (disks or {}).items() for spec in image_nodes(node, path)]
    specs += list(blockdevs)
    argv = ['qemu-storage-daemon', '--pidfile', str(workdir / f'{name}.pid'),
            *compat_args('qemu-storage-daemon', '--compat'),
            *blockdev_args('--blockdev', specs),
            *monitor_args(workdir, name, '--monitor', None),
            *extra_args]
    return start_daemon(name, argv, workdir)
