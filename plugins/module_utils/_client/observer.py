# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The observer: what a task sees of its jobs, written into the ledger, and acted on.

This is a private module: its API may change between any two releases.

The job client reads; the observer is the one that writes what it saw — the latest
status and outcome of a job, the outcome an event carried, the last progress of a VM
that went away — and that acts on a job's conclusion without being asked: it closes
the targets of a concluded job and applies a migration's completion policy. It keeps
a list of the jobs it acted on, which makes a task report ``changed``.
"""

from __future__ import annotations

import time
import typing as t

from .._errors import BackendError
from .._ledger.files import Ledger
from .._model import closing as _closing
from .._model import migration as _migration
from .._model import records as _model
from .._model import vocabulary as _vocabulary
from .._model.session import Backend, Record, Session
from .dry import upkeep


def compact(record: Record) -> Record:
    """What the ledger keeps of a live record."""
    return {key: record.get(key) for key in KEPT if key in record}


def is_migration(entry: Record | None) -> bool:
    """Whether a ledger entry is a migration's (whose outcome can outlive the VM)."""
    return entry is not None and entry.get('type') == 'migration'


def own_daemon(entry: Record | None) -> bool:
    """Whether a ledger entry is that of a job run in a daemon started for it (see
    ``_qmp/daemon``), whose record outlives the daemon."""
    return entry is not None and entry.get('type') in _vocabulary.OWN_DAEMON_TYPES


#: Record keys the ledger keeps of a live record.
KEPT = ('status', 'raw_status', 'outcome', 'error', 'progress', 'speed') + _vocabulary.DETAIL_KEPT


class Observer:
    """Writes what the client sees of one VM's jobs into its ledger; acts on conclusions.

    The constructor does no I/O.

    :param backend: the VM's backend (finishes a migration at its destination).
    :param ledger: the VM's ledger.
    :param check_mode: the client only predicts: no completion policy is applied and no
        records are read again; :attr:`acted_on` lists what would change.
    :param now: wall clock, for a migration's completion policy.
    """

    def __init__(self, backend: Backend, ledger: Ledger, check_mode: bool = False,
                 now: t.Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.ledger = ledger
        self.check_mode = check_mode
        self.now = now
        #: Names of the jobs acted on besides what a caller asked for: targets closed
        #: (or, in check mode, that would be), a migration's completion policy applied,
        #: its guest resumed at the destination.
        self.acted_on: list[str] = []

    def acted_by(self, name: str) -> None:
        """Note that the task changed something about job ``name``."""
        if name not in self.acted_on:
            self.acted_on.append(name)

    def close_targets(self, session: Session, names: t.Sequence[str],
                      records: dict[str, Record], entries: dict[str, Record]) -> bool:
        """Close the targets of the jobs in ``names`` that have concluded.

        Their nodes are detached (QEMU flushes and closes the images) unless a
        device uses them; the files of a job that did not finish are removed. The
        ledger notes the new ``target_state``. Takes the ledger's lock.

        :return: whether any job's targets were closed, so the records are to be read
            again (never in check mode; :attr:`acted_on` lists what would change).
        """
        if not any(name in records and _closing.closing_due(records[name], entries.get(name))
                   for name in names):
            return False
        with self.ledger.lock():
            return self.close_locked(session, names, records, entries)

    def complete_copies(self, session: Session, names: t.Sequence[str],
                        records: dict[str, Record], entries: dict[str, Record]) -> bool:
        """Complete the jobs in ``names`` that are copies the collection completes itself
        (see ``closing.completion_due``) and have reached READY.

        :return: whether any was completed, so the records are to be read again (never
            in check mode).
        """
        due = [name for name in names if name in records
               and _closing.completion_due(records[name], entries.get(name))]
        if self.check_mode or not due:
            return False
        for name in due:
            try:
                session.verb(name, 'complete')
            except BackendError:
                pass  # another task completed it first, or it failed meanwhile
        return True

    def close_locked(self, session: Session, names: t.Sequence[str],
                     records: dict[str, Record], entries: dict[str, Record]) -> bool:
        """:meth:`close_targets` with the ledger's lock held."""
        due = False
        for name in names:
            record = records.get(name)
            if record is None or not _closing.closing_due(record, entries.get(name)):
                continue
            due = True
            entry = self.ledger.get(name) or entries[name]
            discard = not _closing.finished(record, entry)
            kept = session.cleanup(entry, discard=discard)
            detached = set(kept) != set(entry.get('attached') or [])
            if discard or detached:
                self.acted_by(name)  # a node was detached or a file removed (or would be)
            entries[name] = self.ledger.update(
                name, targets=_closing.closed_state(kept, discard), kept_nodes=kept) or entry
        return due and not self.check_mode

    def retire(self, session: Session, records: dict[str, Record],
               entries: dict[str, Record]) -> None:
        """Dismiss from the VM the concluded jobs due (see ``closing.dismiss_due``): their
        outcome goes into the ledger first, and they read from it from now on, still
        ``concluded`` and not ``dismissed`` until the user dismisses them.

        Updates ``records`` and ``entries`` in place. In check mode too (see ``dry.upkeep``):
        what is reported does not change. Takes the ledger's lock.
        """
        due = [name for name, record in records.items()
               if _closing.dismiss_due(record, entries.get(name))]
        if not due:
            return
        ledger, session = upkeep(self.ledger), upkeep(session)
        with ledger.lock():
            for name in due:
                entry = ledger.update(name, last=compact(records[name])) or entries[name]
                try:
                    session.verb(name, 'dismiss')
                except BackendError:
                    pass  # another task dismissed it first: its outcome is kept all the same
                entries[name] = entry
                records[name] = _model.attach_detail(_model.record_from_ledger(entry), entry)

    def observe(self, records: dict[str, Record], entries: dict[str, Record]) -> None:
        """Remember in the ledger the latest status and outcome of named jobs.

        A migration's progress is kept too: once its VM has gone, it is all there is.
        """
        for name, entry in entries.items():
            record = records.get(name)
            if record is None or not record['live']:
                continue
            last = entry.get('last') or {}
            keys = ('status', 'outcome', 'progress') if is_migration(entry) else (
                'status', 'outcome')
            if any(last.get(key) != record[key] for key in keys):
                with self.ledger.lock():
                    entries[name] = self.ledger.update(name, last=compact(record)) or entry

    def keep_last(self, records: dict[str, Record]) -> None:
        """Write the last live records seen into the ledger: the VM went away mid-wait.

        Their jobs read as lost, with the progress they had made when last seen.
        """
        with self.ledger.lock():
            for name, record in records.items():
                entry = self.ledger.get(name)
                if record['live'] and entry is not None and not is_migration(entry):
                    self.ledger.update(name, last=compact(record))

    def steer(self, session: Session, record: Record, entry: Record) -> None:
        """Apply a migration's completion policy when due, start the migration proper once
        its disks are copied; finish it once it succeeded."""
        if self.check_mode or not record['live']:
            return
        name = record['name']
        applied = entry.get('applied') or []
        action = _migration.due_action(record, entry.get('params') or {}, applied,
                                       self.now() - entry.get('started_at', self.now()))
        if action == _migration.MIGRATE:  # the disks are in sync: migrate
            session.migration_verb(name, action, uri=entry.get('dest_uri'))
            self.acted_by(name)
        elif action is not None:
            with self.ledger.lock():
                self.ledger.update(name, applied=[*applied, action])
            session.migration_verb(name, action)
            self.acted_by(name)
        elif record['outcome'] == 'succeeded' and not entry.get('finished'):
            with self.ledger.lock():
                self.ledger.update(name, finished=True)
            if self.backend.finish(entry):
                self.acted_by(name)

    def note_event(self, event: Record, names: t.Sequence[str]) -> bool:
        """Keep the outcome an event carries, for jobs QEMU dismisses by itself."""
        seen = _model.outcome_from_event(event)
        if seen is None or seen['name'] not in names:
            return False
        with self.ledger.lock():
            self.keep_outcome(seen)
        return True

    def keep_outcome(self, seen: Record) -> None:
        """Write an event's outcome into the ledger entry unless one is known (lock held)."""
        entry = self.ledger.get(seen['name'])
        if entry is not None and not (entry.get('last') or {}).get('outcome'):
            self.ledger.update(seen['name'], last=compact(seen))

    def keep_ended(self, records: list[Record]) -> None:
        """Write the outcomes the VM tells only once (see ``Session.ended``) into the ledger."""
        with self.ledger.lock():
            for record in records:
                self.keep_outcome(record)

    def adopt(self, entry: Record) -> None:
        """Write the entry of a job started outside the collection (see ``Session.adoption``)."""
        with self.ledger.lock():
            if self.ledger.get(entry['name']) is None:
                self.ledger.put(entry)
