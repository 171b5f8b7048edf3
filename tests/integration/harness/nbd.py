"""A backup reader over NBD, as third-party backup software reads a pull backup.

A full read copies an export whole (``qemu-img convert`` from its URI). An incremental
read asks the export for the extents of its dirty-bitmap meta context (``qemu-img map``
with ``x-dirty-bitmap``) and copies only those, through a raw window on the export, into
a copy of the previous read.
"""

from __future__ import annotations

import json
import shutil
import socket as _socket
import subprocess
import threading
from collections.abc import Callable, Iterable
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


def make_tls_dir(directory: Path) -> Path:
    """A CA and a server and client certificate for 127.0.0.1, named as QEMU's
    ``tls-creds-x509`` objects expect them (``ca-cert.pem``, ``server-cert.pem``, ...)."""
    directory.mkdir(mode=0o700)

    def ssl(*args: str) -> None:
        _run('openssl', *args)

    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=vmjobs test CA',
        '-keyout', str(directory / 'ca-key.pem'), '-out', str(directory / 'ca-cert.pem'))
    for role in ('server', 'client'):
        key, csr = directory / f'{role}-key.pem', directory / f'{role}.csr'
        ext = directory / f'{role}.ext'
        ext.write_text('subjectAltName=IP:127.0.0.1\nextendedKeyUsage='
                       + ('serverAuth' if role == 'server' else 'clientAuth') + '\n')
        ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
            '-keyout', str(key), '-out', str(csr))
        ssl('x509', '-req', '-in', str(csr), '-CA', str(directory / 'ca-cert.pem'),
            '-CAkey', str(directory / 'ca-key.pem'), '-CAcreateserial', '-days', '2',
            '-extfile', str(ext), '-out', str(directory / f'{role}-cert.pem'))
    return directory


def read_tls(host: str, port: int, export: str, tls_dir: Path, dest: Path) -> subprocess.CompletedProcess[str]:
    """Copy an export of a TCP server that requires TLS, as a client with a certificate."""
    return subprocess.run(['qemu-img', 'convert', '--object',
                           f'tls-creds-x509,id=tls0,endpoint=client,dir={tls_dir}',
                           '--image-opts', (f'driver=nbd,server.type=inet,server.host={host},'
                                            f'server.port={port},export={export},tls-creds=tls0'),
                           '-O', 'raw',
                           str(dest)], capture_output=True, text=True, timeout=300, check=False)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with _socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def writes_while(write: Callable[..., None], writes: Iterable[tuple[Any, ...]],
                 reads: list[subprocess.Popen[str]]) -> None:
    """Make the guest's ``writes`` (each ``write(*w)``) in a thread while the reader's
    processes ``reads`` run; wait for both, and check that each read succeeded."""
    writer = threading.Thread(target=lambda: [write(*w) for w in writes])
    writer.start()
    for proc in reads:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    writer.join(60)
    assert not writer.is_alive(), 'the guest\'s writes did not end'


def plain_refused(host: str, port: int, export: str) -> bool:
    """Whether the TCP server turns away a reader that does not speak TLS."""
    plain = subprocess.run(['qemu-img', 'info', f'nbd://{host}:{port}/{export}'],
                           capture_output=True, text=True, timeout=60, check=False)
    return plain.returncode != 0
