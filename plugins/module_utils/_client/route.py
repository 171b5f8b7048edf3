# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a verb on a named job goes: the job, the VM's migration, or a group's members.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import typing as t

from .._ledger.files import Ledger
from .._model import vocabulary as _vocabulary
from .._model.session import Record, Session
from .observer import is_migration


def apply(session: Session, ledger: Ledger, name: str, verb: str,
          adopt: t.Callable[[Record], None], **arguments: t.Any) -> None:
    """Apply ``verb`` to job ``name``: a QEMU job, a migration, or a group's members.

    In a group, cancel and finalize act on the whole transaction through its
    first member that accepts them; other verbs go to every member that does. A job
    started outside the collection is adopted first (``adopt`` writes its entry).
    """
    entries = ledger.all()
    entry = next((e for e in entries if e['name'] == name), None)
    if entry is None:
        entry = session.adoption(name)
        if entry is not None:
            adopt(entry)
            entries = [*entries, entry]
    session.know(entries)
    entry = entry or {}
    if is_migration(entry):
        session.migration_verb(name, verb, **arguments)
        return
    members = entry.get('members')
    if not members:
        session.verb(name, verb, **arguments)
        return
    live = {record['name']: record for record in session.records()}
    for member in members:
        if member in live and _vocabulary.verb_allowed(verb, live[member]['status']):
            session.verb(member, verb, **arguments)
            if verb in ('cancel', 'finalize'):
                return
