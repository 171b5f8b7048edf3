# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a job has reached what a wait waits for, may still, or never will.

This is a private module: its API may change between any two releases. Pure.
"""

from __future__ import annotations

import typing as t

from .vocabulary import ABSENT, READY_TYPES, VERBS, Verdict

Record = dict[str, t.Any]


def held(record: Record, entry: Record | None = None) -> bool:
    """Whether a job stays where it is until resumed: paused through the collection,
    or stopped on an I/O error (``on_error: stop`` or ``enospc``)."""
    if record['status'] not in ('paused', 'standby'):
        return False
    stopped = record.get('io_status') not in (None, 'ok')
    return stopped or bool((entry or {}).get('user_paused'))


def can_become_ready(record: Record, entry: Record | None = None) -> bool:
    """Whether a job may still reach READY on its normal path."""
    if record['type'] not in READY_TYPES:
        return False
    if record['status'] not in ('created', 'running', 'paused', 'ready', 'standby'):
        return False
    return not (record['type'] == 'commit' and entry is not None and entry.get('active') is False)


def wait_verdict(record: Record, target: str, entry: Record | None = None) -> Verdict:
    """Compare a record with a wait target.

    :return: ``reached``, ``waiting`` or ``never`` (the target cannot be reached
        any more on the job's normal path).
    """
    status = record['status']
    if target == 'absent':
        return 'reached' if status == ABSENT or not record.get('live', True) else 'waiting'
    if status == ABSENT:
        if target == 'concluded' and record.get('dismissed'):
            return 'reached'
        return 'never'
    if target == 'ready' and status == 'standby':
        return 'reached'
    if status != 'concluded' and held(record, entry):
        return 'never'  # nothing moves it on until someone resumes it
    if target == 'concluded':
        return 'reached' if status == 'concluded' else 'waiting'
    if status == 'aborting':
        return 'waiting'  # QEMU publishes the error when the job concludes
    if target == 'pending':
        if status == 'pending' or (status == 'concluded' and record['outcome'] == 'succeeded'):
            return 'reached'
        return 'never' if status == 'concluded' else 'waiting'
    if target == 'ready':
        if status in ('ready', 'standby'):
            return 'reached'
        if can_become_ready(record, entry):
            return 'waiting'
        went_past = status in ('waiting', 'pending') or record['outcome'] == 'succeeded'
        completable = record['type'] in READY_TYPES and (entry or {}).get('active') is not False
        return 'reached' if completable and went_past else 'never'
    raise ValueError(f'unknown wait target {target!r}')


# -- what the job module waits for after a verb ----------------------------------------------

def left_ready(record: Record, _entry: Record | None) -> Verdict:
    """A completed (pivoted) job has left READY."""
    status = record['status']
    if status in ('waiting', 'pending', 'concluded') or status == ABSENT:
        return 'reached'
    return 'waiting' if status in ('ready', 'standby', 'aborting') else 'never'


def is_paused(record: Record, _entry: Record | None) -> Verdict:
    """The job is paused, or will be on its way."""
    if record['status'] in ('paused', 'standby'):
        return 'reached'
    return 'waiting' if record['status'] in VERBS['pause'] else 'never'


def concluded(record: Record, _entry: Record | None) -> Verdict:
    """The job has concluded, or is gone."""
    return 'reached' if record['status'] in ('concluded', ABSENT) else 'waiting'


def pending(record: Record, _entry: Record | None) -> Verdict:
    """The job waits to be finalized."""
    if record['status'] == 'pending':
        return 'reached'
    return 'never' if record['status'] in ('concluded', ABSENT) else 'waiting'
