# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every wait of the collection: events wake the waiter, a query decides.

This is a private module: its API may change between any two releases.

The job client waits on jobs (:meth:`Waiter.wait`); the backends wait on short
steps — an internal image-creation job, libvirt settling an ended block job, a
libvirt migration getting under way — through :meth:`Waiter.until`.

The waiter opens a monitor session, queries, and blocks on events for at most
``hold`` seconds before it lets go of the monitor for ``gap`` seconds, so that
other clients of the one-client QMP socket get their turn.  Clock and sleep
are injected, so the logic is tested without sleeping.
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

from ._errors import MonitorBusy

S = t.TypeVar('S')
T = t.TypeVar('T')

#: Longest stretch the waiter holds the monitor.
HOLD_SECONDS = 0.5
#: Pause between two stretches, for queued clients to connect.
GAP_SECONDS = 0.02


@dataclasses.dataclass
class Check(t.Generic[T]):
    """What one query found: done or not, and the value to report."""

    done: bool
    value: T


@dataclasses.dataclass
class WaitResult(t.Generic[T]):
    """The outcome of a wait."""

    value: T
    done: bool
    elapsed: float
    queries: int


class Waiter:
    """Runs the wait loop.

    :param clock: monotonic clock in seconds.
    :param sleep: sleeps for the given seconds.
    :param hold: most seconds one monitor session is held.
    :param gap: seconds between two sessions.
    """

    def __init__(self, clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep,
                 hold: float = HOLD_SECONDS, gap: float = GAP_SECONDS) -> None:
        self.clock = clock
        self.sleep = sleep
        self.hold = hold
        self.gap = gap

    def wait(self, session: t.Callable[[], t.ContextManager[S]],
             check: t.Callable[[S], Check[T]],
             block: t.Callable[[S, float], object],
             timeout: float, first: t.ContextManager[S] | None = None) -> WaitResult[T]:
        """Query until ``check`` says done or ``timeout`` runs out.

        :param session: opens a monitor session (context manager).
        :param check: queries through the session.
        :param block: waits through the session for an event, at most the given seconds.
        :param timeout: seconds; 0 means one query only.
        :param first: an open session handed over for the first stretch (a context
            manager; leaving it closes the session, at the end of that stretch).
        :return: the last check's value, whether it was done, the elapsed time.
        :raise TransportError: the monitor went away (a busy monitor is retried).
        """
        start = self.clock()
        deadline = start + max(0.0, timeout)
        queries = 0
        last: Check[T] | None = None
        while True:
            opened = session() if first is None else first
            first = None
            try:
                with opened as conn:
                    stretch_end = min(self.clock() + self.hold, deadline)
                    while True:
                        last = check(conn)
                        queries += 1
                        now = self.clock()
                        if last.done or now >= deadline:
                            return WaitResult(last.value, last.done, now - start, queries)
                        if now >= stretch_end:
                            break
                        block(conn, stretch_end - now)
            except MonitorBusy:
                if last is not None and self.clock() >= deadline:
                    return WaitResult(last.value, False, self.clock() - start, queries)
                if last is None and self.clock() >= deadline:
                    raise
            self.sleep(self.gap)

    def until(self, poll: t.Callable[[float], T | None], timeout: float) -> T | None:
        """Call ``poll(left)`` until it returns a value or ``timeout`` seconds have passed.

        ``poll`` gets the seconds left and may block (for an event, a thread) for at most
        that long; None means "not yet". It is called at least once, and once more with
        ``left`` 0 when the time is up.
        """
        deadline = self.clock() + max(0.0, timeout)
        while True:
            left = max(0.0, deadline - self.clock())
            found = poll(left)
            if found is not None or left <= 0:
                return found
