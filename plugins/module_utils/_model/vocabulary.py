# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job vocabulary: names, statuses, outcomes, and which verb QEMU takes when.

This is a private module: its API may change between any two releases. Pure.
"""

from __future__ import annotations

import re
import typing as t

from .._errors import InvalidArgument

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

#: Statuses in which QEMU 8.2 and later accept ``block-job-change`` (JOB_VERB_CHANGE): those of
#: set-speed. Not in :data:`VERBS`, which is QEMU 7.2's table (7.2 has no such verb).
CHANGE_STATUSES = VERBS['set-speed']

#: Verbs a migration accepts (migrate_cancel, migrate-set-parameters); the ledger dismisses it.
MIGRATION_VERBS: dict[str, frozenset[str]] = dict.fromkeys(VERBS, frozenset()) | {
    'cancel': frozenset({'running', 'paused'}),
    'set-speed': frozenset({'running', 'paused'}),
    'dismiss': frozenset({'concluded'}),
}

#: Type-specific record keys the ledger keeps beside status, outcome and progress.
DETAIL_KEPT = ('members', 'downtime', 'expected_downtime', 'setup_time', 'total_time',
               'passes', 'transferred', 'postcopy', 'dirty_page_rate')

#: QEMU's internal snapshot jobs (VM state and the disks' internal snapshots), which the
#: ``snapshot`` module starts.
SNAPSHOT_TYPES = frozenset({'snapshot-load', 'snapshot-save', 'snapshot-delete'})
#: Jobs that run in a qemu-storage-daemon the collection starts for them alone (restore,
#: verify): their ledger entry outlives the daemon, as a migration's outlives its VM.
OWN_DAEMON_TYPES = frozenset({'restore', 'verify'})
#: Image formats that hold internal snapshots.
SNAPSHOT_FORMATS = ('qcow2',)

#: Job types that reach READY and then wait for ``complete`` (or cancel).
READY_TYPES = frozenset({'mirror', 'commit'})

#: QEMU's text for a job that was cancelled (strerror(ECANCELED)).
CANCELED_ERRORS = ('Operation canceled', 'Operation cancelled')

WAIT_TARGETS = ('ready', 'pending', 'concluded', 'absent')


def check_snapshot_format(job: str, disk: str, fmt: str | None) -> None:
    """``disk`` (as a message names it) must be of a format that holds internal snapshots.

    :raise InvalidArgument: it is not.
    """
    if fmt not in SNAPSHOT_FORMATS:
        raise InvalidArgument(f"job '{job}': {disk} is a {fmt} image, which cannot hold "
                              'internal snapshots; only qcow2 images can', job)


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
