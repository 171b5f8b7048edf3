# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure job model: records, status vocabulary, verb legality, outcome.

This is a private module: its API may change between any two releases.
Nothing here does I/O; every function takes QEMU's replies as plain data.
"""

from __future__ import annotations

import re
import typing as t

from .._errors import InvalidArgument
from .closing import target_state

NAME_RE = re.compile(r'[A-Za-z][A-Za-z0-9._-]{0,127}')

#: QEMU's JobStatus words, in the order of a job's life.
STATUSES = ('created', 'running', 'paused', 'ready', 'standby', 'waiting',
            'pending', 'aborting', 'concluded')
ABSENT = 'absent'

#: A job's status: QEMU's JobStatus words, or ``absent``.
Status = t.Literal['created', 'running', 'paused', 'ready', 'standby', 'waiting', 'pending',
                   'aborting', 'concluded', 'absent']
#: How a concluded job ended.
Outcome = t.Literal['succeeded', 'failed', 'canceled']
#: A wait's verdict on one record: the target is reached, may still be, or never will be.
Verdict = t.Literal['reached', 'waiting', 'never']
ACTIVE = frozenset(STATUSES) - {'concluded'}

#: QEMU's job verb table (job.c, ``JobVerbTable``): verb -> statuses accepting it.
VERBS: dict[str, frozenset[str]] = {
    'cancel': frozenset({'created', 'running', 'paused', 'ready', 'standby',
                         'waiting', 'pending'}),
    'pause': frozenset({'created', 'running', 'paused', 'ready', 'standby'}),
    'resume': frozenset({'created', 'running', 'paused', 'ready', 'standby'}),
    'set-speed': frozenset({'created', 'running', 'paused', 'ready', 'standby'}),
    'complete': frozenset({'ready', 'standby'}),
    'finalize': frozenset({'pending'}),
    'dismiss': frozenset({'concluded'}),
}

#: Verbs a migration accepts (migrate_cancel, migrate-set-parameters); the ledger dismisses it.
MIGRATION_VERBS: dict[str, frozenset[str]] = dict.fromkeys(VERBS, frozenset()) | {
    'cancel': frozenset({'running', 'paused'}),
    'set-speed': frozenset({'running', 'paused'}),
    'dismiss': frozenset({'concluded'}),
}

#: Type-specific record keys the ledger keeps beside status, outcome and progress.
DETAIL_KEPT = ('members', 'downtime', 'expected_downtime', 'setup_time', 'total_time',
               'passes', 'transferred', 'postcopy', 'dirty_page_rate')

#: Job types that reach READY and then wait for ``complete`` (or cancel).
READY_TYPES = frozenset({'mirror', 'commit'})

#: QEMU's text for a job that was cancelled (strerror(ECANCELED)).
CANCELED_ERRORS = ('Operation canceled', 'Operation cancelled')

WAIT_TARGETS = ('ready', 'pending', 'concluded', 'absent')

Record = dict[str, t.Any]


def validate_name(name: str) -> str:
    """Return ``name`` if it follows QEMU's id rules.

    :raise InvalidArgument: it does not.
    """
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f"invalid job name {name!r}: use 1-128 characters, a letter first, then letters, "
            "digits, '.', '_' or '-'")
    return name


def _verbs(job_type: str | None) -> dict[str, frozenset[str]]:
    return MIGRATION_VERBS if job_type == 'migration' else VERBS


def allowed_verbs(status: str, job_type: str | None = None) -> list[str]:
    """The verbs QEMU accepts in ``status`` (for a job of ``job_type``), in table order."""
    return [verb for verb, states in _verbs(job_type).items() if status in states]


def allowed_text(status: str, job_type: str | None = None) -> str:
    """The verbs QEMU accepts in ``status`` as text for messages."""
    return ', '.join(allowed_verbs(status, job_type)) or 'none'


def verb_allowed(verb: str, status: str, job_type: str | None = None) -> bool:
    """Whether QEMU accepts ``verb`` for a job of ``job_type`` in ``status``."""
    return status in _verbs(job_type)[verb]


def percent(current: int | None, total: int | None) -> float | None:
    """Progress as a percentage with one decimal, or None when unknown."""
    if current is None or not total:
        return None
    return round(min(100.0, 100.0 * current / total), 1)


def outcome(status: str, error: str | None, cancel_requested: bool = False) -> Outcome | None:
    """The outcome of a job: None while it runs, else succeeded/failed/canceled."""
    if status != 'concluded':
        return None
    if error is None:
        return 'canceled' if cancel_requested else 'succeeded'
    if error in CANCELED_ERRORS:
        return 'canceled'
    return 'failed'


def record_from_qmp(job: Record, block_job: Record | None) -> Record:
    """One normalised record from a ``query-jobs`` entry and its ``query-block-jobs`` twin.

    ``block_job`` is None for jobs that are not block jobs (e.g. blockdev-create).
    """
    status = job['status']
    error = job.get('error')
    bj = block_job or {}
    current = job.get('current-progress')
    total = job.get('total-progress')
    return {
        'name': job['id'],
        'type': job['type'],
        'status': status,
        'raw_status': status,
        'outcome': outcome(status, error),
        'error': error,
        'progress': {'current': current, 'total': total, 'percent': percent(current, total)},
        'speed': bj.get('speed'),
        'ready': status in ('ready', 'standby'),
        'paused': status in ('paused', 'standby'),
        'auto_finalize': bj.get('auto-finalize'),
        'auto_dismiss': bj.get('auto-dismiss'),
        'busy': bj.get('busy'),
        'io_status': bj.get('io-status'),
        'dismissed': False,
        'live': True,
    }


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
            'progress': {'current': data.get('offset'), 'total': data.get('len'),
                         'percent': percent(data.get('offset'), data.get('len'))}}


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
    record = {
        'name': entry['name'],
        'type': entry['type'],
        'status': ABSENT,
        'raw_status': None,
        'outcome': None,
        'error': None,
        'progress': last.get('progress') or {'current': None, 'total': None, 'percent': None},
        'speed': last.get('speed'),
        'ready': False,
        'paused': False,
        'auto_finalize': entry.get('params', {}).get('auto_finalize'),
        'auto_dismiss': entry.get('params', {}).get('auto_dismiss'),
        'busy': False,
        'io_status': None,
        'dismissed': entry.get('state') == 'dismissed',
        'live': False,
    }
    record.update({key: last[key] for key in DETAIL_KEPT if key in last})
    if last.get('outcome'):
        record.update(status='concluded', raw_status=last.get('raw_status') or 'concluded',
                      outcome=last['outcome'], error=last.get('error'))
    record['lost'] = not record['dismissed'] and record['outcome'] is None
    return record


def attach_detail(record: Record, entry: Record | None) -> Record:
    """Add the ledger's parameters (device, target, ...) to a live record."""
    params = (entry or {}).get('params') or {}
    for key in ('device', 'target', 'base', 'top', 'sync', 'bitmap', 'dest_uri', 'dest_socket'):
        if params.get(key) is not None:
            record[key] = params[key]
    for key, shown in (('dest_uri', 'dest_uri'), ('applied', 'actions_taken')):
        if (entry or {}).get(key):
            record[shown] = entry[key]  # type: ignore[index]
    if entry and entry.get('cancel_requested') and record['outcome'] == 'succeeded':
        record['outcome'] = 'canceled'
    state = target_state(entry)
    if state is not None:
        record['target_state'] = state
    return record


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
    return {
        'name': name,
        'type': entry.get('type'),
        'status': status,
        'raw_status': status,
        'outcome': result,
        'error': error,
        'progress': {'current': current, 'total': total, 'percent': percent(current, total)},
        'speed': first.get('speed'),
        'ready': False,
        'paused': any(m['paused'] for m in members),
        'auto_finalize': first.get('auto_finalize'),
        'auto_dismiss': first.get('auto_dismiss'),
        'busy': any(m.get('busy') for m in members),
        'io_status': next((m['io_status'] for m in members if m.get('io_status') not in
                           (None, 'ok')), first.get('io_status')),
        'dismissed': False,
        'live': bool(members),
        'members': listed,
    }
