# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt backend: jobs of a libvirt domain through libvirt's own API.

This is a private module: its API may change between any two releases.

Block jobs go through ``blockPull``/``blockRebase``, ``blockCommit``,
``blockCopy`` and ``blockJobAbort``; backups through ``backupBegin``;
migrations through ``migrateToURI3`` (``_libvirt_migrate``).  Never through
QMP passthrough, which would taint the domain and leave libvirt's idea of the
disk chain stale.  Names and outcomes live in the domain's metadata (see
``_libvirt_ledger``); records come from ``_libvirt_jobs``.
"""

from __future__ import annotations

import contextlib
import time
import typing as t

from .. import _targets
from .._client.observer import compact
from .._errors import BackendError, JobStateError, TransportError, naming
from .._ledger.metadata import MetadataLedger
from .._model import closing as _closing
from .._model.session import Note, Record
from . import connection as _libvirt
from . import domxml as _libvirt_xml
from . import jobs as _libvirt_jobs
from . import migrate as _libvirt_migrate
from .connection import Connection, Domain
from .start import Starter

#: Longest wait for libvirt to report a block job that has left ``blockJobInfo``.
SETTLE_SECONDS = 2.0


class LibvirtSession:
    """One libvirt connection used by the job client for one operation."""

    def __init__(self, conn: Connection, backend: LibvirtBackend) -> None:
        self.conn = conn
        self.backend = backend
        #: The last block job event status seen per disk in this session.
        self.seen: dict[str, str] = {}
        #: Statistics of the domain jobs that completed while this session listened.
        self.completed: list[Record] = []
        #: Events read while settling an outcome, not yet handed to the client.
        self.pending: list[Record] = []

    @property
    def domain(self) -> Domain:
        if self.conn.domain is None:
            raise TransportError(f'{self.backend.scope}: the session is closed')
        return self.conn.domain

    def _entries(self) -> list[Record]:
        ledger = self.backend.ledger
        return ledger.all() if ledger is not None else []

    # -- reading -----------------------------------------------------------------------------

    def disks(self) -> list[Record]:
        """The domain's disks as ``_libvirt_xml.disks`` reads them from the live XML."""
        return _libvirt_xml.disks(self.domain.xml())

    def records(self) -> list[Record]:
        """Every disk's block job, the domain job, and named jobs that ended.

        Nothing once the domain has gone during the session (a migration that just
        completed): the ledger and the destination tell the rest.
        """
        try:
            return self._records()
        except TransportError:
            return []

    def _records(self) -> list[Record]:
        entries = self._entries()
        disks = self.disks()
        records: list[Record] = []
        claimed: set[str] = set()
        active = self.domain.active()  # a shut-off persistent domain runs no jobs
        for disk in disks if active else []:
            if disk['device'] not in ('disk', 'lun') or not disk['target']:
                continue
            info = self.domain.call('blockJobInfo', disk['target'],
                                    _libvirt.BLOCK_JOB_INFO_BANDWIDTH_BYTES)
            kind = _libvirt.BLOCK_JOB_TYPES.get((info or {}).get('type', 0))
            if kind is None or kind == 'backup':  # a backup is the domain job
                continue
            entry = _libvirt_jobs.owner(entries, disk['target'], _libvirt_jobs.TYPES[kind])
            name = entry['name'] if entry else _libvirt_jobs.generated_name(disk['target'], kind)
            claimed.add(name)
            records.append(_libvirt_jobs.block_record(name, disk, info))
        stats = self.domain.call('jobStats', 0) if active else {}
        if stats.get('type') in _libvirt_jobs.RUNNING_JOB_TYPES:
            kind = _libvirt_jobs.DOMAIN_OPERATIONS.get(stats.get('operation', 0), 'unknown')
            entry = _libvirt_jobs.owner(entries, None, kind)
            if entry is None or kind != 'migration':  # the client asks for migrations itself
                name = entry['name'] if entry else _libvirt_jobs.generated_name(None, kind)
                claimed.add(name)
                records.append(_libvirt_jobs.domain_record(name, stats))
        by_target = {disk['target']: disk for disk in disks}
        for entry in entries:
            if entry['name'] in claimed or entry.get('state') != 'started' or \
                    entry.get('type') == 'migration':
                continue
            record = self._ended(entry, by_target)
            if record is not None:
                records.append(record)
        return records

    def _ended(self, entry: Record, by_target: dict[str, Record]) -> Record | None:
        """The concluded record of a named job libvirt no longer has (its outcome kept)."""
        last = entry.get('last') or {}
        if last.get('outcome'):
            return _libvirt_jobs.concluded(entry, last['outcome'], last.get('error'))
        if entry.get('libvirt_type') == 'backup':
            found = None
            for stats in [*self.completed, self._completed_stats()]:
                found = _libvirt_jobs.finished_stats(stats, 'backup') or found
            if found is None:
                return None
            result, error = found
        else:
            disk = entry.get('disk') or ''
            result, error = _libvirt_jobs.block_outcome(entry, by_target.get(disk),
                                                        self.seen.get(disk))
            if result != 'succeeded' and disk not in self.seen and self._settle(disk):
                by_target = {d['target']: d for d in self.disks()}
                result, error = _libvirt_jobs.block_outcome(entry, by_target.get(disk),
                                                            self.seen.get(disk))
        record = _libvirt_jobs.concluded(entry, result, error)
        self._keep(entry['name'], record)
        return record

    def _settle(self, disk: str) -> bool:
        """Give libvirt a moment to finish processing a block job that QEMU ended.

        libvirt drops the job from ``blockJobInfo`` a little before it updates the
        disk's chain and emits its event; without this, a job that just succeeded
        could look as if it ended without effect.

        :return: whether an event for ``disk`` arrived within :data:`SETTLE_SECONDS`.
        """
        deadline = time.monotonic() + SETTLE_SECONDS
        while disk not in self.seen:
            left = deadline - time.monotonic()
            event = self.conn.wait_event(left) if left > 0 else None
            if event is None:
                return False
            self.pending.append(self._translate(event))
        return True

    def _completed_stats(self) -> Record:
        if not self.domain.active():
            return {}
        flags = _libvirt.JOB_STATS_COMPLETED | _libvirt.JOB_STATS_KEEP_COMPLETED
        return t.cast(Record, self.domain.call('jobStats', flags))

    def _keep(self, name: str, record: Record) -> None:
        """Write an outcome into the ledger as soon as it is known (libvirt forgets it)."""
        ledger = self.backend.ledger
        if ledger is None or self.backend.check_mode:
            return
        with ledger.lock():
            entry = ledger.get(name)
            if entry is not None and not (entry.get('last') or {}).get('outcome'):
                ledger.update(name, last=compact(record))

    # -- starting ----------------------------------------------------------------------------

    def start(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        if params['type'] == 'migration':
            _libvirt_migrate.start(self.conn, self.domain, name, params, note)
            return
        Starter(self.domain, self._entries(), self.backend.targets).start(name, params, note)

    def _run(self, name: str, command: str, *args: t.Any) -> t.Any:
        with naming(name):
            return self.domain.call(command, *args)

    # -- steering ------------------------------------------------------------------------------

    def _where(self, name: str) -> tuple[str | None, Record]:
        """(disk or None for the domain job, ledger entry or {}) of job ``name``."""
        ledger = self.backend.ledger
        entry = (ledger.get(name) if ledger is not None else None) or {}
        if entry:
            return (None if entry.get('libvirt_type') == 'backup' else entry.get('disk')), entry
        parsed = _libvirt_jobs.parse_generated(name)
        if parsed is None:
            raise JobStateError(f"job '{name}' is not a job of this domain", name)
        return parsed[0], {}

    def _adopt(self, name: str, disk: str | None) -> None:
        """Record a job started outside the collection before steering it, so that its
        outcome is kept like that of any named job."""
        ledger = self.backend.ledger
        parsed = _libvirt_jobs.parse_generated(name)
        if ledger is None or self.backend.check_mode or parsed is None:
            return
        kind = parsed[1]
        entry: Record = {'name': name, 'type': _libvirt_jobs.TYPES.get(kind, kind),
                         'state': 'started', 'libvirt_type': kind, 'disk': disk,
                         'adopted': True, 'started_at': time.time()}
        entry['params'] = {'type': entry['type'], 'device': disk}
        if disk is not None:
            found = [d for d in self.disks() if d['target'] == disk]
            mirror = (found[0].get('mirror') or {}) if found else {}
            if kind in _libvirt_jobs.PIVOTING and mirror.get('path'):
                entry['expect_source'] = mirror['path']
                entry['params']['target'] = mirror['path']
        with ledger.lock():
            if ledger.get(name) is None:
                ledger.put(entry)

    def verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        disk, entry = self._where(name)
        if not entry:
            self._adopt(name, disk)
        if verb == 'dismiss':
            return  # libvirt keeps nothing of an ended job; the ledger keeps the tombstone
        if disk is None:
            if verb != 'cancel':
                raise BackendError(verb, 'VIR_ERR_NO_SUPPORT',
                                   f'libvirt cannot {verb} a domain job', name)
            self._run(name, 'abortJob')
            return
        if verb == 'cancel':
            self._run(name, 'blockJobAbort', disk, _libvirt.BLOCK_JOB_ABORT_ASYNC)
        elif verb == 'complete':
            self._run(name, 'blockJobAbort', disk, _libvirt.BLOCK_JOB_ABORT_PIVOT)
            if entry.get('transient_job'):
                self._persist_pivot(name, entry)
        elif verb == 'set-speed':
            self._run(name, 'blockJobSetSpeed', disk, arguments['speed'],
                      _libvirt.BLOCK_JOB_SPEED_BANDWIDTH_BYTES)
        else:
            raise BackendError(verb, 'VIR_ERR_NO_SUPPORT',
                               f'libvirt cannot {verb} a block job', name)

    def _persist_pivot(self, name: str, entry: Record) -> None:
        """After a copy of a persistent domain pivoted: point its definition at the copy too.

        libvirt runs such a copy as a transient job, which changes the live
        definition only; a restart would otherwise boot the old image.
        """
        inactive = self.domain.xml(inactive=True)
        changed = _libvirt_xml.set_disk_source(inactive, entry['disk'], entry['expect_source'],
                                               entry.get('target_format') or 'qcow2')
        if changed is not None:
            with naming(name):
                self.conn.define(changed)

    def migration(self, entry: Record) -> Record | None:
        try:
            return _libvirt_migrate.record(self.domain, entry, self.completed)
        except TransportError:  # it has left during this session: ask the destination
            seen = _libvirt_migrate.witness(entry, self.backend.domain)
            if seen is None:
                return None
            found = _libvirt_jobs.concluded(entry, seen['outcome'], seen['error'])
            found.update(raw_status='completed', dest_uri=entry.get('dest_uri'))
            return found

    def migration_verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        _libvirt_migrate.apply_verb(self.domain, name, verb, **arguments)

    def cleanup(self, entry: Record, discard: bool = False) -> list[str]:
        """Remove the files a start noted if ``discard``; libvirt detaches what it attached."""
        if discard:
            _closing.remove_created(entry)
        return []

    # -- events ----------------------------------------------------------------------------------

    def _translate(self, event: Record) -> Record:
        if event.get('event') == 'job-completed':
            self.completed.append(event['stats'])
        name = None
        if event.get('event') == 'block-job':
            self.seen[event['disk']] = event['status']
            kind = _libvirt_jobs.TYPES.get(event.get('type', ''), '')
            entry = _libvirt_jobs.owner(self._entries(), event['disk'], kind)
            name = entry['name'] if entry else None
        return _libvirt_jobs.client_event(event, name)

    def wait_event(self, timeout: float) -> Record | None:
        if self.pending:
            return self.pending.pop(0)
        event = self.conn.wait_event(timeout)
        return self._translate(event) if event is not None else None

    def events(self) -> list[Record]:
        events, self.pending = self.pending, []
        return events + [self._translate(event) for event in self.conn.drain()]


class LibvirtBackend:
    """Jobs of one libvirt domain; the ledger scope is ``libvirt:<uri>#<domain>``.

    The constructor does no I/O.  :attr:`ledger` is the domain's metadata ledger,
    set by whoever builds the job client.
    """

    #: The session plans multi-disk backups itself (disks, checkpoints) from the backup
    #: module's parameters; no QMP block graph is needed.
    plans_backups = True

    def __init__(self, uri: str, domain: str, check_mode: bool = False,
                 run: _targets.Runner | None = None) -> None:
        self.uri = uri
        self.domain = domain
        self.check_mode = check_mode
        #: Checks, makes and formats target files (``run`` runs qemu-img).
        self.targets = _targets.Targets(run=run)
        self.scope = f'libvirt:{uri}#{domain}'
        self.ledger: MetadataLedger | None = None
        self._open: Connection | None = None

    @contextlib.contextmanager
    def session(self) -> t.Iterator[LibvirtSession]:
        with Connection(self.uri, self.domain) as conn:
            outer, self._open = self._open, conn
            try:
                yield LibvirtSession(conn, self)
            finally:
                self._open = outer

    @contextlib.contextmanager
    def _domain(self) -> t.Iterator[Domain]:
        """The open session's domain, or a short connection of its own."""
        if self._open is not None and self._open.domain is not None:
            yield self._open.domain
            return
        with Connection(self.uri, self.domain, events=False) as conn:
            yield conn.open_domain()

    def read_metadata(self) -> str | None:
        with self._domain() as domain:
            return domain.metadata(_libvirt_xml.NAMESPACE)

    def write_metadata(self, text: str | None) -> None:
        with self._domain() as domain:
            domain.set_metadata(text, _libvirt_xml.PREFIX, _libvirt_xml.NAMESPACE)

    def domain_job_running(self) -> bool:
        with self._domain() as domain:
            if not domain.active():
                return False
            stats = domain.call('jobStats', 0)
        return stats.get('type') in _libvirt_jobs.RUNNING_JOB_TYPES

    def witness(self, entry: Record) -> Record | None:
        """How a migration ended, asked of the destination once the domain has left."""
        return _libvirt_migrate.witness(entry, self.domain)

    def finish(self, entry: Record) -> bool:
        """Nothing to do: libvirt resumes the guest on the destination itself."""
        return False
