# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named jobs that read a backup chain in a qemu-storage-daemon of their own: restore, verify.

This is a private module: its API may change between any two releases.

Each job gets its daemon (``_qmp/daemon``), whose socket path depends on the job's name
only; the job's ledger entry lives in that socket's scope, like any QMP job's. So
``job_info``, ``job_wait`` and ``job`` reach it with ``socket`` set to the daemon's
socket, and once the daemon has gone they read its tombstone there (see
``Reads.offline``), as a re-run does. The life of a job:

1. no entry yet: the source is probed (``prepare``), the daemon started, the job started
   through the ordinary :class:`JobClient` start (the ledger entry first);
2. once it has concluded, the first task that waits on it closes its targets (as for every
   job: the target is flushed and closed, or deleted if unfinished), then :meth:`finish`
   dismisses it into a tombstone and stops the daemon;
3. a re-run finds the entry (live, or the tombstone) and copies nothing.
"""

from __future__ import annotations

import contextlib
import typing as t

from .. import _targets
from .._errors import JobFailed, VmjobsError
from .._ledger.files import Ledger
from .._model import closing as _closing
from .._model.session import Record
from .._qmp import daemon as _daemon
from .._qmp.backend import QmpBackend
from .._waiter import Waiter
from .jobs import JobClient
from .reads import Result, absent_record
from .tombstones import dismiss

#: Probes the source before a new job starts: what the start needs besides the identity.
Probe = t.Callable[[], dict[str, t.Any]]


class ChainJobs:
    """Restore and verify jobs, each in its own daemon, under one ledger root.

    The constructor does no I/O.

    :param root: the ledger root; the daemons' directories are below it.
    :param retention: days a tombstone is kept.
    :param run: runs ``qemu-storage-daemon`` (the module edge's runner).
    :param connect_timeout: seconds to connect to a daemon.
    :param check_mode: predict only: no daemon is started, nothing is written.
    """

    def __init__(self, root: str, retention: float, run: _targets.Runner,
                 connect_timeout: float = 5.0, check_mode: bool = False,
                 waiter: Waiter | None = None) -> None:
        self.root = root
        self.retention = retention
        self.run = run
        self.connect_timeout = connect_timeout
        self.check_mode = check_mode
        self.waiter = waiter or Waiter()
        #: Whether :meth:`finish` stopped a daemon (the job's, once it concluded).
        self.stopped = False

    def paths(self, name: str) -> _daemon.DaemonPaths:
        """Where the daemon of job ``name`` keeps its socket and pidfile."""
        return _daemon.daemon_paths(self.root, name)

    def client(self, name: str) -> JobClient:
        """The job client of job ``name``'s daemon (no I/O)."""
        backend = QmpBackend(self.paths(name).socket, self.connect_timeout, self.waiter)
        ledger = Ledger(self.root, backend.scope, self.retention)
        return JobClient(backend, ledger, self.waiter, check_mode=self.check_mode)

    def start(self, name: str, params: dict[str, t.Any], probe: Probe, wait: str,
              wait_timeout: float) -> Result:
        """Start job ``name`` (or find it), wait if asked; finish it once it has concluded.

        :raise InvalidArgument: the probe refused the source, the target is refused.
        :raise JobConflict: the name is taken by a different job.
        :raise BackendError: QEMU refused (nothing is left behind).
        :raise JobFailed: the job failed while waited for (its tombstone is kept).
        :raise JobTimeout: the wait ran out (the job goes on in its daemon).
        """
        client = self.client(name)
        paths = self.paths(name)
        self._recover(client, name, paths)
        extra: dict[str, t.Any] = {}
        started = False
        if client.ledger.get(name) is None:
            extra = probe()
            if self.check_mode:  # a new job: nothing to ask a daemon that does not run
                return Result(True, [dict(absent_record(name), type=params['type'])])
            _daemon.start_daemon(name, paths, self.run)
            started = True
        try:
            result = client.start(name, params, wait, wait_timeout,
                                  prepare=lambda _records, _entries: extra)
        except VmjobsError as err:
            if client.ledger.get(name) is None:  # the start failed and left nothing
                if started:
                    _daemon.stop_daemon(paths, self.waiter, self.connect_timeout)
                raise
            err.records = self.finish(client, name, err.records) or err.records
            raise
        records = self.finish(client, name, result.records) or result.records
        if wait == 'concluded' and records[0].get('outcome') == 'failed':  # as a wait reports it
            raise JobFailed(f"job '{name}' failed: {records[0].get('error')}", name, records)
        # A re-run that dismissed the job and stopped its daemon changed something too.
        return Result(result.changed or self.stopped, records, result.elapsed)

    def finish(self, client: JobClient, name: str, records: list[Record]) -> list[Record]:
        """Dismiss a concluded job whose targets are closed and stop its daemon.

        :return: the job's record as its tombstone reads now, or [] when it goes on.
        """
        record = next((r for r in records if r.get('name') == name), None)
        if self.check_mode or record is None or record.get('outcome') is None:
            return []
        entry = client.ledger.get(name)
        if entry is None or _closing.target_state(entry) == 'open':
            return []
        if record.get('live'):
            try:
                dismiss(client, record, entry, forget=False)
            except VmjobsError:
                if (client.ledger.get(name) or {}).get('state') != 'dismissed':
                    raise
                # another task with the same name dismissed it first; its tombstone holds
        self.stopped = _daemon.stop_daemon(self.paths(name), self.waiter, self.connect_timeout)
        return [client.get(name)[0]]

    def _recover(self, client: JobClient, name: str, paths: _daemon.DaemonPaths) -> None:
        """Settle a job whose daemon exited before it closed the job's target (killed, say).

        Its target was never flushed and closed by QEMU, so it is removed: a start that
        died before the job ran is forgotten; a job that ran becomes a failed tombstone.
        """
        entry = client.ledger.get(name)
        if self.check_mode or entry is None or entry.get('state') not in ('starting', 'started') \
                or _closing.target_state(entry) not in ('open', None) \
                or _daemon.running_pid(paths.pidfile) is not None:
            return
        with client.ledger.lock():
            _closing.remove_created(entry)
            with contextlib.suppress(OSError):  # a new start clears them, or says why not
                _daemon.clear_stale(paths)
            if entry.get('state') == 'starting':
                client.ledger.delete(name)
                return
            last = dict(entry.get('last') or {}, status='concluded', outcome='failed',
                        error=f'qemu-storage-daemon {paths.socket} exited before the job '
                              'closed its target; the unfinished target was removed')
            client.ledger.update(name, state='dismissed', last=last,
                                 targets='removed' if _closing.has_targets(entry) else None)
