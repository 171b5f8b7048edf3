# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The read model: what QEMU (or libvirt) shows, merged with what the ledger remembers.

This is a private module: its API may change between any two releases.
It writes nothing but a migration's outcome that a destination witnessed (which
nobody else can write once the source has gone); the observer's hooks write the rest.
Constructors do no I/O.
"""

from __future__ import annotations

import dataclasses
import typing as t

from .._errors import LedgerError, TransportError
from .._ledger.files import Ledger
from .._model import migration as _migration
from .._model import records as _model
from .._model import storage as _storage
from .._model.session import Backend, Record, Session
from .observer import is_migration, own_daemon


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


#: ``Observer.retire``: (session, records by name, ledger entries by name), updated in place.
Retire = t.Callable[[Session, dict[str, Record], dict[str, Record]], None]


def absent_record(name: str) -> Record:
    """The record of a job nobody knows."""
    return _model.record_from_ledger({'name': name, 'type': None, 'state': 'absent'}) | {
        'lost': False}


def describe(record: Record) -> str:
    """'running 42.0%' / 'concluded (failed: No space left on device)'."""
    text = str(record['status'])
    if record.get('outcome'):
        error = f": {record['error']}" if record.get('error') else ''
        text += f" ({record['outcome']}{error})"
    elif (record.get('progress') or {}).get('percent') is not None:
        text += f" {record['progress']['percent']:.1f}%"
    return text


class Reads:
    """Records of one VM's jobs, live or remembered.

    :param backend: the VM's backend.
    :param ledger: the VM's ledger.
    :param check_mode: the client only predicts (its backend and ledger are dry; the starter
        asks this, to start nothing).
    :param keep: hands the observer records whose outcome the VM tells only once.
    :param retire: hands the observer every snapshot, to dismiss the concluded jobs that
        are not to stay in the VM (see ``Observer.retire``).
    """

    def __init__(self, backend: Backend, ledger: Ledger, check_mode: bool = False,
                 keep: t.Callable[[list[Record]], None] | None = None,
                 retire: Retire | None = None) -> None:
        self.backend = backend
        self.ledger = ledger
        self.check_mode = check_mode
        self.keep = keep
        self.retire = retire

    def snapshot(self, session: Session) -> tuple[dict[str, Record], dict[str, Record]]:
        """Every job the VM or the ledger knows: (records by name, ledger entries by name)."""
        entries = {entry['name']: entry for entry in self.ledger.all()}
        session.know(list(entries.values()))
        live = {record['name']: record for record in session.records()}
        ended = session.ended()
        if ended and self.keep is not None:
            self.keep(ended)
        mover = _migration.owner(entries.values())
        if mover is not None:
            migration = session.migration(entries[mover])
            if migration is not None:
                live[mover] = migration
        for name, entry in entries.items():
            members = [live.pop(m) for m in entry.get('members') or [] if m in live]
            if is_migration(entry) and entry.get('disks') and entry.get('state') != 'dismissed':
                if name in live or members:  # a migration that copies its disks
                    live[name] = _storage.storage_record(name, live.get(name), members, entry)
            elif members:
                live[name] = _model.group_record(name, members, entry)
        records = {name: _model.attach_detail(record, entries.get(name))
                   for name, record in live.items()}
        for name, entry in entries.items():
            if name not in records:
                records[name] = _model.attach_detail(_model.record_from_ledger(entry), entry)
        if self.retire is not None:
            self.retire(session, records, entries)
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
        """Records of migrations whose VM has gone, and of jobs whose own daemon has exited
        (a restore, a verify): the ledger is the only witness.

        An outcome the ledger lacks is asked of the destination, when known.

        :raise TransportError: ``err``, unless every name is a migration in the ledger.
        """
        if not names:  # a daemon of the collection's own keeps one job, listed without a name
            names = [entry['name'] for entry in self.ledger.all()]
            if not names or not all(own_daemon(self.ledger.get(name)) for name in names):
                raise err
        entries = [self.ledger.get(name) for name in names]
        if not all(is_migration(entry) or own_daemon(entry) for entry in entries):
            raise err
        records = []
        for entry in t.cast('list[Record]', entries):
            record = _model.record_from_ledger(entry)
            seen = None if record['outcome'] or not is_migration(entry) else \
                self.backend.witness(entry)
            if seen is not None:
                last = dict(entry.get('last') or {}, status='concluded',
                            outcome=seen['outcome'], error=seen['error'])
                with self.ledger.lock():
                    entry = self.ledger.update(entry['name'], last=last) or entry
                record = _model.record_from_ledger(dict(entry, last=last))
            records.append(_model.attach_detail(record, entry))
        return records

    def listed(self, names: t.Sequence[str] = (), types: t.Sequence[str] = (),
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
