"""A backup reader over NBD, as third-party backup software reads a pull backup.

A full read copies an export whole (``qemu-img convert`` from its URI). An incremental
read asks the export for the extents of its dirty-bitmap meta context (``qemu-img map``
with ``x-dirty-bitmap``) and copies only those, through a raw window on the export, into
a copy of the previous read.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse


def _run(*argv: str, timeout: float = 300) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode:
        raise AssertionError(f'{" ".join(argv)} failed ({proc.returncode}): {proc.stderr or proc.stdout}')
    return proc.stdout


def nbd_opts(uri: str) -> str:
    """``--image-opts`` of the NBD export at ``uri`` (``nbd+unix:///EXPORT?socket=PATH``)."""
    parsed = urlparse(uri)
    socket = parse_qs(parsed.query)['socket'][0]
    return f'driver=nbd,server.type=unix,server.path={socket},export={parsed.path.lstrip("/")}'


def read_full(uri: str, dest: Path) -> Path:
    """Copy the whole export into the raw file ``dest``."""
    _run('qemu-img', 'convert', '-O', 'raw', uri, str(dest))
    return dest


def read_full_async(uri: str, dest: Path) -> subprocess.Popen[str]:
    """:func:`read_full`, started; wait for the process."""
    return subprocess.Popen(['qemu-img', 'convert', '-O', 'raw', uri, str(dest)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def dirty_extents(uri: str, context: str) -> list[tuple[int, int]]:
    """(offset, length) of every extent ``context`` marks dirty.

    With ``x-dirty-bitmap``, qemu-img map reports the context's dirty extents as holding
    no data (``data: false``).
    """
    out = _run('qemu-img', 'map', '--output=json', '--image-opts',
               f'{nbd_opts(uri)},x-dirty-bitmap={context}')
    extents: list[dict[str, Any]] = json.loads(out)
    return [(e['start'], e['length']) for e in extents if not e['data']]


def read_extents(uri: str, extents: list[tuple[int, int]], base: Path, dest: Path) -> int:
    """Copy ``base`` (a raw read of an earlier backup) to ``dest``, then write each extent
    read from the export over it; return the bytes read from the export."""
    shutil.copyfile(base, dest)
    done = 0
    chunk = dest.with_suffix('.chunk')
    with dest.open('r+b') as out:
        for offset, length in extents:
            _run('qemu-img', 'convert', '-O', 'raw', '--image-opts',
                 f'driver=raw,offset={offset},size={length},file.{nbd_opts(uri).replace(",", ",file.")}',
                 str(chunk))
            out.seek(offset)
            out.write(chunk.read_bytes())
            done += length
    chunk.unlink(missing_ok=True)
    return done


def compare_raw(read: Path, reference: Path) -> None:
    """A reader's raw copy equals the reference image (qcow2)."""
    _run('qemu-img', 'compare', '-f', 'raw', '-F', 'qcow2', str(read), str(reference))
