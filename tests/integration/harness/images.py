"""Disk images made with qemu-img / qemu-io."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode:
        raise RuntimeError(f'{" ".join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}')
    return proc.stdout


def image_info(path: str | Path) -> dict[str, Any]:
    """``qemu-img info`` as a dict (``-U``: works while QEMU holds the image)."""
    info: dict[str, Any] = json.loads(_run('qemu-img', 'info', '-U', '--output=json', str(path)))
    return info


def make_image(path: str | Path, size: str | int = '64M', fmt: str = 'qcow2',
               backing: str | Path | None = None, pattern: int | None = None) -> Path:
    """Create an image; with ``pattern`` fill its whole size with that byte."""
    path = Path(path)
    argv = ['qemu-img', 'create', '-q', '-f', fmt]
    if backing is not None:
        argv += ['-b', str(backing), '-F', image_info(backing)['format']]
    _run(*argv, str(path), str(size))
    if pattern is not None:
        write_pattern(path, pattern, 0, size, fmt)
    return path


def write_pattern(path: str | Path, pattern: int, offset: int | str, length: int | str,
                  fmt: str = 'qcow2') -> None:
    """``qemu-io write -P``: fill a range with one byte value."""
    _run('qemu-io', '-f', fmt, '-c', f'write -P {pattern} {offset} {length}', str(path))


def has_pattern(path: str | Path, pattern: int, offset: int | str, length: int | str,
                fmt: str = 'qcow2') -> bool:
    """``qemu-io read -P``: does the range hold only that byte (through backing files)?

    Read-only and shared (``-r -U``), so it works while QEMU uses the image.
    """
    argv = ['qemu-io', '-r', '-U', '-f', fmt, '-c', f'read -P {pattern} {offset} {length}', str(path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode == 0:
        return True
    if 'Pattern verification failed' in proc.stdout + proc.stderr:
        return False
    raise RuntimeError(f'{" ".join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}')


def _opts(path: str | Path, fmt: str, shared: bool) -> str:
    opts = f'driver={fmt},file.driver=file,file.filename={path}'
    return opts + ',force-share=on' if shared else opts


def compare_closed(target: str | Path, source: str | Path, source_fmt: str = 'qcow2',
                   target_fmt: str = 'qcow2') -> str:
    """``qemu-img compare`` as a user reads a finished target: only the source is shared.

    The target is opened as any other process opens a file nobody uses (no ``-U``):
    this fails while QEMU still holds it. The source may be a running VM's disk.
    Returns qemu-img's output; raises when the images differ or cannot be opened.
    """
    return _run('qemu-img', 'compare', '--image-opts', _opts(source, source_fmt, True),
                _opts(target, target_fmt, False))


def check_closed(path: str | Path) -> dict[str, Any]:
    """``qemu-img check`` without ``-U`` (fails while QEMU holds the image), as a dict."""
    proc = subprocess.run(['qemu-img', 'check', '--output=json', str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode:
        raise RuntimeError(f'qemu-img check {path} failed ({proc.returncode}): '
                           f'{proc.stderr or proc.stdout}')
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def l2_entry_offset(path: str | Path, guest_offset: int) -> int:
    """Where in a qcow2 file the L2 entry of the cluster at ``guest_offset`` is (the cluster's
    L2 table must exist: the cluster, or one near it, was written)."""
    with open(path, 'rb') as image:
        header = image.read(72)
        cluster_bits = int.from_bytes(header[20:24], 'big')
        l1_offset = int.from_bytes(header[40:48], 'big')
        entries_per_l2 = (1 << cluster_bits) // 8
        index = guest_offset >> cluster_bits
        image.seek(l1_offset + 8 * (index // entries_per_l2))
        l2_table = int.from_bytes(image.read(8), 'big') & 0x00fffffffffffe00
    if not l2_table:
        raise LookupError(f'{path}: no L2 table for guest offset {guest_offset}')
    return l2_table + 8 * (index % entries_per_l2)


def corrupt_cluster(path: str | Path, guest_offset: int) -> None:
    """Point the L2 entry of the cluster at ``guest_offset`` at an unaligned host offset: QEMU
    refuses to read that cluster (and ``qemu-img check`` reports it)."""
    where = l2_entry_offset(path, guest_offset)
    with open(path, 'r+b') as image:
        image.seek(where)
        entry = int.from_bytes(image.read(8), 'big')
        if not entry & 0x00fffffffffffe00:
            raise LookupError(f'{path}: the cluster at guest offset {guest_offset} is not allocated')
        image.seek(where)
        image.write((entry | 0x200).to_bytes(8, 'big'))
