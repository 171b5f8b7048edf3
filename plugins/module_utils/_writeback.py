# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing a file back to disk while a copy fills it, instead of all at its closing flush.

This is a private module: its API may change between any two releases.

A restore's daemon writes its target through the page cache; the image is on disk only
once QEMU has flushed it (the mirror's last step, and the close). Left to itself the
kernel starts writing back only when a tenth or so of the memory is dirty, so a copy
of a few gigabytes ends with one long flush after the copy. While the module waits for
the copy, :class:`Writeback` asks the kernel every few milliseconds to start writing
back what is dirty in the file so far (``posix_fadvise(POSIX_FADV_DONTNEED)``: it starts
the write-back without waiting for it and drops the pages already written), so that the
disk writes run alongside the copy and the final flush finds little left to do. It
changes no data and no durability: QEMU's flush still decides when the image is on
disk. Where ``posix_fadvise`` is missing, or the file is not there yet, it does nothing.
"""

from __future__ import annotations

import os
import threading

#: Seconds between two requests to write back (the copy fills about 20 MB meanwhile).
PERIOD_SECONDS = 0.01


class Writeback:
    """While the ``with`` block runs, a thread keeps ``path``'s dirty pages on their way out.

    :param path: the file a copy is writing (it may not exist yet).
    :param period: seconds between two requests.
    """

    def __init__(self, path: str, period: float = PERIOD_SECONDS) -> None:
        self.path = path
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Writeback:
        if hasattr(os, 'posix_fadvise'):
            self._thread = threading.Thread(target=self._run, name='vmjobs-writeback',
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.nudge()

    def nudge(self) -> bool:
        """Ask once; whether the file was there to ask about.

        The file is opened anew each time, so a target that is created (or replaced)
        while the thread runs is the one asked about.
        """
        try:
            handle = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
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
