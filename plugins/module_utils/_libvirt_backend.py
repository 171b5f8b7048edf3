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
import os
import time
import typing as t

from . import _libvirt, _libvirt_jobs, _libvirt_migrate, _libvirt_xml
from ._backend import Note, Record
from ._errors import BackendError, InvalidArgument, JobStateError, TransportError
from ._jobs import compact
from ._libvirt import Connection, Domain
from ._libvirt_ledger import MetadataLedger

#: Longest wait for libvirt to report a block job that has left ``blockJobInfo``.
SETTLE_SECONDS = 2.0

#: block_job options libvirt has no counterpart for, per type.
UNSUPPORTED = {'on_error': 'libvirt sets no error policy for block jobs',
               'bitmap_mode': 'libvirt manages the bitmaps of its checkpoints itself',
               'auto_finalize': 'libvirt finalizes block jobs itself'}


class LibvirtSession:
    """One libvirt connection used by the job client for one operation."""

    #: Tests whether a path exists (replaced in unit tests).
    exists = staticmethod(os.path.exists)

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

        None once the domain has gone during the session (a migration that just
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
        for disk in disks:
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
        stats = self.domain.call('jobStats', 0)
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
        kind = params['type']
        if kind == 'migration':
            _libvirt_migrate.start(self.conn, self.domain, name, params, note)
            return
        if kind == 'create':
            raise InvalidArgument(f"job '{name}': type create is not available for libvirt "
                                  'domains; create images with qemu-img or a storage pool', name)
        for key, why in UNSUPPORTED.items():
            if params.get(key) not in (None, True if key == 'auto_finalize' else None):
                raise InvalidArgument(f"job '{name}': {key} cannot be used with a libvirt "
                                      f'domain ({why})', name)
        if kind == 'backup':
            self._start_backup(name, params, note)
            return
        disk = _libvirt_xml.find_disk(self.disks(), params['device'], name)
        chain = _libvirt_xml.chain_paths(disk)
        target = disk['target']
        speed = params.get('speed') or 0
        if kind == 'stream':
            base = _libvirt_xml.in_chain(disk, params['base'], name, 'base') \
                if params.get('base') else None
            note(disk=target, libvirt_type='pull', chain=chain,
                 expect_chain=_libvirt_jobs.expected_chain(chain, 'pull', None, base))
            if base:
                self._run(name, 'blockRebase', target, base, speed,
                          _libvirt.BLOCK_REBASE_BANDWIDTH_BYTES)
            else:
                self._run(name, 'blockPull', target, speed, _libvirt.BLOCK_PULL_BANDWIDTH_BYTES)
        elif kind == 'commit':
            self._start_commit(name, params, disk, chain, speed, note)
        else:
            self._start_copy(name, params, disk, speed, note)

    def _run(self, name: str, command: str, *args: t.Any) -> t.Any:
        try:
            return self.domain.call(command, *args)
        except BackendError as err:
            raise err.for_job(name) from err

    def _start_commit(self, name: str, params: dict[str, t.Any], disk: Record,
                      chain: list[str], speed: int, note: Note) -> None:
        top = _libvirt_xml.in_chain(disk, params['top'], name, 'top') if params.get('top') \
            else chain[0]
        base = _libvirt_xml.in_chain(disk, params['base'], name, 'base') \
            if params.get('base') else None
        if len(chain) < 2:
            raise InvalidArgument(f"job '{name}': disk '{disk['target']}' has no backing file "
                                  'to commit into', name)
        if base is not None and chain.index(base) <= chain.index(top):
            raise InvalidArgument(f"job '{name}': base '{base}' is not below top '{top}' in "
                                  f"the chain of disk '{disk['target']}'", name)
        active = top == chain[0]
        flags = _libvirt.BLOCK_COMMIT_BANDWIDTH_BYTES
        facts: dict[str, t.Any] = {'disk': disk['target'], 'chain': chain, 'active': active}
        if active:
            flags |= _libvirt.BLOCK_COMMIT_ACTIVE
            facts.update(libvirt_type='active-commit', expect_source=base or chain[-1])
        else:
            facts.update(libvirt_type='commit',
                         expect_chain=_libvirt_jobs.expected_chain(chain, 'commit', top, base))
        note(**facts)
        self._run(name, 'blockCommit', disk['target'], base, None if active else top, speed,
                  flags)

    def _start_copy(self, name: str, params: dict[str, t.Any], disk: Record, speed: int,
                    note: Note) -> None:
        path = params['target']
        exists = self.exists(path)
        if exists and not params['reuse_target']:
            raise InvalidArgument(f"job '{name}': target {path} already exists; set "
                                  'reuse_target: true to write into it', name)
        if not exists and params['reuse_target']:
            raise InvalidArgument(f"job '{name}': reuse_target is true but target {path} does "
                                  'not exist', name)
        sync = params.get('sync') or 'full'
        if sync not in ('full', 'top'):
            raise InvalidArgument(f"job '{name}': a libvirt copy takes sync full or top "
                                  f'(got {sync})', name)
        if params.get('bitmap'):
            raise InvalidArgument(f"job '{name}': a libvirt copy takes no bitmap", name)
        fmt = params.get('target_format') or 'qcow2'
        flags = 0
        if sync == 'top':
            flags |= _libvirt.BLOCK_COPY_SHALLOW
        if params['reuse_target']:
            flags |= _libvirt.BLOCK_COPY_REUSE_EXT
        transient = self.domain.persistent()
        if transient:
            flags |= _libvirt.BLOCK_COPY_TRANSIENT_JOB
        typed: dict[str, t.Any] = {}
        if speed:
            typed['bandwidth'] = speed
        if params.get('granularity'):
            typed['granularity'] = params['granularity']
        if params.get('buf_size'):
            typed['buf-size'] = params['buf_size']
        facts: dict[str, t.Any] = {'disk': disk['target'], 'libvirt_type': 'copy',
                                   'chain': _libvirt_xml.chain_paths(disk), 'expect_source': path,
                                   'target_format': fmt, 'transient_job': transient}
        if not exists:
            facts['created_file'] = path
        note(**facts)
        self._run(name, 'blockCopy', disk['target'], _libvirt_xml.copy_destination(path, fmt),
                  typed, flags)

    def _start_backup(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        disks = self.disks()
        writable = [d['target'] for d in disks if d['device'] == 'disk' and not d['readonly']]
        incremental, checkpoint = None, None
        if 'disks' in params:  # the backup module: several disks, a chain of checkpoints
            listed = params['disks'] or [{'device': target, 'target': None, 'format': 'qcow2'}
                                         for target in writable]
            targets = [self._backup_target(name, disks, disk['device'], disk['target'] or
                                           os.path.join(params['target_dir'] or '',
                                                        f"{disk['device']}.{disk['format']}"),
                                           disk['format']) for disk in listed]
            if params.get('compress') or params.get('perf'):
                raise InvalidArgument(f"job '{name}': compress and perf cannot be used with a "
                                      'libvirt domain', name)
            if params.get('bitmap'):
                incremental = self._chain_base(name, params)
                checkpoint = name if params['mode'] != 'differential' else None
        else:
            sync = params.get('sync') or 'full'
            targets = [self._backup_target(
                name, disks, params['device'], params['target'],
                params.get('target_format') or 'qcow2')]
            if sync in ('incremental', 'bitmap'):
                incremental = params['bitmap']
            elif sync != 'full':
                raise InvalidArgument(f"job '{name}': a libvirt backup takes sync full or "
                                      f'incremental (got {sync})', name)
            elif params.get('bitmap'):
                checkpoint = params['bitmap']
        if params.get('speed'):
            raise InvalidArgument(f"job '{name}': libvirt sets no speed for backups", name)
        chosen = [disk['target'] for disk in targets]
        note(libvirt_type='backup', disks=chosen, targets=targets, checkpoint=checkpoint,
             incremental=incremental, created_files=[disk['path'] for disk in targets])
        ckpt = _libvirt_xml.checkpoint_xml(checkpoint, chosen, writable) if checkpoint else None
        self._run(name, 'backupBegin', _libvirt_xml.backup_xml(targets, incremental), ckpt, 0)

    def _backup_target(self, name: str, disks: list[Record], device: str, path: str,
                       fmt: str) -> Record:
        disk = _libvirt_xml.find_disk(disks, device, name)
        path = os.path.abspath(path)
        if self.exists(path):
            raise InvalidArgument(f"job '{name}': target {path} of disk '{disk['target']}' "
                                  'already exists; choose another path', name)
        if not os.path.isdir(os.path.dirname(path)):
            raise InvalidArgument(f"job '{name}': the directory {os.path.dirname(path)} of "
                                  f'target {path} does not exist', name)
        return {'target': disk['target'], 'path': path, 'format': fmt}

    def _chain_base(self, name: str, params: dict[str, t.Any]) -> str | None:
        """The checkpoint an incremental (last full or incremental) or differential (last
        full) backup of the chain builds on; None for a full backup.

        :raise InvalidArgument: the chain has no succeeded backup to build on.
        """
        mode = params['mode']
        if mode == 'full':
            return None
        wanted = ('full',) if mode == 'differential' else ('full', 'incremental')
        chain = [e for e in self._entries()
                 if e.get('type') == 'backup' and (e.get('params') or {}).get('bitmap') ==
                 params['bitmap'] and (e.get('params') or {}).get('mode') in wanted
                 and e.get('checkpoint')]
        chain.sort(key=lambda e: e.get('started_at', 0))
        if not chain or (chain[-1].get('last') or {}).get('outcome') != 'succeeded':
            raise InvalidArgument(f"job '{name}': chain '{params['bitmap']}' has no succeeded "
                                  f'backup to build an {mode} backup on; run a full backup',
                                  name)
        return t.cast(str, chain[-1]['checkpoint'])

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
            try:
                self.conn.define(changed)
            except BackendError as err:
                raise err.for_job(name) from err

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

    def cleanup(self, entry: Record) -> list[str]:
        """Remove the files a start noted if the job never started; nothing is attached."""
        if entry.get('state') == 'starting':
            for path in entry.get('created_files') or [entry.get('created_file')]:
                if path:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
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

    def __init__(self, uri: str, domain: str, check_mode: bool = False) -> None:
        self.uri = uri
        self.domain = domain
        self.check_mode = check_mode
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

    def witness(self, entry: Record) -> Record | None:
        """How a migration ended, asked of the destination once the domain has left."""
        return _libvirt_migrate.witness(entry, self.domain)

    def finish(self, entry: Record) -> bool:
        """Nothing to do: libvirt resumes the guest on the destination itself."""
        return False
