# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shapes of a job record and of a ledger entry, and the factories that build them.

This is a private module: its API may change between any two releases. Pure.

Every module returns job records as JSON, and the ledger stores entries as JSON, so
both are dicts; :class:`JobRecord` and :class:`LedgerEntry` state which keys each has
and of what type. :func:`job_record` is the only place a record is built (from QMP,
events, the ledger, libvirt, a migration or a group), :func:`ledger_entry` the only
place a new entry is (a start, or a job adopted from outside the collection).
"""

from __future__ import annotations

import typing as t

from .vocabulary import ABSENT, percent

Record = dict[str, t.Any]


class Progress(t.TypedDict, total=False):
    """How far a job is: bytes done of bytes to do; migrations add rate and remaining."""

    current: int | None
    total: int | None
    percent: float | None
    rate: int | None
    remaining: int | None


class _Core(t.TypedDict):
    name: str
    type: str | None
    status: str
    raw_status: str | None
    outcome: str | None
    error: str | None
    progress: Progress
    speed: int | None
    ready: bool
    paused: bool
    auto_finalize: bool | None
    auto_dismiss: bool | None
    busy: bool | None
    io_status: str | None
    dismissed: bool
    live: bool


class JobRecord(_Core, total=False):
    """A job as every module reports it (see docs/job-model.md)."""

    lost: bool
    members: list[Record]
    libvirt_type: str
    device: str
    target: str
    base: str
    top: str
    sync: str
    bitmap: str
    dest_uri: str
    dest_socket: str
    actions_taken: list[str]
    target_state: str
    downtime: int | None
    expected_downtime: int | None
    setup_time: int | None
    total_time: int | None
    passes: int | None
    transferred: int | None
    postcopy: bool
    dirty_page_rate: int | None
    copy_mode: str
    actively_synced: bool
    storage: str
    phase: str
    disks: list[Record]
    disks_progress: Progress


def progress(current: int | None = None, total: int | None = None, **more: int | None) -> Progress:
    """A progress record; ``percent`` is worked out from ``current`` and ``total``."""
    found = Progress(current=current, total=total, percent=percent(current, total))
    found.update(t.cast(Progress, more))
    return found


def job_record(name: str, job_type: str | None, status: str = ABSENT, *,
               raw_status: str | None = None, outcome: str | None = None,
               error: str | None = None, progress_: Progress | None = None,
               speed: int | None = None, ready: bool = False, paused: bool = False,
               auto_finalize: bool | None = None, auto_dismiss: bool | None = None,
               busy: bool | None = False, io_status: str | None = None,
               dismissed: bool = False, live: bool = True) -> Record:
    """A job record with every key of :class:`JobRecord`'s core. Type-specific keys are
    added by the caller."""
    record = JobRecord(
        name=name, type=job_type, status=status, raw_status=raw_status,
        outcome=outcome, error=error, progress=progress_ or progress(), speed=speed,
        ready=ready, paused=paused, auto_finalize=auto_finalize, auto_dismiss=auto_dismiss,
        busy=busy, io_status=io_status, dismissed=dismissed, live=live)
    return t.cast(Record, record)


#: Every key a record may carry.
KEYS = JobRecord.__required_keys__ | JobRecord.__optional_keys__


class _EntryCore(t.TypedDict):
    name: str
    type: str | None
    state: str  # starting, started or dismissed


class LedgerEntry(_EntryCore, total=False):
    """What the ledger keeps of a job (see docs/ledger.md; ``schema`` is the layout's)."""

    params: Record
    started_at: float
    last: Record
    attached: list[str]
    created_files: list[str]
    targets: str
    kept_nodes: list[str]
    keep_copy: bool
    user_paused: bool
    cancel_requested: bool
    copy_mode: str
    active: bool
    # a restore's mirror: completed by the first task that sees it READY
    complete_on_ready: bool
    members: list[str]
    disks: list[Record]
    # verifications: each image of the chain, {path, ok, problem}
    images: list[Record]
    # pull backups: where they export (``socket``, ``dir``, ``server_started``), and the
    # reader's verdict, written before it is acted on
    pull: Record
    verdict: str
    # migrations
    prior: Record
    dest_uri: str
    source_running: bool
    persistent: bool
    applied: list[str]
    finished: bool
    nbd_server: Record
    # libvirt domains: how libvirt runs the job, and what its outcome is judged by
    libvirt_type: str
    disk: str | None
    chain: list[str]
    expect_source: str
    expect_chain: list[str]
    target_format: str
    transient_job: bool
    adopted: bool
    backup_disks: list[Record]
    checkpoint: str | None
    incremental: str | None
    # written by the ledger itself
    scope: str
    created: float
    updated: float
    schema: int


#: Every key an entry may carry.
ENTRY_KEYS = LedgerEntry.__required_keys__ | LedgerEntry.__optional_keys__
#: The keys only one backend writes, by backend: the ledger stores them in a sub-record
#: of that name (``_ledger/schema``). Every other key is common to both.
BACKEND_KEYS: dict[str, frozenset[str]] = {
    'qmp': frozenset({'attached', 'kept_nodes', 'members', 'prior', 'nbd_server',
                      'complete_on_ready'}),
    'libvirt': frozenset({'libvirt_type', 'disk', 'chain', 'expect_source', 'expect_chain',
                          'target_format', 'transient_job', 'adopted', 'backup_disks',
                          'checkpoint', 'incremental'}),
}


def ledger_entry(name: str, job_type: str | None, params: Record, started_at: float,
                 state: str = 'starting', **facts: t.Any) -> Record:
    """A new ledger entry: a job about to start (``starting``), or one adopted (``started``).

    :raise KeyError: a fact :class:`LedgerEntry` does not declare (a programming error).
    """
    unknown = set(facts) - ENTRY_KEYS
    if unknown:
        raise KeyError(f'not ledger entry keys: {sorted(unknown)}')
    entry = LedgerEntry(name=name, type=job_type, state=state, params=params,
                        started_at=started_at)
    entry.update(t.cast(LedgerEntry, facts))
    return t.cast(Record, entry)
