# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Job records: built from QMP replies, events and ledger entries, and for groups.

This is a private module: its API may change between any two releases.
Nothing here does I/O; every function takes QEMU's replies as plain data. The
vocabulary (statuses, outcomes, verbs) is in ``vocabulary``; wait verdicts in
``verdicts``.
"""

from __future__ import annotations

import typing as t

from .closing import target_state
from .shapes import job_record, progress
from .vocabulary import ABSENT, DETAIL_KEPT, OWN_DAEMON_TYPES, STATUSES, outcome

Record = dict[str, t.Any]


def record_from_qmp(job: Record, block_job: Record | None) -> Record:
    """One normalised record from a ``query-jobs`` entry and its ``query-block-jobs`` twin.

    ``block_job`` is None for jobs that are not block jobs (e.g. blockdev-create).
    """
    status = job['status']
    error = job.get('error')
    bj = block_job or {}
    current = job.get('current-progress')
    total = job.get('total-progress')
    record = job_record(
        job['id'], job['type'], status, raw_status=status, outcome=outcome(status, error),
        error=error, progress_=progress(current, total), speed=bj.get('speed'),
        ready=status in ('ready', 'standby'), paused=status in ('paused', 'standby'),
        auto_finalize=bj.get('auto-finalize'), auto_dismiss=bj.get('auto-dismiss'),
        busy=bj.get('busy'), io_status=bj.get('io-status'))
    if 'actively-synced' in bj:  # a mirror, on QEMU 8.2 and later
        record['actively_synced'] = bj['actively-synced']
    return record


def records_from_qmp(jobs: list[Record], block_jobs: list[Record]) -> list[Record]:
    """Records for every job in a ``query-jobs`` reply, joined with ``query-block-jobs``."""
    by_id = {bj['device']: bj for bj in block_jobs}
    return [record_from_qmp(job, by_id.get(job['id'])) for job in jobs]


def outcome_from_event(event: Record) -> Record | None:
    """The outcome an event reports for a block job, or None.

    ``BLOCK_JOB_COMPLETED`` (with ``error`` when it failed) and
    ``BLOCK_JOB_CANCELLED`` carry an outcome that a job dismissed by QEMU
    itself (``auto-dismiss``) would otherwise take with it.
    """
    kind = event.get('event')
    if kind not in ('BLOCK_JOB_COMPLETED', 'BLOCK_JOB_CANCELLED'):
        return None
    data = event.get('data') or {}
    if kind == 'BLOCK_JOB_CANCELLED':
        result = 'canceled'
    else:
        result = 'failed' if data.get('error') else 'succeeded'
    return {'name': data.get('device'), 'status': 'concluded', 'outcome': result,
            'error': data.get('error'), 'speed': data.get('speed'),
            'progress': progress(data.get('offset'), data.get('len'))}


#: QEMU events about the VM's one migration (they name no job).
MIGRATION_EVENTS = frozenset({'MIGRATION', 'MIGRATION_PASS', 'STOP', 'RESUME'})


def concerns(event: Record, watched: t.Collection[str], migration: bool) -> bool:
    """Whether ``event`` may change what a wait for the jobs ``watched`` sees.

    Job events name their job (``id``, or ``device`` for block-job events); migration
    events name none and count when a migration is watched. libvirt's domain events
    (a backup or migration is the domain job) always count.
    """
    kind = str(event.get('event') or '')
    data = event.get('data') or {}
    if data.get('id') in watched or data.get('device') in watched:
        return True
    if kind in MIGRATION_EVENTS:
        return migration
    return kind.startswith('LIBVIRT_')


def record_from_ledger(entry: Record) -> Record:
    """The record of a job QEMU no longer has, from its ledger entry.

    A dismissed job reports ``concluded`` with its remembered outcome; a job
    that vanished without being dismissed by the collection is ``absent`` and
    marked ``lost`` unless its outcome was seen before it vanished.
    """
    last = dict(entry.get('last') or {})
    params = entry.get('params', {})
    record = job_record(
        entry['name'], entry['type'], progress_=last.get('progress') or progress(),
        speed=last.get('speed'), auto_finalize=params.get('auto_finalize'),
        auto_dismiss=params.get('auto_dismiss'), dismissed=entry.get('state') == 'dismissed',
        live=False)
    record.update({key: last[key] for key in DETAIL_KEPT if key in last})
    if last.get('outcome'):
        record.update(status='concluded', raw_status=last.get('raw_status') or 'concluded',
                      outcome=last['outcome'], error=last.get('error'))
    record['lost'] = not record['dismissed'] and record['outcome'] is None
    return record


def attach_detail(record: Record, entry: Record | None) -> Record:
    """Add the ledger's parameters (device, target, ...) to a live record."""
    params = (entry or {}).get('params') or {}
    if params.get('type') in OWN_DAEMON_TYPES:  # QEMU calls it a backup job
        record['type'] = params['type']
    for key in ('source', 'backup', 'device', 'target', 'target_format', 'base', 'top', 'sync',
                'bitmap', 'dest_uri', 'dest_socket'):
        if params.get(key) is not None:
            record[key] = params[key]
    if (entry or {}).get('complete_on_ready') and record['status'] in ('ready', 'standby'):
        # READY is not a step of a restore: its copy goes on until it is completed.
        record.update(status='paused' if record['paused'] else 'running', ready=False)
    if (entry or {}).get('copy_mode'):  # given at the start, or changed through the job module
        record['copy_mode'] = entry['copy_mode']  # type: ignore[index]
    for key, shown in (('dest_uri', 'dest_uri'), ('applied', 'actions_taken')):
        if (entry or {}).get(key):
            record[shown] = entry[key]  # type: ignore[index]
    if entry and entry.get('cancel_requested') and record['outcome'] == 'succeeded':
        record['outcome'] = 'canceled'
    if entry and entry.get('verdict') and record['outcome'] in ('canceled', 'succeeded'):
        record.update(verdict_outcome(entry['verdict']))
    state = target_state(entry)
    if state is not None:
        record['target_state'] = state
    return record


#: A pull backup's error when its reader did not acknowledge the read.
VERDICT_ERRORS = {'failed': 'the reader reported that the read failed',
                  'canceled': None, 'succeeded': None}


def verdict_outcome(verdict: str) -> Record:
    """The outcome and error of a pull backup ended with its reader's ``verdict``
    (its members, canceled to end it, concluded as canceled)."""
    return {'outcome': verdict, 'error': VERDICT_ERRORS[verdict]}


def group_record(name: str, members: list[Record], entry: Record) -> Record:
    """One record for a group of QEMU jobs started together (a multi-disk backup).

    ``members`` are the live records of the group's jobs QEMU still has; the
    entry's ``disks`` (each with ``member``, ``device`` and ``target``) name them.
    The group is as far along as its least advanced member; it failed if any
    member failed (with that member's error, prefixed by its device), else it
    was canceled if any member was, else it succeeded.
    """
    live = {m['name']: m for m in members}
    listed = []
    for disk in entry.get('disks') or []:
        member = live.get(disk.get('member'))
        listed.append({
            'name': disk.get('member'), 'device': disk.get('device'),
            'target': disk.get('target'),
            'status': member['status'] if member else ABSENT,
            'outcome': member['outcome'] if member else None,
            'error': member['error'] if member else None,
            'progress': member['progress'] if member else None,
        })
    statuses = [m['status'] for m in members]
    status = min(statuses, key=STATUSES.index) if statuses else ABSENT
    result, error = None, None
    if status == 'concluded':
        failed = [m for m in listed if m['outcome'] == 'failed']
        if failed:
            result = 'failed'
            error = '; '.join(f"{m['device']}: {m['error']}" for m in failed)
        elif any(m['outcome'] == 'canceled' for m in listed):
            result = 'canceled'
        else:
            result = 'succeeded'
    current = sum((m['progress'] or {}).get('current') or 0 for m in members)
    total = sum((m['progress'] or {}).get('total') or 0 for m in members)
    first = members[0] if members else {}
    record = job_record(
        name, entry.get('type'), status, raw_status=status, outcome=result, error=error,
        progress_=progress(current, total), speed=first.get('speed'),
        paused=any(m['paused'] for m in members), auto_finalize=first.get('auto_finalize'),
        auto_dismiss=first.get('auto_dismiss'), busy=any(m.get('busy') for m in members),
        io_status=next((m['io_status'] for m in members if m.get('io_status') not in
                        (None, 'ok')), first.get('io_status')),
        live=bool(members))
    record['members'] = listed
    return record
