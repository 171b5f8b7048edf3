# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger: names, parameters and outcomes of jobs that QEMU cannot keep.

This is a private module: its API may change between any two releases.

One JSON file per job name in a directory per VM (the *scope*, e.g. the QMP
socket path).  Files are written atomically (temporary file, fsync, rename,
fsync of the directory) with mode 0600 in directories of mode 0700; writers
of one scope are serialised by ``flock`` on the scope's ``.lock`` file.

Every record carries the ``schema`` it was written in (see ``schema``).  Records
of older schemas are upgraded when read and written back in the current schema
by the next write; a record of a newer schema, or one that cannot be read, fails
the operations on that job name with a one-line message naming its file, and
every other job stays usable.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import time
import typing as t

from .._errors import InvalidArgument, LedgerError
from .._model.vocabulary import validate_name
from .schema import SCHEMA, normalise, stored, upgrade

DEFAULT_RETENTION_DAYS = 90.0


def default_root() -> str:
    """``/var/lib/vmjobs`` for root, else ``$XDG_STATE_HOME/vmjobs``."""
    if os.geteuid() == 0:
        return '/var/lib/vmjobs'
    state = os.environ.get('XDG_STATE_HOME') or os.path.join(os.path.expanduser('~'),
                                                             '.local', 'state')
    return os.path.join(state, 'vmjobs')


def scope_dirname(scope: str) -> str:
    """A directory name for a scope: readable prefix plus a hash of the whole."""
    tail = ''.join(c if c.isalnum() or c in '._-' else '_' for c in os.path.basename(scope))
    digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
    return f"{tail[-40:] or 'vm'}-{digest}"


def _ensure_private_dir(path: str, tighten: bool = True) -> None:
    """Create ``path`` with mode 0700; with ``tighten``, make an existing one 0700 too."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if tighten and os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o700)
    except OSError as err:
        raise LedgerError(f'cannot create ledger directory {path}: {err.strerror}') from err


class RecordKeeper:
    """What every ledger does in terms of its own ``get``, ``put``, ``all`` and ``delete``.

    Subclasses set ``retention_days`` and ``_clock``.
    """

    retention_days: float
    _clock: t.Callable[[], float]
    #: Records :meth:`all` could not read, by job name: the one-line message for each.
    damaged: dict[str, str]

    def get(self, name: str) -> dict[str, t.Any] | None:
        raise NotImplementedError

    def put(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        raise NotImplementedError

    def all(self) -> list[dict[str, t.Any]]:
        raise NotImplementedError

    def delete(self, name: str) -> bool:
        raise NotImplementedError

    def update(self, name: str, **changes: t.Any) -> dict[str, t.Any] | None:
        """Merge ``changes`` into an existing record; None if there is none."""
        record = self.get(name)
        if record is None:
            return None
        record.update(changes)
        return self.put(record)

    def prune(self) -> list[str]:
        """Delete tombstones older than the retention period; return their names."""
        horizon = self._clock() - self.retention_days * 86400.0
        pruned = []
        for record in self.all():
            if record.get('state') == 'dismissed' and record.get('updated', 0) < horizon:
                self.delete(record['name'])
                pruned.append(record['name'])
        return pruned


class Ledger(RecordKeeper):
    """Records of one scope (one VM or storage daemon).

    The constructor does no I/O.

    :param root: the ledger's root directory.
    :param scope: what identifies the VM, e.g. the real path of its QMP socket.
    :param retention_days: tombstones older than this are pruned.
    """

    def __init__(self, root: str, scope: str, retention_days: float = DEFAULT_RETENTION_DAYS,
                 clock: t.Callable[[], float] = time.time) -> None:
        self.root = root
        self.scope = scope
        self.directory = os.path.join(root, scope_dirname(scope))
        self.retention_days = retention_days
        self._clock = clock
        self.damaged = {}
        self._held = 0  # how deep this instance holds the lock (it is reentrant)

    def _path(self, name: str) -> str:
        validate_name(name)
        return os.path.join(self.directory, name + '.json')

    @contextlib.contextmanager
    def lock(self) -> t.Iterator[None]:
        """Hold the scope's exclusive lock (blocks while another task holds it).

        Reentrant: a holder may take it again (the observer writes from within
        reads that run with or without the lock held).
        """
        if self._held:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            return
        _ensure_private_dir(self.root, tighten=False)
        _ensure_private_dir(self.directory)
        try:
            fd = os.open(os.path.join(self.directory, '.lock'), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise LedgerError(f'cannot open ledger lock in {self.directory}: {err.strerror}') from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held = 1
            yield
        finally:
            self._held = 0
            os.close(fd)

    def get(self, name: str) -> dict[str, t.Any] | None:
        """The record of ``name`` in the current schema, or None.

        :raise LedgerError: the record cannot be read, or is of a newer schema.
        """
        path = self._path(name)
        try:
            with open(path, encoding='utf-8') as handle:
                record = json.load(handle)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return None
            raise LedgerError(f"job '{name}': cannot read ledger record {path}: {err.strerror}",
                              name) from err
        except ValueError as err:
            raise LedgerError(f"job '{name}': ledger record {path} is damaged ({err}); move it "
                              'away to release the name', name) from err
        if isinstance(record, dict) and record.get('name') != name:
            raise LedgerError(f"job '{name}': ledger record {path} is damaged (it names "
                              f"{record.get('name')!r}); move it away to release the name", name)
        return upgrade(record, path)

    def all(self) -> list[dict[str, t.Any]]:
        """Every readable record of the scope, sorted by name.

        A record that cannot be read is left out and its message kept in
        :attr:`damaged`, so that the other jobs stay usable.
        """
        try:
            names = sorted(f[:-5] for f in os.listdir(self.directory) if f.endswith('.json'))
        except OSError as err:
            if err.errno == errno.ENOENT:
                return []
            raise LedgerError(f'cannot list ledger {self.directory}: {err.strerror}') from err
        records = []
        self.damaged = {}
        for name in names:
            try:
                record = self.get(name)
            except LedgerError as err:
                self.damaged[name] = str(err)
                continue
            except InvalidArgument:
                continue  # not a job's file (its name is no job name)
            if record is not None:
                records.append(record)
        return records

    def put(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        """Write ``record`` (keyed by its ``name``) atomically and durably."""
        path = self._path(record['name'])
        _ensure_private_dir(self.root, tighten=False)
        _ensure_private_dir(self.directory)
        record = dict(normalise(record), scope=self.scope, updated=self._clock(), schema=SCHEMA)
        record.setdefault('created', record['updated'])
        tmp = f'{path}.{os.getpid()}.tmp'
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'w', encoding='utf-8') as handle:
                json.dump(stored(record), handle, sort_keys=True, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(tmp, path)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise LedgerError(f"job '{record['name']}': cannot write ledger record {path}: "
                              f'{err.strerror}', record['name']) from err
        return record

    def delete(self, name: str) -> bool:
        """Remove the record of ``name``; False if there was none."""
        path = self._path(name)
        try:
            os.unlink(path)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return False
            raise LedgerError(f'cannot delete ledger record {path}: {err.strerror}',
                              name) from err
        return True
