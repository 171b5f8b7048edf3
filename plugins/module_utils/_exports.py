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

from ._errors import InvalidArgument


def pull_dir(scope: str, tmp: str | None = None) -> str:
    """The private directory of a VM's pull backups: scratch (fleecing) images and the
    default NBD socket (short: a UNIX socket path has at most 107 bytes)."""
    digest = hashlib.sha256(scope.encode()).hexdigest()[:12]
    return os.path.join(tmp or tempfile.gettempdir(), f'vmjobs-pull-{digest}')


def nbd_uri(socket: str, export: str) -> str:
    """The NBD URI of ``export`` on the server at UNIX socket ``socket``."""
    return f'nbd+unix:///{export}?socket={socket}'


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
