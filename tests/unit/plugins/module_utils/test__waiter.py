# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_waiter.py: a fake clock whose sleep advances it."""

from __future__ import annotations

import contextlib
import time
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _waiter
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    JobNotFound,
    MonitorBusy,
    TransportError,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._waiter import (
    Check,
    Waiter,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    FakeClock,
)


class Monitor:
    """Scripted monitor: ``check`` is done from ``done_at`` (fake time) or query number on.

    ``block`` waits the whole time it is given unless an event is due earlier
    (``events``: fake times at which an event wakes the waiter).
    """

    def __init__(self, clock: FakeClock, done_at: float | None = None,
                 done_after: int | None = None, events: t.Sequence[float] = (),
                 busy: t.Sequence[bool] = (), query_cost: float = 0.0) -> None:
        self.clock = clock
        self.done_at = done_at
        self.done_after = done_after
        self.events = sorted(events)
        self.busy = list(busy)
        self.query_cost = query_cost
        self.opened = 0
        self.closed = 0
        self.queries: list[float] = []
        self.blocks: list[tuple[float, float]] = []
        self.held: list[float] = []
        self.log: list[str] = []
        self.opened_at = 0.0

    @contextlib.contextmanager
    def session(self) -> t.Iterator[str]:
        if self.busy and self.busy.pop(0):
            self.clock.advance(5.0)
            self.log.append('busy')
            raise MonitorBusy('monitor busy')
        self.opened += 1
        self.opened_at = self.clock()
        self.log.append('open')
        try:
            yield f'conn{self.opened}'
        finally:
            self.closed += 1
            self.held.append(self.clock() - self.opened_at)
            self.log.append('close')

    def check(self, conn: str) -> Check[tuple[str, int]]:
        assert conn == f'conn{self.opened}' and self.opened > self.closed
        self.clock.advance(self.query_cost)
        self.queries.append(self.clock())
        self.log.append('check')
        count = len(self.queries)
        done = ((self.done_at is not None and self.clock() >= self.done_at)
                or (self.done_after is not None and count >= self.done_after))
        return Check(done, (conn, count))

    def block(self, conn: str, seconds: float) -> None:
        assert seconds > 0
        self.blocks.append((self.clock(), seconds))
        self.log.append('block')
        due = [e for e in self.events if self.clock() < e <= self.clock() + seconds]
        if due:
            self.events.remove(due[0])
            self.clock.now = due[0]
        else:
            self.clock.advance(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


def waiter(clock: FakeClock, hold: float = 0.9, gap: float = 0.02) -> Waiter:
    return Waiter(clock=clock, sleep=clock.sleep, hold=hold, gap=gap)


def run(clock: FakeClock, monitor: Monitor, timeout: float,
        **options: float) -> _waiter.WaitResult[tuple[str, int]]:
    return waiter(clock, **options).wait(monitor.session, monitor.check, monitor.block, timeout)


def test_defaults() -> None:
    default = Waiter()
    assert default.clock is time.monotonic
    # The real sleep by default (checked by name: unit tests never call it).
    assert (default.sleep.__module__, default.sleep.__name__) == ('time', 'sleep')
    assert (default.hold, default.gap) == (_waiter.HOLD_SECONDS, _waiter.GAP_SECONDS)
    assert _waiter.HOLD_SECONDS < 1.0, 'the monitor is let go at least once a second'
    # A task queued behind a wait must return within a second, its own run included.
    assert _waiter.HOLD_SECONDS + _waiter.GAP_SECONDS <= 0.55


def test_done_at_once_queries_once(clock: FakeClock) -> None:
    monitor = Monitor(clock, done_after=1)
    result = run(clock, monitor, timeout=300)
    assert result == _waiter.WaitResult(('conn1', 1), True, 0.0, 1)
    assert monitor.log == ['open', 'check', 'close']
    assert clock.slept == []


@pytest.mark.parametrize('timeout', [0, 0.0, -5])
def test_timeout_zero_means_one_query(clock: FakeClock, timeout: float) -> None:
    monitor = Monitor(clock)
    result = run(clock, monitor, timeout=timeout)
    assert (result.done, result.queries, result.elapsed) == (False, 1, 0.0)
    assert monitor.log == ['open', 'check', 'close']


def test_timeout_zero_reports_done(clock: FakeClock) -> None:
    assert run(clock, Monitor(clock, done_after=1), timeout=0).done is True


def test_an_event_wakes_the_waiter_and_a_query_decides(clock: FakeClock) -> None:
    # Events at 100.3 and 100.5; only the query after the second finds the job done.
    monitor = Monitor(clock, done_at=100.5, events=[100.3, 100.5])
    result = run(clock, monitor, timeout=300)
    assert result.done is True
    assert monitor.queries == [100.0, 100.3, 100.5]
    assert result.elapsed == pytest.approx(0.5)
    assert result.value == ('conn1', 3)
    assert monitor.opened == 1 and clock.slept == []


def test_the_monitor_is_let_go_every_hold_seconds(clock: FakeClock) -> None:
    monitor = Monitor(clock, done_at=103.0)
    result = run(clock, monitor, timeout=300, hold=0.9, gap=0.02)
    assert result.done is True
    # Each stretch: open, query, block for the rest of the hold, query, close, sleep(gap).
    assert monitor.opened == monitor.closed == 4
    assert clock.slept == [0.02] * 3
    for start, seconds in monitor.blocks:
        assert seconds == pytest.approx(0.9)
        assert monitor.queries.count(start) == 1
    assert monitor.log[:6] == ['open', 'check', 'block', 'check', 'close', 'open']
    assert result.elapsed == pytest.approx(3 * 0.92 + 0.9)


def test_no_session_is_held_longer_than_hold(clock: FakeClock) -> None:
    # Events every 0.13 s keep waking the waiter; it still lets go after 0.5 s.
    monitor = Monitor(clock, done_at=110.0, events=[100 + 0.13 * k for k in range(1, 100)])
    result = run(clock, monitor, timeout=300, hold=0.5)
    assert result.done is True
    assert monitor.opened > 10
    assert max(monitor.held) <= 0.5 + 1e-9
    assert len(monitor.queries) > 2 * monitor.opened


def test_timeout_returns_the_last_value_not_done(clock: FakeClock) -> None:
    monitor = Monitor(clock)
    result = run(clock, monitor, timeout=2.0)
    assert result.done is False
    assert result.value == (f'conn{monitor.opened}', len(monitor.queries))
    assert result.elapsed >= 2.0
    # The last query is made at (not before) the deadline.
    assert monitor.queries[-1] == pytest.approx(102.0)
    assert monitor.opened == monitor.closed


def test_blocking_never_goes_past_the_deadline(clock: FakeClock) -> None:
    monitor = Monitor(clock)
    run(clock, monitor, timeout=1.25, hold=0.9)
    for start, seconds in monitor.blocks:
        assert start + seconds <= 101.25 + 1e-9
    assert monitor.queries[-1] == pytest.approx(101.25)


def test_slow_queries_still_end_at_the_deadline(clock: FakeClock) -> None:
    monitor = Monitor(clock, query_cost=0.4)
    result = run(clock, monitor, timeout=1.0, hold=0.9)
    assert result.done is False
    assert 1.0 <= result.elapsed < 1.5


def test_a_busy_monitor_is_retried(clock: FakeClock) -> None:
    monitor = Monitor(clock, done_after=1, busy=[True, True])
    result = run(clock, monitor, timeout=300)
    assert result.done is True
    assert monitor.log == ['busy', 'busy', 'open', 'check', 'close']
    assert clock.slept == [0.02, 0.02]
    assert result.elapsed == pytest.approx(10.04)


def test_a_busy_monitor_before_any_query_raises_at_the_deadline(clock: FakeClock) -> None:
    monitor = Monitor(clock, done_after=1, busy=[True] * 10)
    with pytest.raises(MonitorBusy):
        run(clock, monitor, timeout=12.0)
    assert monitor.opened == 0
    assert monitor.log == ['busy'] * 3


def test_a_busy_monitor_with_timeout_zero_raises(clock: FakeClock) -> None:
    with pytest.raises(MonitorBusy):
        run(clock, Monitor(clock, busy=[True]), timeout=0)


def test_a_busy_monitor_after_a_query_returns_the_last_value_at_the_deadline(
        clock: FakeClock) -> None:
    monitor = Monitor(clock, busy=[False] + [True] * 10)
    result = run(clock, monitor, timeout=8.0, hold=0.9)
    assert result.done is False
    assert result.value == ('conn1', 2)
    assert result.queries == 2
    assert result.elapsed >= 8.0


def test_errors_from_check_propagate_and_close_the_session(clock: FakeClock) -> None:
    monitor = Monitor(clock)

    def check(conn: str) -> Check[None]:
        raise JobNotFound("job 'x' not found", 'x')

    with pytest.raises(JobNotFound):
        waiter(clock).wait(monitor.session, check, monitor.block, 10)
    assert monitor.opened == monitor.closed == 1


def test_transport_errors_are_not_retried(clock: FakeClock) -> None:
    class Unreachable:
        def __enter__(self) -> str:
            raise TransportError('no QMP socket at /nowhere')

        def __exit__(self, *exc: object) -> None:
            return None

    with pytest.raises(TransportError):
        waiter(clock).wait(Unreachable, lambda conn: Check(True, None), lambda conn, s: None, 10)
    assert clock.slept == []


def test_check_and_wait_result_are_plain_dataclasses() -> None:
    assert Check(True, 1) == Check(True, 1)
    assert _waiter.WaitResult('v', False, 1.5, 3).queries == 3


def test_a_session_handed_in_serves_the_first_stretch(clock: FakeClock) -> None:
    # The start hands over its open session, so no event since the start is missed.
    monitor = Monitor(clock, done_at=101.5)
    monitor.opened = 1

    @contextlib.contextmanager
    def handed_over() -> t.Iterator[str]:
        yield 'conn1'
        monitor.log.append('close handed over')

    result = waiter(clock).wait(monitor.session, monitor.check, monitor.block, 300,
                                first=handed_over())
    assert result.done is True
    assert monitor.queries[0] == 100.0
    # The handed-in session serves the first stretch and is closed before the next opens.
    assert monitor.log[:3] == ['check', 'block', 'check']
    assert monitor.log.index('close handed over') < monitor.log.index('open')
    assert monitor.log.count('open') == monitor.log.count('close') == 1
    assert clock.slept == [0.02]


def test_until_returns_the_first_value_and_gives_poll_the_time_left() -> None:
    clock = FakeClock()
    waiter = Waiter(clock=clock, sleep=clock.sleep)
    lefts: list[float] = []

    def poll(left: float) -> str | None:
        lefts.append(left)
        clock.advance(0.5)  # as a wait for an event would
        return 'done' if len(lefts) == 3 else None

    assert waiter.until(poll, 10) == 'done'
    assert lefts == [10.0, 9.5, 9.0]


def test_until_looks_once_more_when_the_time_is_up() -> None:
    clock = FakeClock()
    waiter = Waiter(clock=clock, sleep=clock.sleep)
    lefts: list[float] = []

    def poll(left: float) -> str | None:
        lefts.append(left)
        clock.advance(min(left, 0.4))
        return None

    assert waiter.until(poll, 1) is None
    assert lefts == pytest.approx([1.0, 0.6, 0.2, 0.0])
