# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing files back to disk while a job fills them, instead of all at their closing flush.

This is a private module: its API may change between any two releases.

QEMU writes a job's new images (a restore's, a backup's, a copy's) through the page
cache; an image is on disk only once QEMU has flushed it (when the collection closes it,
and a mirror before it converges). Left to itself the kernel starts writing back only
when a tenth or so of the memory is dirty, so a job that writes a few gigabytes ends
with one long flush after the copy. While a task waits for such a job,
:class:`Writeback` asks the kernel every few milliseconds to start writing back what is
dirty in those files so far (``posix_fadvise(POSIX_FADV_DONTNEED)``: it starts the
write-back without waiting for it and drops the pages already written), so that the
disk writes run alongside the copy and the final flush finds little left to do. It
changes no data and no durability: QEMU's flush still decides when an image is on
disk. Where ``posix_fadvise`` is missing, or a file is not there (yet), it does nothing.
"""

from __future__ import annotations

import os
import threading
import typing as t

#: Seconds between two requests to write back (a copy fills about 20 MB meanwhile).
PERIOD_SECONDS = 0.01


class Writeback:
    """While the ``with`` block runs, a thread keeps the files' dirty pages on their way out.

    :param paths: the files jobs are writing (they may not exist yet); none: no thread.
    :param period: seconds between two requests.
    :param pause: waits up to the given seconds and says whether the block has ended
        (default: the block's end, as a :class:`threading.Event`'s ``wait``); injected by
        tests.
    """

    def __init__(self, paths: t.Sequence[str], period: float = PERIOD_SECONDS,
                 pause: t.Callable[[float], bool] | None = None) -> None:
        self.paths = list(paths)
        self.period = period
        self.ended = threading.Event()
        self.pause = pause or self.ended.wait
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Writeback:
        if self.paths and hasattr(os, 'posix_fadvise'):
            self._thread = threading.Thread(target=self.run, name='vmjobs-writeback',
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ended.set()
        if self._thread is not None:
            self._thread.join()

    def run(self) -> None:
        """The thread's loop: every ``period``, ask about each file, until the block ends."""
        while not self.pause(self.period):
            for path in self.paths:
                self.nudge(path)

    def nudge(self, path: str) -> bool:
        """Ask once about ``path``; whether it was there to ask about.

        The file is opened anew each time, so a target that is created (or replaced)
        while the thread runs is the one asked about.
        """
        try:
            handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                             | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            os.posix_fadvise(handle, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        finally:
            os.close(handle)
        return True
