# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for named jobs to reach a status, and the errors of a wait that cannot end.

This is a private module: its API may change between any two releases.
Every look goes through the :class:`Waiter` (its clock and sleep are injected); the
observer notes what each look sees.
"""

from __future__ import annotations

import typing as t

from .._errors import (
    JobFailed,
    JobNotFound,
    JobStateError,
    JobTimeout,
    MonitorBusy,
    TransportError,
    VmjobsError,
)
from .._model import closing as _closing
from .._model import records as _model
from .._model import verdicts as _verdicts
from .._model import vocabulary as _vocabulary
from .._model.session import Record, Session
from .._waiter import Check, Waiter
from .._writeback import Writeback
from .observer import Observer, is_migration
from .reads import Reads, Result, absent_record, describe

Judge = t.Callable[[Record, 'Record | None'], _vocabulary.Verdict]


def held_hint(record: Record) -> str:
    """Why a paused job will not move on, and what to do (empty if it is not paused)."""
    if record['status'] not in ('paused', 'standby'):
        return ''
    if record.get('io_status') not in (None, 'ok'):
        return (f": it stopped on an I/O error (io_status {record['io_status']}); fix the "
                'cause and resume it (job state: running), or cancel it')
    return ': it is paused; resume it first (job state: running)'


class Waiting:
    """Waits on one VM's named jobs.

    :param reads: the read model.
    :param observer: notes what each look sees, closes targets, steers migrations.
    :param waiter: the wait loop (clock and sleep injected).
    """

    def __init__(self, reads: Reads, observer: Observer, waiter: Waiter) -> None:
        self.reads = reads
        self.observer = observer
        self.waiter = waiter

    def wait(self, names: t.Sequence[str], target: str, timeout: float,
             fail_on_error: bool = True,
             first: t.ContextManager[Session] | None = None) -> Result:
        """Wait until every job in ``names`` reaches ``target``.

        :raise JobNotFound: a name nobody knows (unless waiting for ``absent``).
        :raise JobFailed: a job failed (and ``fail_on_error``), or cannot reach ``target``
            because it failed.
        :raise JobStateError: a job can no longer reach ``target``.
        :raise JobTimeout: ``timeout`` ran out; carries the last records.
        """
        def verdict(record: Record, entry: Record | None) -> _vocabulary.Verdict:
            return _verdicts.wait_verdict(record, target, entry)

        records = self.await_jobs(names, verdict, timeout, target, first)
        if fail_on_error:
            failed = [r for r in records.records if r.get('outcome') == 'failed']
            if failed:
                raise self.unreachable(failed[0], target, records.records)
        return records

    def await_jobs(self, names: t.Sequence[str], verdict: Judge, timeout: float,
                   target: str, first: t.ContextManager[Session] | None = None) -> Result:
        """Wait until ``verdict`` says ``reached`` for every name (see :meth:`wait`).

        ``first`` is an open session to begin with (its buffered events count); the
        wait closes it.
        """
        for name in names:
            _vocabulary.validate_name(name)
        latest: dict[str, Record] = {}

        def check(session: Session) -> Check[tuple[list[Record], dict[str, _vocabulary.Verdict]]]:
            records, entries = self.reads.snapshot(session)
            self.reads.readable(names)
            # Events sent before the query's reply are queued by now: an outcome they
            # carry (auto-dismissed jobs vanish right after it) is kept, then re-read.
            if [e for e in session.events() if self.observer.note_event(e, names)]:
                records, entries = self.reads.snapshot(session)
            self.observer.observe(records, entries)
            if self.observer.complete_copies(session, names, records, entries):
                records, entries = self.reads.snapshot(session)
            if self.observer.close_targets(session, names, records, entries):
                records, entries = self.reads.snapshot(session)
            latest.update((name, records[name]) for name in names if name in records)
            for name in names:
                if name in records and is_migration(entries.get(name)):
                    self.observer.steer(session, records[name], entries[name])
            chosen: list[Record] = []
            verdicts: dict[str, _vocabulary.Verdict] = {}
            for name in names:
                if name not in records and target != 'absent':
                    raise JobNotFound(f"job '{name}' not found on {self.reads.backend.scope}",
                                      name)
                record = records.get(name) or absent_record(name)
                chosen.append(record)
                verdicts[name] = verdict(record, entries.get(name))
            done = all(v == 'reached' for v in verdicts.values()) or 'never' in verdicts.values()
            return Check(done, (chosen, verdicts))

        entries = [self.reads.ledger.get(name) or {} for name in names]
        watched = {*names, *(m for e in entries for m in e.get('members') or [])}
        # what the jobs write goes to disk while they run, not all at the closing flush
        writeback = Writeback([p for e in entries for p in _closing.output_files(e)])
        migration = any(is_migration(e) for e in entries)

        def block(session: Session, seconds: float) -> None:
            # Only an event about a watched job ends the block: others' do not wake the wait.
            until = self.waiter.clock() + seconds
            while True:
                event = session.wait_event(max(0.0, until - self.waiter.clock()))
                if event is None:
                    return
                self.observer.note_event(event, names)
                if _model.concerns(event, watched, migration) or self.waiter.clock() >= until:
                    return

        try:
            with writeback:
                result = self.waiter.wait(self.reads.backend.session, check, block, timeout,
                                          first)
        except TransportError as err:  # the VM went away: a migration may have ended
            if not isinstance(err, MonitorBusy):
                self.observer.keep_last(latest)
            try:
                records = self.reads.offline(names, err)
            except TransportError:
                if isinstance(err, MonitorBusy):
                    raise
                jobs = ', '.join(f"'{n}'" for n in names)
                seen = '; '.join(f"{r['name']} {describe(r)}" for r in latest.values())
                raise TransportError(
                    f"job{'s' if len(names) > 1 else ''} {jobs}: lost the VM while waiting for "
                    f"{target} (last seen: {seen or 'nothing'}): {err}", names[0]) from err
            verdicts = {r['name']: verdict(r, self.reads.ledger.get(r['name'])) for r in records}
            if all(v == 'reached' for v in verdicts.values()):
                return Result(False, records, None)
            raise self.unreachable(records[0], target, records) from err
        records, verdicts = result.value
        if not result.done:
            waited_for = ', '.join(f"job '{n}'" for n in names)
            last_seen = '; '.join(f"{r['name']} {describe(r)}" for r in records)
            raise JobTimeout(f'timed out after {result.elapsed:.1f}s waiting for {waited_for} to '
                             f'reach {target}; last seen: {last_seen}',
                             names[0], records, result.elapsed)
        for record in records:
            if verdicts[record['name']] == 'never':
                raise self.unreachable(record, target, records)
        return Result(False, records, result.elapsed)

    @staticmethod
    def unreachable(record: Record, target: str, records: list[Record]) -> VmjobsError:
        """The error for a job that can no longer reach ``target``."""
        name = record['name']
        if record.get('outcome') == 'failed':
            return JobFailed(f"job '{name}' failed: {record['error']}", name, records)
        return JobStateError(
            f"job '{name}' ({record['type']}) is {describe(record)} and cannot reach {target}"
            f"{held_hint(record)}; verbs allowed now: "
            f"{_vocabulary.allowed_text(record['status'], record['type'])}", name, record)
