# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small synchronous facade over libvirt-python; the only importer of ``libvirt``.

This is a private module: its API may change between any two releases.

:class:`Connection` opens one connection to a libvirt daemon for one
operation, finds the domain, registers for its block-job, job-completed and
lifecycle events and pumps libvirt's default event loop while a wait blocks.
:class:`Domain` wraps the handful of domain calls the collection makes;
every ``libvirtError`` becomes a :class:`BackendError` carrying libvirt's
error code name and its own text.  Nothing here talks QMP: graph-changing jobs
go through libvirt's API, so the domain is never tainted.
"""

from __future__ import annotations

import collections
import typing as t

from .._errors import BackendError, TransportError

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR: ImportError | None = None
except ImportError as err:  # pragma: no cover - reported by the modules
    libvirt = None
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = err

Event = dict[str, t.Any]

#: libvirt's block job types (virDomainBlockJobType) by number.
BLOCK_JOB_TYPES = {1: 'pull', 2: 'copy', 3: 'commit', 4: 'active-commit', 5: 'backup'}
#: libvirt's block job event statuses (virConnectDomainEventBlockJobStatus).
BLOCK_JOB_STATUSES = {0: 'completed', 1: 'failed', 2: 'canceled', 3: 'ready'}
#: virDomainJobOperation of ``jobStats``' ``operation``.
DOMAIN_JOB_OPERATIONS = {0: 'unknown', 1: 'start', 2: 'save', 3: 'restore',
                         4: 'migration-in', 5: 'migration-out', 6: 'snapshot',
                         7: 'snapshot-revert', 8: 'dump', 9: 'backup', 10: 'snapshot-delete'}

# Flag values from libvirt's public headers (stable ABI), so that the pure modules
# and their tests never need the binding.
BLOCK_JOB_INFO_BANDWIDTH_BYTES = 1
BLOCK_JOB_SPEED_BANDWIDTH_BYTES = 1
BLOCK_JOB_ABORT_ASYNC = 1
BLOCK_JOB_ABORT_PIVOT = 2
BLOCK_PULL_BANDWIDTH_BYTES = 1 << 6
BLOCK_REBASE_BANDWIDTH_BYTES = 1 << 6
BLOCK_COMMIT_ACTIVE = 1 << 2
BLOCK_COMMIT_BANDWIDTH_BYTES = 1 << 4
BLOCK_COPY_SHALLOW = 1
BLOCK_COPY_REUSE_EXT = 2
BACKUP_BEGIN_REUSE_EXTERNAL = 1
BLOCK_COPY_TRANSIENT_JOB = 4
JOB_STATS_COMPLETED = 1
JOB_STATS_KEEP_COMPLETED = 2
METADATA_ELEMENT = 2
AFFECT_LIVE = 1
AFFECT_CONFIG = 2
XML_INACTIVE = 2
MIGRATE_LIVE = 1
MIGRATE_PEER2PEER = 2
MIGRATE_PERSIST_DEST = 8
MIGRATE_UNDEFINE_SOURCE = 16
MIGRATE_PAUSED = 32
MIGRATE_AUTO_CONVERGE = 1 << 13
MIGRATE_UNSAFE = 1 << 9
MIGRATE_POSTCOPY = 1 << 15
MIGRATE_PARALLEL = 1 << 17
MIGRATE_COMPRESSED = 1 << 11
MIGRATE_TLS = 1 << 16

#: Error codes (virErrorNumber) the collection tells apart.
ERR_NO_DOMAIN = 42
ERR_NO_DOMAIN_METADATA = 80
ERR_NO_SUPPORT = 3
ERR_OPERATION_INVALID = 55
#: Readable names of the error codes seen most, for messages.
ERROR_NAMES = {1: 'VIR_ERR_INTERNAL_ERROR', 3: 'VIR_ERR_NO_SUPPORT', 8: 'VIR_ERR_INVALID_ARG',
               9: 'VIR_ERR_OPERATION_FAILED', 38: 'VIR_ERR_SYSTEM_ERROR',
               42: 'VIR_ERR_NO_DOMAIN', 55: 'VIR_ERR_OPERATION_INVALID',
               68: 'VIR_ERR_OPERATION_TIMEOUT', 80: 'VIR_ERR_NO_DOMAIN_METADATA',
               83: 'VIR_ERR_BLOCK_COPY_ACTIVE', 84: 'VIR_ERR_OPERATION_UNSUPPORTED',
               86: 'VIR_ERR_AGENT_UNRESPONSIVE', 1 << 30: 'VIR_ERR_UNKNOWN'}


def error_name(code: int | None) -> str:
    """``VIR_ERR_...`` for a libvirt error code (the number when unknown)."""
    if code is None:
        return 'VIR_ERR_UNKNOWN'
    if libvirt is not None:
        for name in dir(libvirt):
            if name.startswith('VIR_ERR_') and getattr(libvirt, name) == code and \
                    name not in ('VIR_ERR_NONE', 'VIR_ERR_WARNING', 'VIR_ERR_ERROR'):
                return name
    return ERROR_NAMES.get(code, f'VIR_ERR_{code}')


def translate(command: str, err: Exception) -> BackendError:
    """A :class:`BackendError` from a ``libvirtError``: code name and libvirt's own text."""
    code = getattr(err, 'get_error_code', lambda: None)()
    text = getattr(err, 'get_error_message', lambda: None)() or str(err)
    error = BackendError(command, error_name(code), text)
    error.code = code  # type: ignore[attr-defined]
    return error


def _quiet(_ctx: object, _error: object) -> None:
    """libvirt prints every error to stderr unless a handler takes them."""


class Domain:
    """The calls the collection makes on one domain; errors become BackendError."""

    def __init__(self, handle: t.Any) -> None:
        self.handle = handle

    def call(self, command: str, *args: t.Any) -> t.Any:
        """``handle.<command>(*args)``, with libvirt's errors translated.

        :raise BackendError: libvirt refused; its code name and text are kept.
        :raise TransportError: the domain is gone (it migrated away, or was undefined).
        """
        try:
            return getattr(self.handle, command)(*args)
        except libvirt.libvirtError as err:
            raise self._error(command, err) from err

    def _error(self, command: str, err: t.Any) -> BackendError | TransportError:
        """A libvirt error as the collection's: gone domains become TransportError.

        A transient domain that just migrated away (or was destroyed) is inactive for a
        moment before libvirt forgets it, and calls on it fail as invalid operations.
        """
        gone = err.get_error_code() == ERR_NO_DOMAIN
        if err.get_error_code() == ERR_OPERATION_INVALID:
            try:
                gone = not self.handle.isActive() and not self.handle.isPersistent()
            except libvirt.libvirtError:
                gone = True
        if gone:
            return TransportError(f'{command}: the domain is gone: '
                                  f'{err.get_error_message() or err}')
        return translate(command, err)

    def name(self) -> str:
        return t.cast(str, self.handle.name())

    def uuid(self) -> str:
        return t.cast(str, self.handle.UUIDString())

    def persistent(self) -> bool:
        return bool(self.call('isPersistent'))

    def active(self) -> bool:
        return bool(self.call('isActive'))

    def xml(self, inactive: bool = False) -> str:
        return t.cast(str, self.call('XMLDesc', XML_INACTIVE if inactive else 0))

    def metadata(self, namespace: str) -> str | None:
        """The collection's metadata element as text, or None if there is none."""
        try:
            return t.cast(str, self.handle.metadata(METADATA_ELEMENT, namespace, 0))
        except libvirt.libvirtError as err:
            if err.get_error_code() == ERR_NO_DOMAIN_METADATA:
                return None
            raise self._error('metadata', err) from err

    def set_metadata(self, text: str | None, key: str, namespace: str) -> None:
        """Replace the collection's metadata element (live, and config if persistent)."""
        flags = AFFECT_LIVE if self.active() else 0
        if self.persistent():
            flags |= AFFECT_CONFIG
        self.call('setMetadata', METADATA_ELEMENT, text, key, namespace, flags)


class Connection:
    """One connection to libvirt and one domain, with its events queued.

    The constructor does no I/O; :meth:`open` connects (use it as a context manager).

    :param uri: the libvirt URI, e.g. ``qemu:///system``.
    :param domain: the domain's name or UUID.
    :param events: subscribe to the domain's events.
    """

    _loop_ready = False

    def __init__(self, uri: str, domain: str, events: bool = True) -> None:
        self.uri = uri
        self.domain_name = domain
        self.events = events
        self.conn: t.Any = None
        self.domain: Domain | None = None
        self.queue: collections.deque[Event] = collections.deque()
        self._callbacks: list[int] = []

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def _event_loop(cls) -> None:
        if not cls._loop_ready:
            libvirt.registerErrorHandler(_quiet, None)
            libvirt.virEventRegisterDefaultImpl()
            cls._loop_ready = True

    def open(self) -> Domain:
        """Connect, find the domain and subscribe to its events.

        :raise TransportError: libvirt cannot be reached, or there is no such domain.
        """
        if libvirt is None:
            raise TransportError('the libvirt Python binding (libvirt-python) is not installed')
        self._event_loop()
        try:
            self.conn = libvirt.open(self.uri)
        except libvirt.libvirtError as err:
            raise TransportError(f'cannot connect to libvirt at {self.uri}: '
                                 f'{err.get_error_message() or err}') from err
        try:
            handle = self.conn.lookupByName(self.domain_name)
        except libvirt.libvirtError as err:
            if err.get_error_code() != ERR_NO_DOMAIN:
                self.close()
                raise TransportError(f'cannot look up domain {self.domain_name!r} at {self.uri}: '
                                     f'{err.get_error_message() or err}') from err
            try:
                handle = self.conn.lookupByUUIDString(self.domain_name)
            except libvirt.libvirtError:
                self.close()
                raise TransportError(f"domain '{self.domain_name}' not found at {self.uri}: "
                                     f'{err.get_error_message() or err}') from err
        self.domain = Domain(handle)
        if self.events:
            self._subscribe(handle)
        return self.domain

    def _subscribe(self, handle: t.Any) -> None:
        def block_job(_conn: t.Any, _dom: t.Any, disk: str, kind: int, status: int,
                      _opaque: t.Any) -> None:
            self.queue.append({'event': 'block-job', 'disk': disk,
                               'type': BLOCK_JOB_TYPES.get(kind, str(kind)),
                               'status': BLOCK_JOB_STATUSES.get(status, str(status))})

        def job_completed(_conn: t.Any, _dom: t.Any, stats: dict[str, t.Any],
                          _opaque: t.Any) -> None:
            self.queue.append({'event': 'job-completed', 'stats': dict(stats)})

        def lifecycle(_conn: t.Any, _dom: t.Any, kind: int, detail: int, _opaque: t.Any) -> None:
            self.queue.append({'event': 'lifecycle', 'kind': kind, 'detail': detail})

        for event_id, callback in ((libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, block_job),
                                   (libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, job_completed),
                                   (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle)):
            try:
                self._callbacks.append(
                    self.conn.domainEventRegisterAny(handle, event_id, callback, None))
            except libvirt.libvirtError as err:
                raise translate('domainEventRegisterAny', err) from err

    def open_domain(self) -> Domain:
        """The domain of an open connection.

        :raise TransportError: the connection is closed.
        """
        if self.domain is None:
            raise TransportError(f'connection to libvirt at {self.uri} is closed')
        return self.domain

    def wait_event(self, timeout: float) -> Event | None:
        """Run libvirt's event loop until an event arrives or ``timeout`` seconds pass."""
        if self.queue:
            return self.queue.popleft()
        if timeout <= 0 or self.conn is None:
            return None
        fired: list[bool] = []
        timer = libvirt.virEventAddTimeout(max(1, int(timeout * 1000)),
                                           lambda _timer, _opaque: fired.append(True), None)
        try:
            while not fired and not self.queue:
                if libvirt.virEventRunDefaultImpl() < 0:
                    raise TransportError(f'libvirt event loop failed on {self.uri}')
                if not self.conn.isAlive():
                    raise TransportError(f'connection to libvirt at {self.uri} lost while '
                                         'waiting')
        finally:
            libvirt.virEventRemoveTimeout(timer)
        return self.queue.popleft() if self.queue else None

    def drain(self) -> list[Event]:
        """Events received so far (after one non-blocking turn of the loop)."""
        events = list(self.queue)
        self.queue.clear()
        return events

    def define(self, xml: str) -> None:
        """Replace the persistent definition of a domain.

        :raise BackendError: libvirt refused the XML.
        """
        try:
            self.conn.defineXML(xml)
        except libvirt.libvirtError as err:
            raise translate('defineXML', err) from err

    def close(self) -> None:
        """Drop the event subscriptions and the connection."""
        if self.conn is not None:
            for callback in self._callbacks:
                try:
                    self.conn.domainEventDeregisterAny(callback)
                except libvirt.libvirtError:
                    pass
            try:
                self.conn.close()
            except libvirt.libvirtError:
                pass
        self._callbacks = []
        self.conn = None
        self.domain = None
