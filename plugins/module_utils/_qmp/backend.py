# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The QMP backend: jobs of a QEMU process or qemu-storage-daemon behind a QMP socket.

This is a private module: its API may change between any two releases.

The modules that start and steer each kind of job (backups, pull backups, migrations,
snapshots, instant restores, block jobs) are imported by the method that needs them: a
module run imports only what its job uses (every import is paid at each run; see
docs/performance.md, Restore).
"""

from __future__ import annotations

import contextlib
import os
import typing as t

from .. import _targets
from .._errors import BackendError, InvalidArgument, naming
from .._exports import TlsSource
from .._model import closing as _closing
from .._model import migration as _migration
from .._model import records as _model
from .._model.chains import MarkKind, is_pull
from .._model.session import MakeOverlay, Note, Record
from .._model.vocabulary import OWN_DAEMON_TYPES, SNAPSHOT_TYPES
from .._waiter import Waiter
from . import verbs as _verbs
from .monitor import Monitor, commands
from .restore import start_chain_job

#: QEMU's texts for a node that does not exist (7.2 says "Failed to find node with node-name=...").
GONE = ('not found', 'cannot find', 'failed to find')


class QmpSession:
    """One QMP connection used by the job client for one operation."""

    def __init__(self, monitor: Monitor, waiter: Waiter, scope: str = '') -> None:
        self.monitor = monitor
        self.waiter = waiter
        self.entries: dict[str, Record] = {}
        self.scope = scope

    def know(self, entries: t.Sequence[Record]) -> None:
        """QEMU's jobs carry their names: nothing to map. A migration's entry says which
        disk copies (members) a cancel ends."""
        self.entries = {entry['name']: entry for entry in entries}

    def ended(self) -> list[Record]:
        """QEMU keeps a concluded job until it is dismissed."""
        return []

    def adoption(self, name: str) -> Record | None:
        """A QEMU job's name is its id: nothing to adopt."""
        return None

    def backup_sources(self, name: str, devices: t.Sequence[str] | None) -> list[Record]:
        from . import sources as _qmp_sources
        return _qmp_sources.backup_sources(self.monitor, name, devices)

    def remove_marks(self, marks: dict[str, list[str]]) -> None:
        self.monitor.execute('transaction', {'actions': [
            {'type': 'block-dirty-bitmap-remove', 'data': {'node': node, 'name': name}}
            for node, names in marks.items() for name in names]})

    def records(self) -> list[Record]:
        jobs = self.monitor.execute('query-jobs')
        block_jobs = self.monitor.execute('query-block-jobs')
        return _model.records_from_qmp(jobs, block_jobs)

    def migration(self, entry: Record) -> Record | None:
        """The record of the migration ``query-migrate`` reports, if ``entry`` started it."""
        if entry.get('prior') is None:
            return None  # its start never got as far as asking QEMU to migrate
        from . import migrate as _qmp_migrate
        info = self.monitor.execute('query-migrate')
        if _qmp_migrate.fingerprint(info) == entry['prior']:
            return None  # QEMU still describes the migration before this one
        return _migration.record_from_migrate(info, entry['name'])

    def start(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        if params['type'] == 'migration':
            from . import migrate as _qmp_migrate
            _qmp_migrate.start_migration(self.monitor, name, params, note,
                                         self.monitor.connect_timeout)
        elif params['type'] in SNAPSHOT_TYPES:
            from .snapshots import start_snapshot
            start_snapshot(self.monitor, name, params)
        elif params['type'] in OWN_DAEMON_TYPES:
            start_chain_job(self.monitor, self.waiter, name, params, note)
        else:
            from .start import start_job
            start_job(self.monitor, self.waiter, name, params, note)

    def start_backup(self, name: str, params: dict[str, t.Any], plan: list[Record], note: Note,
                     before_reset: t.Callable[[], None]) -> None:
        if is_pull(params):
            from . import pull as _qmp_pull
            _qmp_pull.start_pull(self.monitor, self.waiter, name, params, plan, note, self.scope)
        else:
            from . import backup as _qmp_backup
            _qmp_backup.start_group(self.monitor, self.waiter, name, params, plan, note,
                                    before_reset)

    def end_pull(self, entry: Record, verdict: str) -> None:
        from . import pull as _qmp_pull
        with naming(entry['name']):
            _qmp_pull.end_pull(self.monitor, self.waiter, entry, verdict)

    def start_instant(self, name: str, params: dict[str, t.Any], note: Note,
                      make: MakeOverlay) -> None:
        from .instant import start_instant
        start_instant(self.monitor, self.waiter, name, params, note, make)

    def migration_verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        """Apply a verb or completion action; a cancel also cancels the disk copies."""
        from . import migrate as _qmp_migrate
        from . import storage as _qmp_storage
        _qmp_migrate.apply_verb(self.monitor, name, verb, **arguments)
        if verb == 'cancel' and name in self.entries:
            _qmp_storage.stop_copy(self.monitor, self.entries[name])

    def verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        """Apply ``verb``; ``cancel`` with ``keep_copy`` ends a READY job without an error.

        :raise InvalidArgument: ``change`` on a QEMU without ``block-job-change`` (probed).
        """
        if verb == 'change' and 'block-job-change' not in commands(self.monitor):
            raise InvalidArgument(
                f"job '{name}': this QEMU cannot change the copy mode of a running mirror "
                '(block-job-change came with QEMU 8.2); start the mirror with copy_mode: '
                'write-blocking instead', name)
        with naming(name):
            self.monitor.execute(*_verbs.job_command(name, verb, arguments))

    def cleanup(self, entry: Record, discard: bool = False) -> list[str]:
        """Detach the nodes a start attached, unless a device now uses them.

        ``blockdev-del`` flushes and closes each image. With ``discard``, the files
        the start created (``created_files``) are removed too, unless a node was kept.
        A migration's disk copies are ended first (kept as copies unless ``discard``) and the
        destination's NBD server is stopped last.
        """
        if entry.get('members') and entry.get('type') == 'migration':
            from . import storage as _qmp_storage
            _qmp_storage.end_members(self.monitor, self.waiter, entry, keep=not discard)
        kept = self._detach(entry)
        if entry.get('nbd_server'):
            from . import storage as _qmp_storage
            _qmp_storage.stop_server(entry, self.monitor.connect_timeout)
        if discard and not kept:
            _closing.remove_created(entry)
        return kept

    def _detach(self, entry: Record) -> list[str]:
        kept = []
        in_use = {b['inserted']['node-name'] for b in self.monitor.execute('query-block')
                  if b.get('inserted')}
        for node in entry.get('attached') or []:
            if node in in_use:
                kept.append(node)
                continue
            try:
                self.monitor.execute('blockdev-del', {'node-name': node})
            except BackendError as err:
                if not any(gone in err.desc.lower() for gone in GONE):
                    kept.append(node)
                    in_use.add(node)
        return kept

    def wait_event(self, timeout: float) -> Record | None:
        return self.monitor.wait_event(timeout)

    def events(self) -> list[Record]:
        return self.monitor.drain_events()


class QmpBackend:
    """Jobs behind one QMP socket; the ledger scope is the socket's real path.

    The constructor does no I/O.
    """

    #: QEMU tracks a disk's changes with named dirty bitmaps.
    change_marks: MarkKind = 'bitmap'
    #: The module gives QEMU the certificates of ``nbd_tls_dir``.
    nbd_tls: TlsSource = 'dir'

    def __init__(self, socket: str, connect_timeout: float = 5.0,
                 waiter: Waiter | None = None, run: _targets.Runner | None = None) -> None:
        self.socket = socket
        #: Checks, makes and formats files (``run`` runs qemu-img: an instant restore's overlay).
        self.targets = _targets.Targets(run=run)
        self.connect_timeout = connect_timeout
        self.waiter = waiter or Waiter()
        self.scope = 'qmp:' + os.path.realpath(socket)

    @contextlib.contextmanager
    def session(self) -> t.Iterator[QmpSession]:
        with Monitor(self.socket, self.connect_timeout) as monitor:
            yield QmpSession(monitor, self.waiter, self.scope)

    def witness(self, entry: Record) -> Record | None:
        """How a migration ended, asked of its destination once this VM has gone."""
        from . import migrate as _qmp_migrate
        return _qmp_migrate.witness(entry, self.connect_timeout)

    def finish(self, entry: Record) -> bool:
        """After a migration succeeded: resume the guest on the destination if it ran here."""
        from . import migrate as _qmp_migrate
        return _qmp_migrate.resume_destination(entry, self.connect_timeout)
