# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Making and checking target files safely: private modes, no links, safe directories.

This is a private module: its API may change between any two releases.

The rules (see docs/security.md):

- A target that is a symbolic link, dangling or not, is refused.  The path handed
  to QEMU or libvirt is ``realpath(directory)/name``.
- The target's directory and every directory above it must be owned by root or by
  the module's user, and not writable by group or others unless sticky (as /tmp).
  Then nobody else can swap the file between its creation and QEMU opening it.
- A new target is created here, with ``O_CREAT|O_EXCL|O_NOFOLLOW`` and mode 0600,
  then set to the mode asked for with ``fchmod`` (so the umask does not matter and
  it is never more open than asked), before QEMU opens it.  QEMU's ``file`` driver
  opens an existing file without changing its mode.

The functions at the top are pure; :class:`Targets` does the file system work.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import typing as t

from ._errors import InvalidArgument

#: Mode of a target file when the task gives none.
DEFAULT_MODE = 0o600
#: The permission bits a target mode may have; the owner must read and write.
PERMISSION_BITS = 0o777
OWNER_RW = 0o600
_OCTAL = re.compile(r'(?:0o?)?([0-7]{3})')
#: Runs a command: argv -> (exit status, stdout, stderr). The module edge passes
#: ``AnsibleModule.run_command``: module_utils start no processes of their own.
Runner = t.Callable[[list[str]], 'tuple[int, str, str]']


class TargetRace(InvalidArgument):
    """The target appeared between the check and its creation; it is not ours."""


# -- pure checks ----------------------------------------------------------------------------------

def parse_mode(value: t.Any, job: str | None = None, option: str = 'mode') -> int | None:
    """A file mode from an octal string (``'0640'``, ``'640'``, ``'0o640'``) or an int.

    An int is taken as the mode itself, as ``ansible.builtin.file`` does (YAML's
    unquoted ``0640`` is already 416).  None stays None (the default applies).

    :raise InvalidArgument: not such a mode, bits beyond 0777, or no owner read and write.
    """
    if value is None:
        return None
    prefix = f"job '{job}': " if job else ''
    mode: int | None = None
    if isinstance(value, bool):
        mode = None
    elif isinstance(value, int):
        mode = value
    elif isinstance(value, str):
        match = _OCTAL.fullmatch(value.strip())
        mode = int(match.group(1), 8) if match else None
    if mode is None or not 0 <= mode <= PERMISSION_BITS:
        raise InvalidArgument(f"{prefix}{option} {value!r} is not a file mode: give octal "
                              "permission bits as a quoted string such as '0600' or '0640'", job)
    if mode & OWNER_RW != OWNER_RW:
        raise InvalidArgument(f"{prefix}{option} {value!r} ({mode:04o}) leaves the owner without "
                              'read and write; QEMU writes the image as its owner (use at least '
                              "'0600')", job)
    return mode


def directory_problem(directory: str, st_mode: int, st_uid: int, euid: int) -> str | None:
    """Why other users could change ``directory`` (its mode and owner given), or None.

    A directory is safe when root or ``euid`` owns it and it is not writable by
    group or others, unless it is sticky (then nobody can remove or rename another
    user's file in it).
    """
    if not stat.S_ISDIR(st_mode):
        return f'{directory} is not a directory'
    if st_uid not in (0, euid):
        return (f'directory {directory} is owned by uid {st_uid}, neither root nor this '
                f'user (uid {euid}), so its owner could swap the file; use a directory owned '
                f'by root or uid {euid}')
    if st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st_mode & stat.S_ISVTX:
        return (f'directory {directory} is writable by other users (mode '
                f'{stat.S_IMODE(st_mode):04o}) and not sticky, so they could swap the file; '
                f'run chmod g-w,o-w {directory} (or chmod +t {directory}), or choose another '
                'directory')
    return None


def ancestors(directory: str) -> list[str]:
    """``directory`` (absolute, normalised) and every directory above it, up to ``/``."""
    found = [directory]
    while directory != os.path.dirname(directory):
        directory = os.path.dirname(directory)
        found.append(directory)
    return found


def owner_for(euid: int, qemu: tuple[int, int] | None) -> tuple[int, int] | None:
    """Whom a new target should belong to: QEMU's user when root makes it for another user.

    QEMU created targets itself before, owned by its own user; a 0600 file of root's
    would be out of its reach.  None keeps the module's user.
    """
    if euid != 0 or qemu is None or qemu[0] == 0:
        return None
    return qemu


def qemu_img_create(path: str, fmt: str, size: int,
                    backing: tuple[str, str] | None = None) -> list[str]:
    """The ``qemu-img create`` command that formats the existing file ``path``.

    :param backing: (backing file, its format), recorded without opening it (``-u``),
        since a running VM holds it.
    """
    argv = ['qemu-img', 'create', '-q', '-f', fmt]
    if backing and fmt == 'qcow2':
        argv += ['-b', backing[0], '-F', backing[1], '-u']
    return argv + [path, str(size)]


# -- the file system -------------------------------------------------------------------------------

def link_message(job: str, path: str, what: str = 'target') -> str:
    """The refusal of the symbolic link ``path``: where it points, and whether that exists."""
    try:
        points = os.readlink(path)
    except OSError:
        points = '?'
    dangling = '' if os.path.exists(path) else ', which does not exist'
    return (f"job '{job}': {what} {path} is a symbolic link (to {points}{dangling}); give the "
            'path of the file itself, since a link could send the image anywhere')


@dataclasses.dataclass(frozen=True)
class Target:
    """A checked target: ``path`` to hand to QEMU, and whether a file is there already."""

    path: str
    exists: bool


def require_reuse(job: str, given: str, target: Target, reuse: bool) -> None:
    """Refuse an existing target unless ``reuse``, and a missing one with it.

    :param given: the target as the task gave it (for messages).
    :raise InvalidArgument: the target's existence does not match ``reuse_target``.
    """
    if target.exists and not reuse:
        raise InvalidArgument(f"job '{job}': target {given} already exists; set "
                              'reuse_target: true to write into it', job)
    if not target.exists and reuse:
        raise InvalidArgument(f"job '{job}': reuse_target is true but target {given} "
                              'does not exist', job)


class Targets:
    """Checks target paths, creates target files and formats them (``qemu-img``).

    :param euid: the user the checks allow besides root (default: the module's).
    :param run: runs ``qemu-img`` for :meth:`format` (see :data:`Runner`).
    """

    def __init__(self, euid: int | None = None, run: Runner | None = None) -> None:
        self.euid = os.geteuid() if euid is None else euid
        self.run = run

    def check(self, job: str, path: str, what: str = 'target') -> Target:
        """Refuse a link or an unsafe directory; return the path QEMU is to use.

        :param what: how messages name the path (default ``target``).
        :raise InvalidArgument: a symbolic link, a missing or unsafe directory.
        """
        path = os.path.abspath(path)
        try:
            found = os.lstat(path)
        except FileNotFoundError:
            found = None
        except OSError as err:
            raise InvalidArgument(f"job '{job}': cannot inspect {what} {path}: "
                                  f'{err.strerror}', job) from err
        if found is not None and stat.S_ISLNK(found.st_mode):
            raise InvalidArgument(link_message(job, path, what), job)
        directory = os.path.realpath(os.path.dirname(path))
        for place in ancestors(directory):
            try:
                seen = os.lstat(place)
            except FileNotFoundError:
                raise InvalidArgument(f"job '{job}': the directory {directory} of {what} {path} "
                                      'does not exist', job) from None
            except OSError as err:
                raise InvalidArgument(f"job '{job}': cannot inspect directory {place} of {what} "
                                      f'{path}: {err.strerror}', job) from err
            problem = directory_problem(place, seen.st_mode, seen.st_uid, self.euid)
            if problem:
                raise InvalidArgument(f"job '{job}': {what} {path} is refused: {problem}", job)
        return Target(os.path.join(directory, os.path.basename(path)), found is not None)

    def create(self, job: str, path: str, mode: int | None = None,
               qemu: tuple[int, int] | None = None) -> None:
        """Create the empty file ``path`` with ``mode`` (default 0600), never through a link.

        :param qemu: QEMU's (uid, gid); a file root makes is given to that user.
        :raise TargetRace: something appeared at ``path`` since it was checked.
        :raise InvalidArgument: the file cannot be created (permissions, space, ...).
        """
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise TargetRace(f"job '{job}': target {path} appeared while it was being created "
                             '(another process made it); it was left alone', job) from None
        except OSError as err:
            raise InvalidArgument(f"job '{job}': cannot create target {path}: "
                                  f'{err.strerror}', job) from err
        try:
            owner = owner_for(self.euid, qemu)
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, DEFAULT_MODE if mode is None else mode)
        except OSError as err:
            os.close(fd)
            os.unlink(path)
            raise InvalidArgument(f"job '{job}': cannot set the mode or owner of target "
                                  f'{path}: {err.strerror}', job) from err
        os.close(fd)

    def format(self, job: str, path: str, fmt: str, size: int,
               backing: tuple[str, str] | None = None) -> None:
        """Write an empty image of ``fmt`` and ``size`` into the file ``path`` (``qemu-img``).

        The file keeps its mode and owner.

        :raise InvalidArgument: qemu-img is missing or failed (its text kept).
        """
        if self.run is None:
            raise InvalidArgument(f"job '{job}': cannot format target {path}: no way to run "
                                  'qemu-img here', job)
        try:
            status, out, err = self.run(qemu_img_create(path, fmt, size, backing))
        except OSError as failure:
            raise InvalidArgument(f"job '{job}': cannot format target {path}: "
                                  f'{failure.strerror or failure}', job) from failure
        if status:
            text = ' '.join((err or out).split()) or f'exit {status}'
            raise InvalidArgument(f"job '{job}': qemu-img create of target {path} failed: "
                                  f'{text}', job)
