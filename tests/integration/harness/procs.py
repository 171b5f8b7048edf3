"""Start a QEMU process, wait until its monitors answer, stop it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .qmp import QMPConnection, QMPError


@dataclass
class Daemon:
    """A running qemu-storage-daemon or qemu-system-x86_64 with two monitors.

    ``sock`` is for the collection under test, ``obs_sock`` for the test itself.
    """

    name: str
    proc: subprocess.Popen[bytes]
    sock: Path
    obs_sock: Path
    pidfile: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; reaps the process."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(grace)

    def log_text(self) -> str:
        return self.log.read_text(errors='replace') if self.log.exists() else ''


def _die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGKILL): no QEMU outlives a killed pytest."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def start_daemon(name: str, argv: Sequence[str], workdir: Path, timeout: float = 10.0) -> Daemon:
    """Run ``argv`` (which must create ``<name>.sock`` and ``<name>-obs.sock``) and wait for it."""
    log = workdir / f'{name}.log'
    with log.open('wb') as out:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads here)
    daemon = Daemon(name, proc, workdir / f'{name}.sock', workdir / f'{name}-obs.sock',
                    workdir / f'{name}.pid', log)
    try:
        _wait_ready(daemon, timeout)
    except BaseException:
        daemon.stop()
        raise
    return daemon


def _wait_ready(daemon: Daemon, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (daemon.sock.exists() and daemon.obs_sock.exists()):
        if not daemon.alive():
            raise RuntimeError(f'{daemon.name} exited with {daemon.proc.returncode}:\n{daemon.log_text()}')
        if time.monotonic() > deadline:
            raise TimeoutError(f'{daemon.name}: no monitor socket after {timeout}s:\n{daemon.log_text()}')
        time.sleep(0.01)
    # The sockets exist as soon as the chardevs do; a command answering means
    # the whole command line (block nodes, devices) has been processed. A socket
    # file exists between QEMU's bind() and listen(): refused means "not yet".
    while True:
        try:
            with QMPConnection(daemon.obs_sock, timeout=max(deadline - time.monotonic(), 1.0)) as qmp:
                qmp.cmd('query-version')
            return
        except ConnectionRefusedError as exc:
            if time.monotonic() > deadline or not daemon.alive():
                raise RuntimeError(f'{daemon.name} refused {daemon.obs_sock}: {exc}\n{daemon.log_text()}') from exc
            time.sleep(0.01)
        except (OSError, QMPError) as exc:
            raise RuntimeError(f'{daemon.name} did not answer on {daemon.obs_sock}: {exc}\n{daemon.log_text()}') from exc


def _processes(under: Path, program: str) -> dict[int, str]:
    """PID -> command line of the running ``program`` processes naming a path under ``under``."""
    found = {}
    for cmdline in Path('/proc').glob('[0-9]*/cmdline'):
        try:
            text = cmdline.read_bytes().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if f'{under}/' in text and program in text:
            found[int(cmdline.parent.name)] = text
    return found


def qemu_processes(under: Path) -> list[str]:
    """Command lines of the running QEMU processes that name a path under ``under``."""
    return list(_processes(under, 'qemu-system').values())


def stop_strays(under: Path, grace: float = 5.0) -> list[str]:
    """Stop the qemu-storage-daemons the collection started under ``under`` and left running.

    A restore or verify runs in a daemon the module starts (``<ledger>/daemons/...``);
    a test that fails before the job ends leaves it behind. SIGTERM, then SIGKILL after
    ``grace`` seconds. Returns their command lines.
    """
    strays = _processes(under, 'qemu-storage-daemon')
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in strays:
        while Path(f'/proc/{pid}').exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return list(strays.values())
