"""A paused, guest-less q35 VM whose disks are virtio-blk devices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .compat import compat_args
from .nodes import blockdev_args, image_nodes, monitor_args
from .procs import Daemon, start_daemon


def start_vm(workdir: Path, disks: Mapping[str, str | Path] | None = None, name: str = 'vm',
             fmt: str = 'qcow2', extra_args: Sequence[str] = (),
             prefix: Sequence[str] = ()) -> Daemon:
    """Start qemu-system-x86_64 (``-S``: never runs guest code).

    ``disks`` maps qdev ids to images: disk ``disk0`` gets nodes ``disk0-file`` and
    ``disk0-fmt`` and the device ``-device virtio-blk-pci,drive=disk0-fmt,id=disk0``.
    Deprecated QMP commands and arguments are rejected (``harness.compat``).
    ``prefix`` runs QEMU through a wrapper that execs it (``ip netns exec NS``).
    """
    argv = [*prefix, 'qemu-system-x86_64', '-M', 'q35', '-S', '-nodefaults', '-display', 'none',
            '-m', '64', '-accel', 'tcg', '-pidfile', str(workdir / f'{name}.pid'),
            *compat_args('qemu-system-x86_64', '-compat'),
            *monitor_args(workdir, name, '-mon', 'control')]
    for dev, path in (disks or {}).items():
        argv += blockdev_args('-blockdev', image_nodes(f'{dev}-fmt', path, fmt, file_node=f'{dev}-file'))
        # share-rw: HMP qemu-io writes through the device's node as the guest would
        argv += ['-device', f'virtio-blk-pci,drive={dev}-fmt,id={dev},share-rw=on']
    argv += extra_args
    return start_daemon(name, argv, workdir)
