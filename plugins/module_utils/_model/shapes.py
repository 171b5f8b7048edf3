# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shape of a job record, and the one factory that builds it.

This is a private module: its API may change between any two releases. Pure.

Every module returns job records as JSON, so they are dicts; :class:`JobRecord`
states which keys each one has and of what type, and :func:`job_record` is the only
place one is built (from QMP, events, the ledger, libvirt, a migration or a group).
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
