# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sample records, ledger entries and backup chain attempts for the _model tests."""

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


# -- backup chains (chains, planning) ----------------------------------------------------------

#: The chain of the samples.
B = 'nightly'


def attempt(job: str, mode: str, outcome: str | None = 'succeeded', state: str = 'started',
            devices: t.Sequence[str] = ('disk0', 'disk1'), backing: str | None = None,
            reset: bool = False) -> Record:
    """A learned attempt whose targets are /b/<job>/<device>.qcow2."""
    return {'job': job, 'mode': mode, 'state': state, 'outcome': outcome, 'reset': reset,
            'identity': {'type': 'backup', 'mode': mode, 'bitmap': B, 'job': job},
            'disks': {d: {'target': f'/b/{job}/{d}.qcow2', 'format': 'qcow2',
                          'backing': backing and f'/b/{backing}/{d}.qcow2'} for d in devices}}


def entry(a: Record, state: str = 'started') -> Record:
    """The ledger entry of the job an attempt started."""
    return {'name': a['job'], 'type': 'backup', 'state': state, 'params': a['identity']}


def record(name: str, status: str = 'concluded', outcome: str | None = 'succeeded',
           live: bool = True) -> Record:
    return {'name': name, 'type': 'backup', 'status': status, 'outcome': outcome, 'live': live}


def everything(_path: str) -> bool:
    return True
