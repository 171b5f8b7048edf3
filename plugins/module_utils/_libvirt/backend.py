# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt backend: jobs of a libvirt domain through libvirt's own API.

This is a private module: its API may change between any two releases.

Block jobs go through ``blockPull``/``blockRebase``, ``blockCommit``,
``blockCopy`` and ``blockJobAbort``; backups through ``backupBegin``;
migrations through ``migrateToURI3`` (``_libvirt_migrate``).  Never through
QMP passthrough, which would taint the domain and leave libvirt's idea of the
disk chain stale.  Names and outcomes live in the domain's metadata, which the
job client alone reads and writes (``_ledger/metadata``); records come from
``_libvirt_jobs``, read by ``reading``.
"""

from __future__ import annotations

import contextlib
import time
import typing as t

from .. import _targets
from .._errors import JobStateError, TransportError, naming
from .._exports import TlsSource
from .._model import closing as _closing
from .._model.chains import MarkKind
from .._model.session import MakeOverlay, Note, Record
from .._model.shapes import ledger_entry
from .._model.vocabulary import SNAPSHOT_TYPES
from .._waiter import Waiter
from . import backup as _libvirt_backup
from . import domxml as _libvirt_xml
from . import instant as _libvirt_instant
from . import jobs as _libvirt_jobs
from . import metaxml as _metaxml
from . import migrate as _libvirt_migrate
from . import snapshots as _libvirt_snapshots
from . import verbs as _verbs
from .attach import attach_disk
from .connection import Connection, Domain
from .reading import ReadingSession
from .start import Starter


class LibvirtSession(ReadingSession):
    """One libvirt connection used by the job client for one operation."""

    def __init__(self, conn: Connection, backend: LibvirtBackend) -> None:
        super().__init__(conn, backend.scope, backend.waiter)
        self.backend = backend

    # -- starting ----------------------------------------------------------------------------

    def start(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        if params['type'] == 'migration':
            _libvirt_migrate.start(self.conn, self.domain, self.waiter, name, params, note)
            return
        if params['type'] in SNAPSHOT_TYPES:
            _libvirt_snapshots.start(self.domain, name, params, note)
            return
        Starter(self.domain, self.backend.targets).start(name, params, note)

    def _run(self, name: str, command: str, *args: t.Any) -> t.Any:
        with naming(name):
            return self.domain.call(command, *args)

    # -- steering ------------------------------------------------------------------------------

    def _where(self, name: str) -> tuple[str | None, Record]:
        """(disk or None for the domain job, ledger entry or {}) of job ``name``."""
        entry = next((e for e in self.entries if e['name'] == name), {})
        if entry:
            return (None if entry.get('libvirt_type') == 'backup' else entry.get('disk')), entry
        parsed = _libvirt_jobs.parse_generated(name)
        if parsed is None:
            raise JobStateError(f"job '{name}' is not a job of this domain", name)
        return parsed[0], {}

    def start_backup(self, name: str, params: dict[str, t.Any], plan: list[Record], note: Note,
                     before_reset: t.Callable[[], None]) -> None:
        """A checkpoint is only ever added: ``before_reset`` has nothing to announce."""
        _libvirt_backup.start(Starter(self.domain, self.backend.targets), name, params, plan,
                              note, self.scope)

    def end_pull(self, entry: Record, verdict: str) -> None:
        _libvirt_backup.end_pull(self.domain, entry, verdict)

    def start_instant(self, name: str, params: dict[str, t.Any], note: Note,
                      make: MakeOverlay) -> None:
        _libvirt_instant.start(Starter(self.domain, self.backend.targets), name, params, note,
                               make)

    def backup_sources(self, name: str, devices: t.Sequence[str] | None) -> list[Record]:
        return _libvirt_backup.sources(self.domain, name, devices)

    def remove_marks(self, marks: dict[str, list[str]]) -> None:
        """Delete the checkpoints (a checkpoint covers all its disks), newest first."""
        for name in dict.fromkeys(mark for names in marks.values() for mark in names):
            self.domain.delete_checkpoint(name)

    def adoption(self, name: str) -> Record | None:
        """The entry of a job started outside the collection (a generated name), so that
        its outcome is kept like that of any named job once the client writes it."""
        parsed = _libvirt_jobs.parse_generated(name)
        if parsed is None:
            return None
        disk, kind = parsed
        job_type = _libvirt_jobs.TYPES.get(kind, kind)
        entry = ledger_entry(name, job_type, {'type': job_type, 'device': disk}, time.time(),
                             'started', libvirt_type=kind, disk=disk, adopted=True)
        if disk is not None:
            found = [d for d in self.disks() if d['target'] == disk]
            mirror = (found[0].get('mirror') or {}) if found else {}
            if kind in _libvirt_jobs.PIVOTING and mirror.get('path'):
                entry['expect_source'] = mirror['path']
                entry['params']['target'] = mirror['path']
        return entry

    def verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        disk, entry = self._where(name)
        if verb == 'dismiss':
            return  # libvirt keeps nothing of an ended job; the ledger keeps the tombstone
        if disk is None:
            command, args = _verbs.domain_call(name, verb)
        else:
            command, args = _verbs.block_call(name, disk, verb, arguments)
        self._run(name, command, *args)
        if verb == 'complete' and entry.get('transient_job'):
            self._persist_pivot(name, entry)

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


class LibvirtBackend:
    """Jobs of one libvirt domain; the ledger scope is ``libvirt:<uri>#<domain>``.

    The constructor does no I/O. The domain's metadata ledger reads and writes through
    :meth:`read_metadata` and :meth:`write_metadata`; the backend never holds it.
    """

    #: libvirt tracks a disk's changes with checkpoints, one per backup.
    change_marks: MarkKind = 'checkpoint'
    #: libvirt's TCP exports use libvirtd's certificates (qemu.conf).
    nbd_tls: TlsSource = 'daemon'

    def __init__(self, uri: str, domain: str, run: _targets.Runner | None = None,
                 waiter: Waiter | None = None) -> None:
        self.uri = uri
        self.domain = domain
        #: Checks, makes and formats target files (``run`` runs qemu-img).
        self.targets = _targets.Targets(run=run)
        self.waiter = waiter or Waiter()
        self.scope = f'libvirt:{uri}#{domain}'
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
            return domain.metadata(_metaxml.NAMESPACE)

    def write_metadata(self, text: str | None) -> None:
        with self._domain() as domain:
            domain.set_metadata(text, _metaxml.PREFIX, _metaxml.NAMESPACE)

    def domain_job_running(self) -> bool:
        with self._domain() as domain:
            if not domain.active():
                return False
            stats = domain.call('jobStats', 0)
        return stats.get('type') in _libvirt_jobs.RUNNING_JOB_TYPES

    def attach(self, name: str, target: str, path: str, fmt: str, dry: bool = False) -> bool:
        """Attach image ``path`` as disk ``target`` (see ``attach.attach_disk``)."""
        with self._domain() as domain:
            return attach_disk(domain, name, target, path, fmt, dry)

    def witness(self, entry: Record) -> Record | None:
        """How a migration ended, asked of the destination once the domain has left."""
        return _libvirt_migrate.witness(entry, self.domain)

    def finish(self, entry: Record) -> bool:
        """Nothing to do: libvirt resumes the guest on the destination itself."""
        return False
