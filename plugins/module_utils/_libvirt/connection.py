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
from .binding import (
    AFFECT_CONFIG,
    AFFECT_LIVE,
    BLOCK_JOB_STATUSES,
    BLOCK_JOB_TYPES,
    ERR_NO_DOMAIN,
    ERR_NO_DOMAIN_METADATA,
    ERR_OPERATION_INVALID,
    METADATA_ELEMENT,
    XML_INACTIVE,
    Event,
    libvirt,
    quiet,
    translate,
)


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

    def checkpoints(self) -> list[str]:
        """The XML of each of the domain's checkpoints."""
        found = self.call('listAllCheckpoints', 0)
        try:
            return [t.cast(str, checkpoint.getXMLDesc(0)) for checkpoint in found]
        except libvirt.libvirtError as err:
            raise self._error('checkpointGetXMLDesc', err) from err

    def snapshot_delete(self, snapshot: t.Any) -> None:
        """Delete a domain snapshot (``virDomainSnapshotDelete``)."""
        try:
            snapshot.delete(0)
        except libvirt.libvirtError as err:
            raise self._error('snapshotDelete', err) from err

    def delete_checkpoint(self, name: str) -> None:
        """Delete checkpoint ``name`` (libvirt merges its bitmap into its parent's)."""
        checkpoint = self.call('checkpointLookupByName', name, 0)
        try:
            checkpoint.delete(0)
        except libvirt.libvirtError as err:
            raise self._error('checkpointDelete', err) from err

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
            libvirt.registerErrorHandler(quiet, None)
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
