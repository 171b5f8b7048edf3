# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check mode's one chokepoint: a backend and a ledger that read and change nothing.

This is a private module: its API may change between any two releases.

A job client in check mode wraps the VM's backend and ledger in these (see
``JobClient``): every read goes through, every write to the ledger and every action on
the VM (start, verb, clean-up, finishing a migration) is dropped here, in one place.
What the code above still decides by ``check_mode`` is what to *report*: a wait for an
effect that will not come is skipped, and ``changed`` says what would have changed.

One upkeep goes through all the same (see :func:`upkeep`): dismissing a concluded
stream, with its outcome kept in the ledger, which no report shows.
"""

from __future__ import annotations

import contextlib
import typing as t

from .._ledger.files import Ledger, RecordKeeper
from .._model.session import Attach, Backend, MakeOverlay, Note, Record, Session


class DryLedger(RecordKeeper):
    """Reads ``ledger``; writes nothing (``put`` and ``update`` return what would be)."""

    def __init__(self, ledger: t.Any) -> None:
        self.inner = ledger
        self.root: str = getattr(ledger, 'root', '')
        self.scope: str = ledger.scope
        self.retention_days = ledger.retention_days
        self._clock = ledger._clock

    @property
    def damaged(self) -> dict[str, str]:  # the inner ledger's, as its last ``all`` left it
        return t.cast('dict[str, str]', self.inner.damaged)

    @damaged.setter
    def damaged(self, value: dict[str, str]) -> None:
        self.inner.damaged = value

    def lock(self) -> t.ContextManager[None]:
        return t.cast('t.ContextManager[None]', self.inner.lock())

    def get(self, name: str) -> Record | None:
        return t.cast('Record | None', self.inner.get(name))

    def all(self) -> list[Record]:
        return t.cast('list[Record]', self.inner.all())

    def put(self, record: Record) -> Record:
        return record

    def delete(self, name: str) -> bool:
        return self.get(name) is not None

    def prune(self) -> list[str]:
        return []


class DrySession:
    """Reads through ``session``; starts, steers and cleans up nothing."""

    def __init__(self, session: Session) -> None:
        self.inner = session

    def know(self, entries: t.Sequence[Record]) -> None:
        self.inner.know(entries)

    def records(self) -> list[Record]:
        return self.inner.records()

    def ended(self) -> list[Record]:
        return self.inner.ended()

    def adoption(self, name: str) -> Record | None:
        return self.inner.adoption(name)

    def backup_sources(self, name: str, devices: t.Sequence[str] | None) -> list[Record]:
        return self.inner.backup_sources(name, devices)

    def migration(self, entry: Record) -> Record | None:
        return self.inner.migration(entry)

    def wait_event(self, timeout: float) -> Record | None:
        return self.inner.wait_event(timeout)

    def events(self) -> list[Record]:
        return self.inner.events()

    def start(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        pass

    def remove_marks(self, marks: dict[str, list[str]]) -> None:
        pass

    def start_backup(self, name: str, params: dict[str, t.Any], plan: list[Record], note: Note,
                     before_reset: t.Callable[[], None]) -> None:
        pass

    def end_pull(self, entry: Record, verdict: str) -> None:
        pass

    def start_instant(self, name: str, params: dict[str, t.Any], note: Note,
                      make: MakeOverlay) -> None:
        pass

    def verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        pass

    def migration_verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        pass

    def cleanup(self, entry: Record, discard: bool = False) -> list[str]:
        return []


class DryBackend:
    """Opens :class:`DrySession` s on ``backend``'s VM; finishes no migration."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend
        self.scope = backend.scope
        self.change_marks = backend.change_marks
        self.nbd_tls = backend.nbd_tls
        self.targets = backend.targets
        inner_attach: Attach | None = getattr(backend, 'attach', None)
        #: A libvirt backend's ``attach``, asked only whether it would attach.
        self.attach: Attach | None = None if inner_attach is None else (
            lambda name, target, path, fmt, dry=True: inner_attach(name, target, path, fmt, True))

    @contextlib.contextmanager
    def session(self) -> t.Iterator[Session]:
        with self.inner.session() as session:
            yield DrySession(session)

    def witness(self, entry: Record) -> Record | None:
        return self.inner.witness(entry)

    def finish(self, entry: Record) -> bool:
        return False


@t.overload
def upkeep(store: Ledger) -> Ledger: ...
@t.overload
def upkeep(store: Session) -> Session: ...


def upkeep(store: Ledger | Session) -> Ledger | Session:
    """The real ledger or session behind a dry one, for the one upkeep check mode does:
    ``Observer.retire`` dismisses a concluded stream (QEMU 7.2 dies reading the block
    graph while one stays), and keeps its outcome in the ledger. What any task reports
    is the same before and after, so a check run changes nothing a user sees."""
    if isinstance(store, DryLedger):
        return t.cast(Ledger, store.inner)
    if isinstance(store, DrySession):
        return store.inner
    return store
