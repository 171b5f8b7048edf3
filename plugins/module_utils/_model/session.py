# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interface between the job client and what runs the jobs (QMP, libvirt).

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import typing as t

from .. import _overlay, _targets
from .._exports import TlsSource
from .chains import MarkKind

Record = dict[str, t.Any]
#: Persists start-time facts (attached nodes, created files) in the ledger.
Note = t.Callable[..., None]
#: Makes an instant restore's overlay file (given QEMU's uid and gid, or None), once the
#: backend knows it is to be attached (see ``Session.start_instant``).
#: Attaches an image to a libvirt domain: (job, disk target, path, format, dry) -> whether it
#: changed (with ``dry``: would change; a clash is refused either way).
Attach = t.Callable[[str, str, str, str, bool], bool]
MakeOverlay = t.Callable[['tuple[int, int] | None'], _overlay.Chain]


class Session(t.Protocol):
    """One open connection to a VM; short-lived, closed after each operation."""

    def know(self, entries: t.Sequence[Record]) -> None:
        """The ledger's entries as the client read them (plain data; the client alone
        reads and writes the ledger). A VM that keeps no job names (libvirt) maps its
        jobs, events and checkpoints onto these; a QMP VM only looks up which disk copies
        a migration's cancel ends."""

    def records(self) -> list[Record]:
        """Normalised records of every job the VM has now."""

    def ended(self) -> list[Record]:
        """Concluded records the VM will not report again (libvirt forgets a block job
        once it ended), produced since the last call: the observer keeps their outcome."""

    def adoption(self, name: str) -> Record | None:
        """The ledger entry to write for a job the VM runs under a generated name (started
        outside the collection) before it is steered, so that its outcome is kept like
        any named job's; None when ``name`` is no such job."""

    def backup_sources(self, name: str, devices: t.Sequence[str] | None) -> list[Record]:
        """The disks a backup of ``devices`` (every writable disk if None) copies, in order,
        each ``{'device', 'node', 'marks'}``: the node that holds it, and the change marks
        on it (dirty bitmaps, or checkpoints; see ``Backend.change_marks``) mapped to None
        or what makes the mark unusable. The client's backup planner reads them.

        :raise InvalidArgument: an unknown device.
        """

    def remove_marks(self, marks: dict[str, list[str]]) -> None:
        """Remove change marks: by node (as ``backup_sources`` names it), the dirty bitmaps or
        checkpoints to remove, newest first.

        :raise BackendError: the VM refused.
        """

    def start(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        """Start the job ``name`` as described by ``params``.

        ``note(**facts)`` must be called *before* each step that leaves
        something behind, so that a crash in between can be cleaned up.
        """

    def start_backup(self, name: str, params: dict[str, t.Any], plan: list[Record], note: Note,
                     before_reset: t.Callable[[], None]) -> None:
        """Start the multi-disk backup ``name``: one member per disk of ``plan`` (from the
        client's backup planner), all started together. ``before_reset`` is called just
        before the first change mark is cleared or replaced (a QMP full backup resets its
        bitmaps; a libvirt checkpoint is only ever added)."""

    def end_pull(self, entry: Record, verdict: str) -> None:
        """End the pull backup of ledger ``entry`` with its reader's ``verdict``
        (``succeeded``, ``failed`` or ``canceled``): its exports go, its change marks follow
        the verdict (only ``succeeded`` moves a chain on), its members end. What it attached
        is detached by :meth:`cleanup`, as for any job.

        :raise BackendError: the VM refused (the change marks are then as they were).
        """

    def start_instant(self, name: str, params: dict[str, t.Any], note: Note,
                      make: MakeOverlay) -> None:
        """Instant restore: attach the overlay ``params['target']`` (made by ``make`` first)
        as the new disk ``params['device']``, then start the stream job ``name`` that pulls
        the backup chain into it. A disk of that name already on the overlay is only
        streamed into."""

    def verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        """Apply a job verb: cancel, pause, resume, complete, finalize, dismiss, set-speed.

        ``cancel`` takes ``keep_copy=True`` for a READY job whose copy is to be kept.
        """

    def migration(self, entry: Record) -> Record | None:
        """The record of the VM's migration if the ledger ``entry`` started it, else None."""

    def migration_verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        """Apply a verb (cancel, set-speed) or a completion action (postcopy, pause)."""

    def cleanup(self, entry: Record, discard: bool = False) -> list[str]:
        """Detach what a start attached (per the ledger entry); return what was kept.

        With ``discard``, also remove the files the start created (the job never
        started, or it did not finish), unless a device keeps a node.
        """

    def wait_event(self, timeout: float) -> Record | None:
        """Block until the next event or ``timeout`` seconds; return it or None."""

    def events(self) -> list[Record]:
        """The events received so far, without waiting."""


class Backend(t.Protocol):
    """Opens sessions to one VM; ``scope`` names the VM in the ledger."""

    scope: str
    #: What the VM tracks a disk's changes with, for incremental backups: QEMU's
    #: dirty bitmaps, or libvirt's checkpoints (see ``_model/chains``).
    change_marks: MarkKind
    #: Where the VM's TCP NBD exports take their TLS certificates from (``_exports``).
    nbd_tls: TlsSource
    #: Checks, makes and formats files on the VM's host (runs ``qemu-img``).
    targets: _targets.Targets

    def session(self) -> t.ContextManager[Session]:
        """Open a session (context manager)."""

    def witness(self, entry: Record) -> Record | None:
        """How a migration ended (``outcome``, ``error``), asked elsewhere once the VM is gone."""

    def finish(self, entry: Record) -> bool:
        """Finish a succeeded migration (resume the guest at the destination)."""
