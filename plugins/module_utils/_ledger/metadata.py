# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger of a libvirt domain, kept in the domain's own metadata.

This is a private module: its API may change between any two releases.

Every job record of the domain lives in one element in the collection's XML
namespace in the domain's ``<metadata>`` (see ``_metaxml.encode_jobs``),
written with ``virDomainSetMetadata`` — in the live definition, and in the
persistent one too for a persistent domain.  libvirt keeps the live definition
across restarts of libvirtd, and a migrating domain takes it along.

Writers on this host are serialised by the file lock of a :class:`Ledger` of the
same scope (the lock is re-entrant within one process, as the backend reads and
writes while the job client holds it).  Migrations are also kept in that file
ledger: once the domain has left, it is the witness of how they ended.

libvirt refuses to change a domain's metadata while a domain job (a backup, a
migration) runs: ``setMetadata`` waits for the job to end.  So while one runs,
changes go to a *pending* file ledger on the host (scope ``<scope>#pending``),
which every read folds in (the newer record wins, a deletion is a marker), and
the next write after the job folds them into the metadata and empties it.
"""

from __future__ import annotations

import contextlib
import time
import typing as t

from .._errors import LedgerError, TransportError
from .._libvirt import metaxml as _metaxml
from .._model.vocabulary import validate_name
from .files import DEFAULT_RETENTION_DAYS, Ledger, RecordKeeper
from .schema import SCHEMA, normalise, stored, upgrade

Record = dict[str, t.Any]


class MetadataStore(t.Protocol):
    """Reads and writes the collection's metadata element of one domain."""

    def read_metadata(self) -> str | None:
        """The element as text, or None; :raise TransportError: no such domain."""

    def write_metadata(self, text: str | None) -> None:
        """Replace the element (None removes it); :raise TransportError: no such domain."""

    def domain_job_running(self) -> bool:
        """Whether a domain job runs now (libvirt then holds metadata changes back)."""


#: Job types whose records are kept in the host's file ledger too.
HOST_KEPT = ('migration',)
#: Added to the scope for the file ledger of changes made while a domain job runs.
PENDING_SUFFIX = '#pending'
#: Marks a pending deletion.
DELETED = '_deleted'


class MetadataLedger(RecordKeeper):
    """The :class:`Ledger` interface over a domain's metadata.

    The constructor does no I/O.

    :param store: reads and writes the domain's metadata element.
    :param root: the host's ledger root (lock file, host copies of migrations).
    :param scope: names the domain, e.g. ``libvirt:qemu:///system#vm1``.
    :param retention_days: tombstones older than this are pruned.
    """

    def __init__(self, store: MetadataStore, root: str, scope: str,
                 retention_days: float = DEFAULT_RETENTION_DAYS,
                 clock: t.Callable[[], float] = time.time) -> None:
        self.store = store
        self.root = root
        self.scope = scope
        self.retention_days = retention_days
        self.host = Ledger(root, scope, retention_days, clock)
        self.pending = Ledger(root, scope + PENDING_SUFFIX, retention_days, clock)
        self.directory = self.host.directory
        self._clock = clock
        self._depth = 0
        self.damaged = {}

    @contextlib.contextmanager
    def lock(self) -> t.Iterator[None]:
        """Hold the scope's exclusive host lock; re-entrant within this object."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with self.host.lock():
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0

    def _records(self) -> dict[str, Record] | None:
        """Records by name from the metadata, pending changes folded in; None if the
        domain is gone."""
        try:
            text = self.store.read_metadata()
        except TransportError:
            return None
        records = {}
        self.damaged = {}
        for raw in _metaxml.decode_jobs(text):
            try:
                record = upgrade(raw, f'{raw.get("name")!r} in the metadata of {self.scope}')
            except LedgerError as err:
                self.damaged[str(raw.get('name'))] = str(err)
                continue
            records[record['name']] = record
        for change in self.pending.all():
            name = change['name']
            if name in records and records[name].get('updated', 0) > change.get('updated', 0):
                continue
            if change.get(DELETED):
                records.pop(name, None)
            else:
                records[name] = dict(change, scope=self.scope)
        return records

    def _write(self, records: dict[str, Record], changed: Record) -> None:
        """Write every record into the metadata, or ``changed`` to the pending ledger
        while a domain job runs.

        :raise TransportError: the domain is gone.
        """
        if self.store.domain_job_running():
            self.pending.put(changed)
            return
        text = _metaxml.encode_jobs(stored(r) for r in records.values()) if records else None
        self.store.write_metadata(text)
        for change in self.pending.all():
            self.pending.delete(change['name'])

    def get(self, name: str) -> Record | None:
        """The record of ``name``, or None (from the host's copy once the domain is gone)."""
        validate_name(name)
        records = self._records()
        if records is None:
            return self.host.get(name)
        return records.get(name)

    def all(self) -> list[Record]:
        """Every record of the domain, sorted by name."""
        records = self._records()
        if records is None:
            return self.host.all()
        return [records[name] for name in sorted(records)]

    def put(self, record: Record) -> Record:
        """Write ``record`` (keyed by its ``name``) into the domain's metadata.

        :raise TransportError: the domain is gone (unless the record is a migration's,
            which the host keeps).
        :raise BackendError: libvirt refused the metadata.
        """
        validate_name(record['name'])
        record = dict(normalise(record), scope=self.scope, updated=self._clock(), schema=SCHEMA)
        record.setdefault('created', record['updated'])
        kept = record.get('type') in HOST_KEPT
        records = self._records()
        try:
            if records is None:
                raise TransportError(f'{self.scope}: the domain is gone; cannot record job '
                                     f"'{record['name']}'")
            records[record['name']] = record
            self._write(records, record)
        except TransportError:
            if not kept:
                raise
        if kept:
            self.host.put(record)
        return record

    def delete(self, name: str) -> bool:
        """Remove the record of ``name``; False if there was none."""
        validate_name(name)
        found = self.host.delete(name)
        records = self._records()
        if records is not None and name in records:
            del records[name]
            self._write(records, {'name': name, DELETED: True})
            found = True
        return found
