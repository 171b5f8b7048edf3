# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A qemu-storage-daemon of the collection's own, that runs one job with no VM (a restore).

This is a private module: its API may change between any two releases.

The daemon of job ``name`` lives in a private directory under the ledger root,
``<root>/daemons/<hash of the name>/``: its QMP socket ``qmp.sock`` and its pidfile.
The path depends on the job name only, so a re-run, ``job_info`` and ``job_wait``
find the job through the same socket (and its ledger scope, the socket's path) after
the daemon has gone. The daemon is started daemonized (it returns once its monitor
listens) through the runner the module edge hands down, and stopped with ``quit``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import select
import typing as t

from .. import _targets
from .._errors import BackendError, InvalidArgument, TransportError
from .._waiter import Waiter
from .monitor import Monitor

#: The directory under the ledger root that holds the daemons' directories.
DAEMONS = 'daemons'
#: A UNIX socket path longer than this does not fit ``sockaddr_un``.
MAX_SOCKET_PATH = 107
#: Seconds the daemon has to exit after ``quit``.
EXIT_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class DaemonPaths:
    """Where the daemon of one job keeps its socket and pidfile."""

    directory: str
    socket: str
    pidfile: str


def daemon_paths(root: str, name: str) -> DaemonPaths:
    """The daemon directory, socket and pidfile of job ``name`` under ledger ``root``."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    directory = os.path.join(os.path.abspath(root), DAEMONS, digest)
    return DaemonPaths(directory, os.path.join(directory, 'qmp.sock'),
                       os.path.join(directory, 'qsd.pid'))


def running_pid(pidfile: str) -> int | None:
    """The pid in ``pidfile`` if that process runs (and is no zombie), else None."""
    try:
        with open(pidfile, encoding='ascii') as handle:
            pid = int(handle.read().strip() or 0)
        with open(f'/proc/{pid}/stat', encoding='ascii') as handle:
            state = handle.read().rsplit(')', 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return None if state in ('Z', 'X') else pid


def clear_stale(paths: DaemonPaths) -> None:
    """Remove the socket and pidfile a daemon that was killed left behind (none runs).

    :raise OSError: they cannot be removed.
    """
    for stale in (paths.socket, paths.pidfile):
        if os.path.lexists(stale):
            os.unlink(stale)


def _escape(path: str) -> str:
    """A path inside a QEMU option string (a comma is doubled)."""
    return path.replace(',', ',,')


def start_daemon(name: str, paths: DaemonPaths, run: _targets.Runner) -> None:
    """Start the job's daemon unless it runs; return once its monitor listens.

    :raise InvalidArgument: the socket path is too long, the directory cannot be made,
        or qemu-storage-daemon is missing or failed (its own text kept).
    """
    if running_pid(paths.pidfile) is not None:
        return
    if len(paths.socket.encode()) > MAX_SOCKET_PATH:
        raise InvalidArgument(f"job '{name}': the daemon socket {paths.socket} is longer than "
                              f'{MAX_SOCKET_PATH} bytes; choose a shorter ledger_dir', name)
    try:
        os.makedirs(paths.directory, mode=0o700, exist_ok=True)
        with _start_lock(paths.directory):  # two tasks with the same name start one daemon
            if running_pid(paths.pidfile) is not None:
                return
            clear_stale(paths)
            _spawn(name, paths, run)  # reports its own failures, none as OSError
    except OSError as err:
        raise InvalidArgument(f"job '{name}': cannot prepare daemon directory {paths.directory}: "
                              f'{err.strerror}', name) from err


@contextlib.contextmanager
def _start_lock(directory: str) -> t.Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` itself while a daemon starts there."""
    handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _spawn(name: str, paths: DaemonPaths, run: _targets.Runner) -> None:
    """Run qemu-storage-daemon daemonized; it returns once its monitor listens."""
    argv = ['qemu-storage-daemon', '--daemonize', '--pidfile', paths.pidfile,
            '--chardev', f'socket,id=vjmon,path={_escape(paths.socket)},server=on,wait=off',
            '--monitor', 'chardev=vjmon']
    try:
        status, out, text = run(argv)
    except OSError as failure:
        raise InvalidArgument(f"job '{name}': cannot start qemu-storage-daemon: "
                              f'{failure.strerror or failure}', name) from failure
    if status:
        said = ' '.join((text or out).split()) or f'exit {status}'
        raise InvalidArgument(f"job '{name}': qemu-storage-daemon failed to start: {said}", name)


def stop_daemon(paths: DaemonPaths, waiter: Waiter, connect_timeout: float = 5.0) -> bool:
    """Ask the daemon to quit and wait until it has exited; True if it was running.

    Its images are closed by then: the caller detaches them first, and QEMU closes
    whatever is left when it quits.

    :raise TransportError: the daemon did not exit within :data:`EXIT_TIMEOUT` seconds.
    """
    pid = running_pid(paths.pidfile)
    if pid is None:
        return False
    with _exit_watch(pid) as exited:
        try:
            with Monitor(paths.socket, connect_timeout) as monitor:
                monitor.execute('quit')
        except (TransportError, BackendError):
            pass  # quit closes the connection before (or instead of) answering

        def gone(left: float) -> bool | None:
            if running_pid(paths.pidfile) != pid:
                return True
            if left > 0 and not exited(min(left, 0.5)):
                waiter.sleep(min(left, 0.02))
            return None

        if waiter.until(gone, EXIT_TIMEOUT) is None:
            raise TransportError(f'qemu-storage-daemon {pid} ({paths.socket}) did not exit '
                                 f'within {int(EXIT_TIMEOUT)}s of quit')
    return True


@contextlib.contextmanager
def _exit_watch(pid: int) -> t.Iterator[t.Callable[[float], bool]]:
    """A wait for process ``pid`` to exit: called with seconds, it returns once the process
    has exited (True) or the seconds have passed (False). It wakes on the exit itself
    (a pidfd) where the kernel has them, else it returns False at once (the caller sleeps).
    """
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfds here, or the process is gone already
        yield lambda _seconds: False
        return
    poller = select.poll()
    poller.register(handle, select.POLLIN)
    try:
        yield lambda seconds: bool(poller.poll(max(seconds, 0.0) * 1000))
    finally:
        os.close(handle)
