# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Starting a named job once: find it, or note it in the ledger and start it.

This is a private module: its API may change between any two releases.

A start is written to the ledger (``state: starting``) before QEMU is asked, and
marked ``started`` after. A task that died in between leaves ``starting``: the next
start adopts the job if QEMU has it, or removes what the dead task created.
"""

from __future__ import annotations

import typing as t

from .._errors import JobConflict, VmjobsError, naming
from .._ledger.files import Ledger
from .._model.session import Note, Record, Session
from .._model.shapes import ledger_entry
from .observer import Observer
from .reads import Reads, absent_record, describe

#: Parameters that may differ between two starts of the same job.
NOT_IDENTITY = frozenset({'speed', 'reuse_target', 'bandwidth', 'copy_mode'})

Prepare = t.Callable[[dict[str, Record], dict[str, Record]], dict[str, t.Any]]
#: Starts the job in an open session (``Session.start`` unless a caller gives another).
Launch = t.Callable[[Session, str, dict[str, t.Any], Note], None]


def identity(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The parameters that make a job the job it is."""
    return {k: v for k, v in params.items() if k not in NOT_IDENTITY and v is not None}


def differences(old: dict[str, t.Any], new: dict[str, t.Any]) -> list[str]:
    """Human-readable differences between two parameter sets."""
    return [f'{key}={old.get(key)!r} (requested {new.get(key)!r})'
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def same_job(name: str, record: Record, entry: Record | None, wanted: dict[str, t.Any]) -> None:
    """Refuse a start whose parameters differ from those of the job of that name.

    :raise JobConflict: naming what exists and each difference.
    """
    if entry is not None and entry.get('params') is not None:
        diffs = differences(entry['params'], wanted)
    else:
        diffs = differences({'type': record['type']}, {'type': wanted['type']})
    if diffs:
        raise JobConflict(
            f"job '{name}' already exists as a different job ({record['type']}, "
            f"{describe(record)}): {', '.join(diffs)}; pick another name, or dismiss it "
            "with job state=absent forget=true", name, [record])


class Starter:
    """Finds or starts one named job; the caller holds the session and the ledger's lock.

    :param reads: the read model.
    :param observer: closes the targets of a job found concluded.
    :param now: wall clock, for the ledger's ``started_at``.
    """

    def __init__(self, reads: Reads, observer: Observer, now: t.Callable[[], float]) -> None:
        self.reads = reads
        self.observer = observer
        self.now = now

    @property
    def ledger(self) -> Ledger:
        return self.reads.ledger

    def find_or_start(self, session: Session, name: str, params: dict[str, t.Any],
                      wanted: dict[str, t.Any], prepare: Prepare | None,
                      launch: Launch | None = None) -> Record | None:
        """The job's record, started if new (``_started`` set); None in check mode for a new job."""
        check_mode = self.reads.check_mode
        records, entries = self.reads.snapshot(session)
        self.reads.readable([name])
        record, entry = records.get(name), entries.get(name)
        interrupted = entry is not None and entry.get('state') == 'starting'
        if interrupted and record is not None and record['live']:
            # The job started but the task died before noting it: it is ours.
            entry = self.ledger.update(name, state='started')
        elif interrupted and (record is None or not record['live']):
            session.cleanup(entry or {}, discard=True)
            self.ledger.delete(name)
            record = entry = None
        if record is not None:
            same_job(name, record, entry, wanted)
            if self.observer.close_locked(session, [name], records, entries):
                record = self.reads.snapshot(session)[0].get(name) or record
            return record
        if prepare is not None:
            params = dict(params, **prepare(records, entries))
        if check_mode:
            return None
        self._start(session, name, params, wanted, launch)
        records, _entries = self.reads.snapshot(session)
        return dict(records.get(name) or absent_record(name), _started=True)

    def _start(self, session: Session, name: str, params: dict[str, t.Any],
               wanted: dict[str, t.Any], launch: Launch | None) -> None:
        first: Record = {'attached': []}
        if params.get('copy_mode'):  # a tunable, not identity: kept beside the parameters
            first['copy_mode'] = params['copy_mode']
        self.ledger.put(ledger_entry(name, params['type'], wanted, self.now(), **first))

        def note(**facts: t.Any) -> None:
            self.ledger.update(name, **facts)

        try:
            with naming(name):
                if launch is None:
                    session.start(name, params, note)
                else:
                    launch(session, name, params, note)
        except VmjobsError:
            entry = self.ledger.get(name)
            if entry is not None:
                session.cleanup(entry, discard=True)
                self.ledger.delete(name)
            raise
        self.ledger.update(name, state='started')
