# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Forgetting a backup chain: its change marks leave the VM, its history the ledger.

This is a private module: its API may change between any two releases.

The images of the chain are left where they are: they are the user's backups.
"""

from __future__ import annotations

import typing as t

from .._errors import InvalidArgument
from .._model import chains as _chains
from .backup import chain_ledger
from .jobs import JobClient

Record = dict[str, t.Any]


def forget_chain(client: JobClient, bitmap: str) -> dict[str, t.Any]:
    """Remove chain ``bitmap``'s bitmaps (or checkpoints) from the VM and its history.

    Idempotent: a chain already forgotten changes nothing. In check mode nothing is
    removed, and the result says what would be.

    :return: ``{'changed', 'chain': {'bitmap', 'removed': [{'device', 'names'}], 'backups'}}``
    :raise InvalidArgument: a backup of the chain is still running.
    """
    chains = chain_ledger(client.ledger)
    kind = client.backend.change_marks
    with client.ledger.lock(), client.backend.session() as session:
        chain = chains.get(bitmap)
        records, entries = client.reads.snapshot(session)
        attempts = _chains.learn(chain['attempts'] if chain else [], records, entries)
        for attempt in attempts:
            if _chains.status(attempt, records) == 'running':
                raise InvalidArgument(f"chain '{bitmap}': backup '{attempt['job']}' is still "
                                      'running; wait for it to conclude before forgetting the '
                                      'chain', bitmap)
        wanted = _chains.chain_marks(bitmap, chain, kind)
        found = [(source, [mark for mark in wanted if mark in source['marks']])
                 for source in session.backup_sources(bitmap, None)]
        found = [(source, marks) for source, marks in found if marks]
        if found:
            session.remove_marks({source['node']: marks for source, marks in found})
        if chain is not None and not client.check_mode:
            chains.delete(bitmap)
    return {'changed': bool(found) or chain is not None,
            'chain': {'bitmap': bitmap,
                      'removed': [{'device': source['device'], 'names': marks}
                                  for source, marks in found],
                      'backups': [attempt['job'] for attempt in attempts]}}
