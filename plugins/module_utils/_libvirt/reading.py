# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a libvirt session reads: the domain's jobs as records, and its events.

This is a private module: its API may change between any two releases.

libvirt keeps no job names and forgets a block job once it ended: the session maps
jobs onto the ledger entries the client gives it (``know``), works out how a named
job ended from the disk's chain and the events it saw, and hands the client such
outcomes once (``ended``), for the observer to keep.
"""

from __future__ import annotations

import typing as t

from .._errors import TransportError
from .._model.session import Record
from .._waiter import Waiter
from . import binding as _libvirt
from . import domxml as _libvirt_xml
from . import jobs as _libvirt_jobs
from . import snapshots as _libvirt_snapshots
from .connection import Connection, Domain

#: Longest wait for libvirt to report a block job that has left ``blockJobInfo``.
SETTLE_SECONDS = 2.0


class ReadingSession:
    """The reading half of a libvirt session (see ``backend.LibvirtSession``).

    :param conn: the open connection.
    :param scope: the domain's ledger scope, for messages.
    :param waiter: waits for libvirt to settle an ended block job.
    """

    def __init__(self, conn: Connection, scope: str, waiter: Waiter) -> None:
        self.conn = conn
        self.scope = scope
        self.waiter = waiter
        #: The ledger's entries as the client last gave them (see ``know``).
        self.entries: list[Record] = []
        #: The last block job event status seen per disk in this session.
        self.seen: dict[str, str] = {}
        #: Statistics of the domain jobs that completed while this session listened.
        self.completed: list[Record] = []
        #: Events read while settling an outcome, not yet handed to the client.
        self.pending: list[Record] = []
        #: Outcomes worked out since the last ``ended`` call.
        self.outcomes: list[Record] = []

    @property
    def domain(self) -> Domain:
        if self.conn.domain is None:
            raise TransportError(f'{self.scope}: the session is closed')
        return self.conn.domain

    def know(self, entries: t.Sequence[Record]) -> None:
        """The ledger's entries: the names of the domain's jobs."""
        self.entries = list(entries)

    def ended(self) -> list[Record]:
        """Concluded records of named jobs libvirt no longer reports, found since the last call."""
        outcomes, self.outcomes = self.outcomes, []
        return outcomes

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
        entries = self.entries
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
        if entry.get('libvirt_type') == _libvirt_snapshots.LIBVIRT_TYPE:
            result, error = _libvirt_snapshots.outcome(self.domain, entry)
        elif entry.get('libvirt_type') == 'backup':
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
        self.outcomes.append(record)
        return record

    def _settle(self, disk: str) -> bool:
        """Give libvirt a moment to finish processing a block job that QEMU ended.

        libvirt drops the job from ``blockJobInfo`` a little before it updates the
        disk's chain and emits its event; without this, a job that just succeeded
        could look as if it ended without effect.

        :return: whether an event for ``disk`` arrived within :data:`SETTLE_SECONDS`.
        """

        def arrived(left: float) -> bool | None:
            if disk in self.seen:
                return True
            event = self.conn.wait_event(left) if left > 0 else None
            if event is None:
                return False
            self.pending.append(self._translate(event))
            return None

        return bool(self.waiter.until(arrived, SETTLE_SECONDS))

    def _completed_stats(self) -> Record:
        if not self.domain.active():
            return {}
        flags = _libvirt.JOB_STATS_COMPLETED | _libvirt.JOB_STATS_KEEP_COMPLETED
        return t.cast(Record, self.domain.call('jobStats', flags))

    # -- events ------------------------------------------------------------------------------

    def _translate(self, event: Record) -> Record:
        if event.get('event') == 'job-completed':
            self.completed.append(event['stats'])
        name = None
        if event.get('event') == 'block-job':
            self.seen[event['disk']] = event['status']
            kind = _libvirt_jobs.TYPES.get(event.get('type', ''), '')
            entry = _libvirt_jobs.owner(self.entries, event['disk'], kind)
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
