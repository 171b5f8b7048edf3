# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sample records and ledger entries for the _model tests."""

from __future__ import annotations

import typing as t

Record = dict[str, t.Any]


def tombstone(**changes: t.Any) -> Record:
    entry: Record = {
        'name': 'b1', 'type': 'backup', 'state': 'dismissed',
        'params': {'type': 'backup', 'device': 'disk0', 'target': '/srv/b1.qcow2',
                   'auto_finalize': True, 'auto_dismiss': False},
        'last': {'status': 'concluded', 'outcome': 'succeeded', 'error': None,
                 'progress': {'current': 64, 'total': 64, 'percent': 100.0}, 'speed': 0},
    }
    entry.update(changes)
    return entry


def live(status: str = 'concluded', outcome: str | None = 'succeeded', kind: str = 'mirror',
         **changes: t.Any) -> Record:
    record = {'name': 'm1', 'type': kind, 'status': status, 'outcome': outcome, 'error': None,
              'dismissed': False, 'live': status != 'absent'}
    record.update(changes)
    return record
