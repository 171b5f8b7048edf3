# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job client: start, get, list and wait for named jobs over a backend.

This is a private module: its API may change between any two releases.
The client sees plain values only (never AnsibleModule); constructors do no I/O.
It puts together the read model (``reads``), the starter, the wait (``waiting``)
and the observer, which alone writes what it sees into the ledger.
"""

from __future__ import annotations

import contextlib
import time
import typing as t

from .._errors import TransportError, VmjobsError
from .._ledger.files import Ledger
from .._model import vocabulary as _vocabulary
from .._model.session import Backend, Record, Session
from .._waiter import Waiter
from .dry import DryBackend, DryLedger
from .observer import Observer
from .reads import Reads, Result, absent_record
from .route import apply
from .starter import Launch, Prepare, Starter, identity, same_job
from .waiting import Judge, Waiting


@contextlib.contextmanager
def handover(session: Session, owner: contextlib.ExitStack) -> t.Iterator[Session]:
    """An open session as a context manager whose exit closes it (through ``owner``)."""
    with owner:
        yield session


class JobClient:
    """Named jobs of one VM.

    :param backend: the VM's backend (QMP socket or libvirt domain).
    :param ledger: the VM's ledger.
    :param waiter: the wait loop (clock and sleep injected).
    :param check_mode: predict ``changed`` without changing anything: the backend and the
        ledger are wrapped so that they read and change nothing (see ``dry``).
    """

    def __init__(self, backend: Backend, ledger: Ledger, waiter: Waiter | None = None,
                 check_mode: bool = False, now: t.Callable[[], float] = time.time) -> None:
        if check_mode:
            backend, ledger = DryBackend(backend), t.cast(Ledger, DryLedger(ledger))
        self.backend = backend
        self.ledger = ledger
        self.waiter = waiter or Waiter()
        self.check_mode = check_mode
        self.now = now
        self.observer = Observer(backend, ledger, check_mode, now)
        self.reads = Reads(backend, ledger, check_mode, self.observer.keep_ended,
                           self.observer.retire)
        self.starter = Starter(self.reads, self.observer, now)
        self.waiting = Waiting(self.reads, self.observer, self.waiter)

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
        """Every job the VM or the ledger knows (see :meth:`Reads.snapshot`)."""
        return self.reads.snapshot(session)

    def readable(self, names: t.Iterable[str]) -> None:
        """Refuse names whose ledger record could not be read (see :meth:`Reads.readable`)."""
        self.reads.readable(names)

    def offline(self, names: t.Sequence[str], err: TransportError) -> list[Record]:
        """Records of migrations whose VM has gone (see :meth:`Reads.offline`)."""
        return self.reads.offline(names, err)

    def get(self, name: str, settle: bool = False) -> tuple[Record, Record | None]:
        """The record of ``name`` (status ``absent`` if unknown) and its ledger entry.

        With ``settle``, the targets of a job that has concluded are closed first
        (see :meth:`Observer.close_targets`); without it, nothing changes.
        """
        _vocabulary.validate_name(name)
        try:
            with self.backend.session() as session:
                records, entries = self.reads.snapshot(session)
                self.reads.readable([name])
                if settle and self.observer.complete_copies(session, [name], records, entries):
                    records, entries = self.reads.snapshot(session)
                if settle and self.observer.close_targets(session, [name], records, entries):
                    records, entries = self.reads.snapshot(session)
        except TransportError as err:
            return self.reads.offline([name], err)[0], self.ledger.get(name)
        return records.get(name) or absent_record(name), entries.get(name)

    def list(self, names: t.Sequence[str] = (), types: t.Sequence[str] = (),
             statuses: t.Sequence[str] = (), include_dismissed: bool = False) -> list[Record]:
        """Records matching every filter given, sorted by name."""
        return self.reads.listed(names, types, statuses, include_dismissed)

    def apply(self, session: Session, name: str, verb: str, **arguments: t.Any) -> None:
        """Apply ``verb`` to job ``name`` (see :func:`route.apply`)."""
        apply(session, self.ledger, name, verb, self.observer.adopt, **arguments)

    # -- starting ----------------------------------------------------------------------------

    def start(self, name: str, params: dict[str, t.Any], wait: str | None = None,
              wait_timeout: float = 300.0, prepare: Prepare | None = None,
              launch: Launch | None = None) -> Result:
        """Start job ``name`` unless a job of that name already exists.

        ``prepare(records, entries)`` is called (ledger locked) just before a new
        job starts, in check mode too; what it returns is added to the parameters
        the backend gets, but not to those compared on a re-run. ``launch`` starts the
        job instead of ``Session.start`` (the backup module starts a planned group).

        :raise JobConflict: the name is taken by a different job.
        :raise BackendError: QEMU refused (nothing is left behind).
        :raise TransportError: the VM cannot be reached (and the name is no
            migration the ledger remembers).
        """
        _vocabulary.validate_name(name)
        wanted = identity(params)
        self.acted_on = []
        with self.ledger.lock():
            self.ledger.prune()
        with contextlib.ExitStack() as keep:
            try:
                session = keep.enter_context(self.backend.session())
            except TransportError as err:
                record = self.reads.offline([name], err)[0]
                same_job(name, record, self.ledger.get(name), wanted)
                return Result(False, [record])
            # The monitor first, then the ledger's lock: whoever holds the lock never
            # waits for the monitor (a wait notes what it sees while it holds the monitor).
            with self.ledger.lock():
                found = self.starter.find_or_start(session, name, params, wanted, prepare,
                                                   launch)
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

    # -- waiting -------------------------------------------------------------------------------

    def wait(self, names: t.Sequence[str], target: str, timeout: float,
             fail_on_error: bool = True,
             first: t.ContextManager[Session] | None = None) -> Result:
        """Wait until every job in ``names`` reaches ``target`` (see :meth:`Waiting.wait`)."""
        return self.waiting.wait(names, target, timeout, fail_on_error, first)

    def await_jobs(self, names: t.Sequence[str], verdict: Judge, timeout: float,
                   target: str, first: t.ContextManager[Session] | None = None) -> Result:
        """Wait until ``verdict`` says ``reached`` for every name (see :meth:`Waiting.await_jobs`)."""
        return self.waiting.await_jobs(names, verdict, timeout, target, first)
