# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/plugin_utils/_progress.py (progress lines, pure)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.plugin_utils._progress import (
    Tracker,
    duration,
    size,
)

Record = dict[str, t.Any]
MIB = 1 << 20


def record(status: str, current: int | None, total: int | None = 64 * MIB,
           **extra: t.Any) -> Record:
    percent = None if current is None or not total else round(100.0 * current / total, 1)
    return {'name': 'b1', 'status': status, 'outcome': None, 'error': None,
            'progress': {'current': current, 'total': total, 'percent': percent}, **extra}


@pytest.mark.parametrize(('value', 'text'), [
    (None, '?'), (0, '0 B'), (1023, '1023 B'), (1024, '1.0 KiB'), (64 * MIB, '64.0 MiB'),
    (3 << 30, '3.0 GiB'), (5 << 40, '5.0 TiB'), (1 << 60, '1048576.0 TiB'),
])
def test_size(value: int | None, text: str) -> None:
    assert size(value) == text


@pytest.mark.parametrize(('seconds', 'text'), [
    (0, '0s'), (0.4, '0s'), (59.4, '59s'), (60, '1m00s'), (185, '3m05s'), (7800, '2h10m'),
])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_first_line_has_no_rate_then_rate_and_eta_from_progress() -> None:
    tracker = Tracker()
    assert tracker.lines([record('running', 16 * MIB)], 10.0) == [
        'b1: running 25.0% 16.0 MiB/64.0 MiB']
    assert tracker.lines([record('running', 32 * MIB)], 12.0) == [
        'b1: running 50.0% 32.0 MiB/64.0 MiB 8.0 MiB/s ETA 4s']


def test_status_changes_are_spelled_out() -> None:
    tracker = Tracker()
    tracker.lines([record('running', 0)], 0.0)
    assert tracker.lines([record('ready', 64 * MIB)], 1.0)[0].startswith('b1: running -> ready')


def test_an_outcome_ends_the_line() -> None:
    tracker = Tracker()
    tracker.lines([record('running', 0)], 0.0)
    done = record('concluded', 4 * MIB, outcome='failed', error='No space left on device')
    assert tracker.lines([done], 1.0) == [
        'b1: running -> concluded (failed: No space left on device)']


def test_a_reported_rate_and_remaining_win() -> None:
    migrating = record('running', 32 * MIB)
    migrating['progress'].update(rate=4 * MIB, remaining=8 * MIB)
    assert Tracker().lines([migrating], 0.0) == [
        'b1: running 50.0% 32.0 MiB/64.0 MiB 4.0 MiB/s ETA 2s']


def test_no_progress_no_numbers_and_no_negative_rate() -> None:
    tracker = Tracker()
    assert tracker.lines([record('created', None)], 0.0) == ['b1: created']
    tracker.lines([record('running', 32 * MIB)], 1.0)
    assert tracker.lines([record('running', 16 * MIB)], 2.0) == [
        'b1: running 25.0% 16.0 MiB/64.0 MiB']


def test_several_jobs_one_line_each() -> None:
    lines = Tracker().lines([record('running', 0), dict(record('paused', 0), name='m1')], 0.0)
    assert lines == ['b1: running 0.0% 0 B/64.0 MiB', 'm1: paused 0.0% 0 B/64.0 MiB']
