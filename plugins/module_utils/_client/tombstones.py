# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``job state=absent``: dismissing a job into a tombstone, or forgetting it.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import contextlib

from .._model.chains import is_pull
from .._model.session import Record
from .jobs import JobClient
from .observer import compact
from .reads import Result


def forget_entry(client: JobClient, record: Record, entry: Record | None, forget: bool) -> Result:
    """``absent`` for a job QEMU no longer has: keep or drop its ledger entry."""
    if entry is None or (record['dismissed'] and not forget):
        return Result(False, [record])
    if not client.check_mode:
        with contextlib.ExitStack() as stack:
            # The monitor before the ledger's lock (see JobClient.start).
            session = None
            if entry.get('state') != 'dismissed':
                session = stack.enter_context(client.backend.session())
            stack.enter_context(client.ledger.lock())
            kept = entry.get('kept_nodes', [])
            if session is not None:
                # QEMU lost or dismissed the job without us: detach its target now.
                kept = session.cleanup(entry, discard=is_pull(entry))
            if forget:
                client.ledger.delete(record['name'])
            else:
                client.ledger.update(record['name'], state='dismissed', kept_nodes=kept)
    return Result(True, [dict(record, dismissed=True)])


def dismiss(client: JobClient, record: Record, entry: Record | None, forget: bool) -> None:
    """Dismiss a concluded job that QEMU has: detach its targets, then keep a tombstone
    with its outcome (or, with ``forget``, no record at all)."""
    name = record['name']
    ledger = client.ledger
    # The monitor before the ledger's lock (see JobClient.start).
    with client.backend.session() as session, ledger.lock():
        entry = ledger.get(name) or entry
        if record['live']:  # an auto-dismissed job is gone after its cancel
            client.apply(session, name, 'dismiss')
        kept = session.cleanup(entry or {}, discard=is_pull(entry))
        if forget:
            ledger.delete(name)
            return
        tomb = dict(entry or {'name': name, 'type': record['type'],
                              'params': {'type': record['type']}},
                    state='dismissed', last=compact(record), kept_nodes=kept)
        ledger.put(tomb)
