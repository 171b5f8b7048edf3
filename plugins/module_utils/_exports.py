# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where pull backups keep their scratch images and NBD socket, and how exports are named.

This is a private module: its API may change between any two releases.
Used by both backends' pull backups (``_qmp/pull``, ``_libvirt/backup``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import typing as t

from ._errors import InvalidArgument

Record = dict[str, t.Any]
#: Where a TCP export's TLS certificates come from: the ``nbd_tls_dir`` the user gives
#: (QMP: the module makes QEMU's credentials object), or the daemon's own configuration
#: (libvirt: ``backup_tls_x509_cert_dir`` in qemu.conf, else ``default_tls_x509_cert_dir``).
TlsSource = t.Literal['dir', 'daemon']


def pull_dir(scope: str, tmp: str | None = None) -> str:
    """The private directory of a VM's pull backups: scratch (fleecing) images and the
    default NBD socket (short: a UNIX socket path has at most 107 bytes)."""
    digest = hashlib.sha256(scope.encode()).hexdigest()[:12]
    return os.path.join(tmp or tempfile.gettempdir(), f'vmjobs-pull-{digest}')


def nbd_uri(socket: str, export: str) -> str:
    """The NBD URI of ``export`` on the server at UNIX socket ``socket``."""
    return f'nbd+unix:///{export}?socket={socket}'


def tls_uri(host: str, port: int, export: str) -> str:
    """The NBD URI of ``export`` on a TCP server that requires TLS (``nbds``)."""
    shown = f'[{host}]' if ':' in host else host
    return f'nbds://{shown}:{port}/{export}'


def parse_address(name: str, address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as (host, port).

    :raise InvalidArgument: no port, or one out of range.
    """
    host, port = address.rpartition(':')[::2]
    host = host[1:-1] if host.startswith('[') and host.endswith(']') else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"job '{name}': nbd_address {address!r} is not HOST:PORT "
                              '(a port from 1 to 65535)', name)
    return host, int(port)


def scratch_path(directory: str, member: str) -> str:
    """Where the scratch (fleecing) image of ``member`` is made."""
    return os.path.join(directory, f'{member}.fleece.qcow2')


def private_dir(name: str, directory: str) -> None:
    """Make ``directory`` (mode 0700), or check that it is this user's and private.

    :raise InvalidArgument: it is a link, not a directory, someone else's or open to others.
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    found = os.lstat(directory)
    if (not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid()
            or found.st_mode & 0o077):
        raise InvalidArgument(f"job '{name}': {directory} is not a private directory of this "
                              'user (mode 0700); remove it', name)


def server_of(params: dict[str, t.Any], directory: str) -> Record:
    """Where a pull backup's NBD server listens: ``socket`` (UNIX), or ``host``, ``port``
    and ``tls_dir`` (TCP with TLS; None when the daemon's certificates are used)."""
    if params.get('nbd_address'):
        host, port = parse_address('', params['nbd_address'])
        return {'host': host, 'port': port, 'tls_dir': params.get('nbd_tls_dir'),
                'dir': directory}
    return {'socket': params.get('nbd_socket') or os.path.join(directory, 'nbd.sock'),
            'dir': directory}


def export_uri(server: Record, export: str) -> str:
    """The URI of ``export`` on ``server`` (see :func:`server_of`)."""
    if server.get('host'):
        return tls_uri(server['host'], server['port'], export)
    return nbd_uri(server['socket'], export)
