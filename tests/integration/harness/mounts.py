"""A small tmpfs, to make a job's target filesystem run out of space."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def tmpfs(mountpoint: Path, size: str = '16M') -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``mountpoint`` (needs root); unmount on exit."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size},mode=0755', 'vj-small', str(mountpoint)],
                   check=True, capture_output=True, text=True, timeout=30)
    try:
        yield mountpoint
    finally:
        if subprocess.run(['umount', str(mountpoint)], capture_output=True, timeout=30, check=False).returncode:
            subprocess.run(['umount', '-l', str(mountpoint)], capture_output=True, timeout=30, check=False)
