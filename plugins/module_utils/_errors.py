# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exception tree of the collection.

This is a private module: its API may change between any two releases.

.. code-block:: text

    VmjobsError                 root; ``str(e)`` is the one-line user message
     +-- InvalidArgument        bad option values, caught before anything changes
     +-- JobNotFound            no job of that name (and no ledger record)
     +-- JobConflict            the name exists as a different job
     +-- JobStateError          a verb that can never apply in the job's status
     +-- JobFailed              the job concluded with an error
     +-- JobTimeout             a wait ran out; carries the last records seen
     +-- LedgerError            the ledger could not be read or written
     +-- BackendError           QEMU/libvirt refused a command (class + text kept)
     +-- TransportError         the monitor could not be reached or went away
          +-- MonitorBusy       another client holds the one-client QMP monitor
"""

from __future__ import annotations

import contextlib
import typing as t


class VmjobsError(Exception):
    """Root of every error the collection raises on purpose.

    :param message: the one-line message shown to the user.
    :param job: the job name the error is about, if any.
    :param records: the job records observed when it happened (the module edge
        reports them as ``job`` or ``jobs``).
    """

    #: Whether something was changed before the error (a job started, then its wait failed).
    changed = False

    def __init__(self, message: str, job: str | None = None,
                 records: list[dict[str, t.Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.job = job
        self.records = list(records or [])

    def __str__(self) -> str:
        return self.message

    def result(self) -> dict[str, t.Any]:
        """Extra keys a module adds to its failure result, besides the records."""
        return {}


class InvalidArgument(VmjobsError, ValueError):
    """An option value that can never work."""


class JobNotFound(VmjobsError):
    """No job of that name exists, neither in QEMU nor in the ledger."""


class JobConflict(VmjobsError):
    """The name is taken by a job of another type or other parameters."""


class JobStateError(VmjobsError):
    """A verb that cannot apply to the job in its current status, now or later."""

    def __init__(self, message: str, job: str | None = None,
                 record: dict[str, t.Any] | None = None) -> None:
        super().__init__(message, job, [record] if record else None)
        self.record = record


class JobFailed(VmjobsError):
    """A job concluded with an error; ``records`` holds what was observed."""


class JobTimeout(VmjobsError):
    """A wait ran out of time; ``records`` holds the last records seen."""

    def __init__(self, message: str, job: str | None = None,
                 records: list[dict[str, t.Any]] | None = None,
                 elapsed: float = 0.0) -> None:
        super().__init__(message, job, records)
        self.elapsed = elapsed

    def result(self) -> dict[str, t.Any]:
        return {'elapsed': round(self.elapsed, 3), 'timed_out': True}


class ChainDamaged(VmjobsError):
    """A verification found a problem in an image of a chain; ``images`` reports each."""

    def __init__(self, message: str, job: str | None = None,
                 images: list[dict[str, t.Any]] | None = None,
                 records: list[dict[str, t.Any]] | None = None) -> None:
        super().__init__(message, job, records)
        self.images = list(images or [])

    def result(self) -> dict[str, t.Any]:
        return {'images': self.images}


class LedgerError(VmjobsError):
    """The ledger directory or one of its records could not be used."""


class BackendError(VmjobsError):
    """QEMU (or libvirt) refused a command.

    :param command: the command that failed, e.g. ``blockdev-mirror``.
    :param error_class: QEMU's error class, e.g. ``GenericError``.
    :param desc: QEMU's own error text.
    """

    def __init__(self, command: str, error_class: str, desc: str,
                 job: str | None = None) -> None:
        self.command = command
        self.error_class = error_class
        self.desc = desc
        prefix = f"job '{job}': " if job else ''
        super().__init__(f'{prefix}{command} failed: {error_class}: {desc}', job)

    def for_job(self, job: str) -> BackendError:
        """The same error, with the message naming ``job``."""
        return BackendError(self.command, self.error_class, self.desc, job)


@contextlib.contextmanager
def naming(job: str) -> t.Iterator[None]:
    """Make a :class:`BackendError` raised inside name ``job`` in its message.

    The one place where QEMU's and libvirt's refusals learn which job they were about;
    an error that names a job already is left as it is.

    :raise BackendError: the error raised inside, naming ``job``.
    """
    try:
        yield
    except BackendError as err:
        if err.job is not None:
            raise
        raise err.for_job(job) from err


class TransportError(VmjobsError):
    """The monitor could not be reached, or the connection broke."""


class MonitorBusy(TransportError):
    """The QMP monitor accepted the connection but sent no greeting in time."""
