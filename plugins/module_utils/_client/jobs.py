# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job client: start, get, list and wait for named jobs over a backend.

This is a private module: its API may change between any two releases.
The client sees plain values only (never AnsibleModule); constructors do no I/O.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import typing as t

from .._errors import (
    JobConflict,
    JobFailed,
    JobNotFound,
    JobStateError,
    JobTimeout,
    LedgerError,
    MonitorBusy,
    TransportError,
    VmjobsError,
    naming,
)
from .._ledger.files import Ledger
from .._model import migration as _migration
from .._model import records as _model
from .._model.session import Backend, Record, Session
from .observer import Observer, is_migration
from .waiter import Check, Waiter

#: Parameters that may differ between two starts of the same job.
NOT_IDENTITY = frozenset({'speed', 'reuse_target', 'bandwidth'})

Judge = t.Callable[[Record, 'Record | None'], _model.Verdict]
#: Records in a list (spelled so inside ``JobClient``, whose ``list`` method hides the builtin).
Records = list[Record]
Prepare = t.Callable[[dict[str, Record], dict[str, Record]], dict[str, t.Any]]


@dataclasses.dataclass
class Result:
    """What an operation did and the records it reports."""

    changed: bool
    records: list[Record]
    elapsed: float | None = None

    @property
    def record(self) -> Record:
        return self.records[0]

    def start_output(self) -> dict[str, t.Any]:
        """A starting module's result: ``changed``, ``job``, and ``elapsed`` if it waited."""
        out: dict[str, t.Any] = {'changed': self.changed, 'job': self.record}
        if self.elapsed is not None:
            out['elapsed'] = round(self.elapsed, 3)
        return out


def identity(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The parameters that make a job the job it is."""
    return {k: v for k, v in params.items() if k not in NOT_IDENTITY and v is not None}


def differences(old: dict[str, t.Any], new: dict[str, t.Any]) -> list[str]:
    """Human-readable differences between two parameter sets."""
    return [f'{key}={old.get(key)!r} (requested {new.get(key)!r})'
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def absent_record(name: str) -> Record:
    """The record of a job nobody knows."""
    return _model.record_from_ledger({'name': name, 'type': None, 'state': 'absent'}) | {
        'lost': False}


@contextlib.contextmanager
def handover(session: Session, owner: contextlib.ExitStack) -> t.Iterator[Session]:
    """An open session as a context manager whose exit closes it (through ``owner``)."""
    with owner:
        yield session


def describe(record: Record) -> str:
    """'running 42.0%' / 'concluded (failed: No space left on device)'."""
    text = str(record['status'])
    if record.get('outcome'):
        error = f": {record['error']}" if record.get('error') else ''
        text += f" ({record['outcome']}{error})"
    elif (record.get('progress') or {}).get('percent') is not None:
        text += f" {record['progress']['percent']:.1f}%"
    return text


def held_hint(record: Record) -> str:
    """Why a paused job will not move on, and what to do (empty if it is not paused)."""
    if record['status'] not in ('paused', 'standby'):
        return ''
    if record.get('io_status') not in (None, 'ok'):
        return (f": it stopped on an I/O error (io_status {record['io_status']}); fix the "
                'cause and resume it (job state: running), or cancel it')
    return ': it is paused; resume it first (job state: running)'


class JobClient:
    """Named jobs of one VM.

    :param backend: the VM's backend (QMP socket or libvirt domain).
    :param ledger: the VM's ledger.
    :param waiter: the wait loop (clock and sleep injected).
    :param check_mode: predict ``changed`` without changing anything.
    """

    def __init__(self, backend: Backend, ledger: Ledger, waiter: Waiter | None = None,
                 check_mode: bool = False, now: t.Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.ledger = ledger
        self.waiter = waiter or Waiter()
        self.check_mode = check_mode
        self.now = now
        self.observer = Observer(backend, ledger, check_mode, now)

    @property
    def acted_on(self) -> list[str]:
        """Names of the jobs acted on besides what a caller asked for (see ``Observer``)."""
        return self.observer.acted_on

    @acted_on.setter
    def acted_on(self, names: list[str]) -> None:
        self.observer.acted_on = names

    @property
    def acted(self) -> bool:
        """Whether this client changed anything besides what a caller asked for."""
        return bool(self.observer.acted_on)

    # -- reading ---------------------------------------------------------------------------

    def snapshot(self, session: Session) -> tuple[dict[str, Record], dict[str, Record]]:
        """Every job the VM or the ledger knows: (records by name, ledger entries by name)."""
        entries = {entry['name']: entry for entry in self.ledger.all()}
        live = {record['name']: record for record in session.records()}
        mover = _migration.owner(entries.values())
        if mover is not None:
            migration = session.migration(entries[mover])
            if migration is not None:
                live[mover] = migration
        for name, entry in entries.items():
            members = [live.pop(m) for m in entry.get('members') or [] if m in live]
            if members:
                live[name] = _model.group_record(name, members, entry)
        records = {name: _model.attach_detail(record, entries.get(name))
                   for name, record in live.items()}
        for name, entry in entries.items():
            if name not in records:
                records[name] = _model.attach_detail(_model.record_from_ledger(entry), entry)
        return records, entries

    def readable(self, names: t.Iterable[str]) -> None:
        """Refuse names whose ledger record could not be read (see ``Ledger.damaged``).

        :raise LedgerError: one-line message naming the record's file.
        """
        for name in names:
            damaged = self.ledger.damaged.get(name)
            if damaged is not None:
                raise LedgerError(damaged, name)

    def offline(self, names: t.Sequence[str], err: TransportError) -> list[Record]:
        """Records of migrations whose VM has gone: the ledger is the only witness.

        An outcome the ledger lacks is asked of the destination, when known.

        :raise TransportError: ``err``, unless every name is a migration in the ledger.
        """
        entries = [self.ledger.get(name) for name in names]
        if not names or not all(is_migration(entry) for entry in entries):
            raise err
        records = []
        for entry in t.cast('list[Record]', entries):
            record = _model.record_from_ledger(entry)
            seen = None if record['outcome'] else self.backend.witness(entry)
            if seen is not None:
                last = dict(entry.get('last') or {}, status='concluded',
                            outcome=seen['outcome'], error=seen['error'])
                if not self.check_mode:
                    with self.ledger.lock():
                        entry = self.ledger.update(entry['name'], last=last) or entry
                record = _model.record_from_ledger(dict(entry, last=last))
            records.append(_model.attach_detail(record, entry))
        return records

    def apply(self, session: Session, name: str, verb: str, **arguments: t.Any) -> None:
        """Apply ``verb`` to job ``name``: a QEMU job, a migration, or a group's members.

        In a group, cancel and finalize act on the whole transaction through its
        first member that accepts them; other verbs go to every member that does.
        """
        entry = self.ledger.get(name) or {}
        if is_migration(entry):
            session.migration_verb(name, verb, **arguments)
            return
        members = entry.get('members')
        if not members:
            session.verb(name, verb, **arguments)
            return
        live = {record['name']: record for record in session.records()}
        for member in members:
            if member in live and _model.verb_allowed(verb, live[member]['status']):
                session.verb(member, verb, **arguments)
                if verb in ('cancel', 'finalize'):
                    return

    def get(self, name: str, settle: bool = False) -> tuple[Record, Record | None]:
        """The record of ``name`` (status ``absent`` if unknown) and its ledger entry.

        With ``settle``, the targets of a job that has concluded are closed first
        (see :meth:`close_targets`); without it, nothing changes.
        """
        _model.validate_name(name)
        try:
            with self.backend.session() as session:
                records, entries = self.snapshot(session)
                self.readable([name])
                if settle and self.observer.close_targets(session, [name], records, entries):
                    records, entries = self.snapshot(session)
        except TransportError as err:
            return self.offline([name], err)[0], self.ledger.get(name)
        return records.get(name) or absent_record(name), entries.get(name)

    def list(self, names: t.Sequence[str] = (), types: t.Sequence[str] = (),
             statuses: t.Sequence[str] = (), include_dismissed: bool = False) -> list[Record]:
        """Records matching every filter given, sorted by name."""
        try:
            with self.backend.session() as session:
                records, _entries = self.snapshot(session)
            self.readable(names)
        except TransportError as err:
            records = {r['name']: r for r in self.offline(names, err)}
        return [r for name, r in sorted(records.items())
                if (include_dismissed or not r['dismissed'])
                and (not names or name in names)
                and (not types or r['type'] in types)
                and (not statuses or r['status'] in statuses)]

    # -- starting ----------------------------------------------------------------------------

    def start(self, name: str, params: dict[str, t.Any], wait: str | None = None,
              wait_timeout: float = 300.0, prepare: Prepare | None = None) -> Result:
        """Start job ``name`` unless a job of that name already exists.

        ``prepare(records, entries)`` is called (ledger locked) just before a new
        job starts, in check mode too; what it returns is added to the parameters
        the backend gets, but not to those compared on a re-run.

        :raise JobConflict: the name is taken by a different job.
        :raise BackendError: QEMU refused (nothing is left behind).
        :raise TransportError: the VM cannot be reached (and the name is no
            migration the ledger remembers).
        """
        _model.validate_name(name)
        wanted = identity(params)
        self.acted_on = []
        if not self.check_mode:
            with self.ledger.lock():
                self.ledger.prune()
        with contextlib.ExitStack() as keep:
            try:
                session = keep.enter_context(self.backend.session())
            except TransportError as err:
                record = self.offline([name], err)[0]
                self._same_job(name, record, self.ledger.get(name), wanted)
                return Result(False, [record])
            # The monitor first, then the ledger's lock: whoever holds the lock never
            # waits for the monitor (a wait notes what it sees while it holds the monitor).
            with self.ledger.lock():
                found = self._start_locked(session, name, params, wanted, prepare)
            if found is None:
                return Result(True, [dict(absent_record(name), type=params['type'])])
            changed = found.pop('_started', False) or self.acted
            if not wait or wait == 'none' or self.check_mode:
                return Result(changed, [found])
            # Wait on the session that started the job: it has every event since. The
            # wait closes it after its first stretch (QMP serves one client at a time).
            try:
                waited = self.wait([name], wait, wait_timeout,
                                   first=handover(session, keep.pop_all()))
            except VmjobsError as err:
                err.changed = changed  # the job was started all the same
                raise
        return Result(changed or self.acted, waited.records, waited.elapsed)

    def _start_locked(self, session: Session, name: str, params: dict[str, t.Any],
                      wanted: dict[str, t.Any], prepare: Prepare | None) -> Record | None:
        """Find or start the job (ledger lock held); None in check mode for a new job."""
        records, entries = self.snapshot(session)
        self.readable([name])
        record, entry = records.get(name), entries.get(name)
        interrupted = entry is not None and entry.get('state') == 'starting'
        if interrupted and record is not None and record['live'] and not self.check_mode:
            # The job started but the task died before noting it: it is ours.
            entry = self.ledger.update(name, state='started')
        elif interrupted and (record is None or not record['live']):
            if not self.check_mode:
                session.cleanup(entry or {}, discard=True)
                self.ledger.delete(name)
            record = entry = None
        if record is not None:
            self._same_job(name, record, entry, wanted)
            if self.observer.close_locked(session, [name], records, entries):
                record = self.snapshot(session)[0].get(name) or record
            return record
        if prepare is not None:
            params = dict(params, **prepare(records, entries))
        if self.check_mode:
            return None
        self._start(session, name, params, wanted)
        records, _entries = self.snapshot(session)
        return dict(records.get(name) or absent_record(name), _started=True)

    def _start(self, session: Session, name: str, params: dict[str, t.Any],
               wanted: dict[str, t.Any]) -> None:
        self.ledger.put({'name': name, 'type': params['type'], 'params': wanted,
                         'state': 'starting', 'attached': [], 'started_at': self.now()})

        def note(**facts: t.Any) -> None:
            self.ledger.update(name, **facts)

        try:
            with naming(name):
                session.start(name, params, note)
        except VmjobsError:
            entry = self.ledger.get(name)
            if entry is not None:
                session.cleanup(entry, discard=True)
                self.ledger.delete(name)
            raise
        self.ledger.update(name, state='started')

    def _same_job(self, name: str, record: Record, entry: Record | None,
                  wanted: dict[str, t.Any]) -> None:
        if entry is not None and entry.get('params') is not None:
            diffs = differences(entry['params'], wanted)
        else:
            diffs = differences({'type': record['type']}, {'type': wanted['type']})
        if diffs:
            raise JobConflict(
                f"job '{name}' already exists as a different job ({record['type']}, "
                f"{describe(record)}): {', '.join(diffs)}; pick another name, or dismiss it "
                "with job state=absent forget=true", name, [record])

    # -- waiting -------------------------------------------------------------------------------

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
        def verdict(record: Record, entry: Record | None) -> _model.Verdict:
            return _model.wait_verdict(record, target, entry)

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
            _model.validate_name(name)
        latest: dict[str, Record] = {}

        def check(session: Session) -> Check[tuple[Records, dict[str, _model.Verdict]]]:
            records, entries = self.snapshot(session)
            self.readable(names)
            # Events sent before the query's reply are queued by now: an outcome they
            # carry (auto-dismissed jobs vanish right after it) is kept, then re-read.
            if [e for e in session.events() if self.observer.note_event(e, names)]:
                records, entries = self.snapshot(session)
            self.observer.observe(records, entries)
            if self.observer.close_targets(session, names, records, entries):
                records, entries = self.snapshot(session)
            latest.update((name, records[name]) for name in names if name in records)
            for name in names:
                if name in records and is_migration(entries.get(name)):
                    self.observer.steer(session, records[name], entries[name])
            chosen: Records = []
            verdicts: dict[str, _model.Verdict] = {}
            for name in names:
                if name not in records and target != 'absent':
                    raise JobNotFound(f"job '{name}' not found on {self.backend.scope}",
                                      name)
                record = records.get(name) or absent_record(name)
                chosen.append(record)
                verdicts[name] = verdict(record, entries.get(name))
            done = all(v == 'reached' for v in verdicts.values()) or 'never' in verdicts.values()
            return Check(done, (chosen, verdicts))

        entries = [self.ledger.get(name) or {} for name in names]
        watched = {*names, *(m for e in entries for m in e.get('members') or [])}
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
            result = self.waiter.wait(self.backend.session, check, block, timeout, first)
        except TransportError as err:  # the VM went away: a migration may have ended
            if not isinstance(err, MonitorBusy):
                self.observer.keep_last(latest)
            try:
                records = self.offline(names, err)
            except TransportError:
                if isinstance(err, MonitorBusy):
                    raise
                jobs = ', '.join(f"'{n}'" for n in names)
                seen = '; '.join(f"{r['name']} {describe(r)}" for r in latest.values())
                raise TransportError(
                    f"job{'s' if len(names) > 1 else ''} {jobs}: lost the VM while waiting for "
                    f"{target} (last seen: {seen or 'nothing'}): {err}", names[0]) from err
            verdicts = {r['name']: verdict(r, self.ledger.get(r['name'])) for r in records}
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
    def unreachable(record: Record, target: str, records: Records) -> VmjobsError:
        """The error for a job that can no longer reach ``target``."""
        name = record['name']
        if record.get('outcome') == 'failed':
            return JobFailed(f"job '{name}' failed: {record['error']}", name, records)
        return JobStateError(
            f"job '{name}' ({record['type']}) is {describe(record)} and cannot reach {target}"
            f"{held_hint(record)}; verbs allowed now: "
            f"{_model.allowed_text(record['status'], record['type'])}", name, record)
