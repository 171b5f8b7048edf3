# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure rules for closing a concluded job's targets (what ``succeeded`` promises).

This is a private module: its API may change between any two releases.

A job the collection started may have attached target nodes (a mirror's or a
backup's image, a qcow2 being created) and created files.  Once the job has
concluded, the first task that sees it detaches those nodes (QEMU flushes and
closes the image), and removes the files of a job that did not finish, so that
no file can pass for a finished one.  ``target_state`` tells where that stands:

- ``open``: QEMU still has the target attached (the job runs, or nobody has
  waited on it since it concluded);
- ``closed``: detached, flushed and closed: a complete file any process can read;
- ``in_use``: a device uses the target now (a mirror that was pivoted to it);
- ``removed``: the job failed or was canceled and its unfinished file is gone.
"""

from __future__ import annotations

import contextlib
import os
import typing as t

Record = dict[str, t.Any]

TARGET_STATES = ('open', 'closed', 'in_use', 'removed')

#: Job types whose cancel while READY leaves a complete copy (QEMU ends them
#: without an error, as libvirt's abort without pivot does).
COPY_TYPES = frozenset({'mirror', 'commit'})


def has_targets(entry: Record | None) -> bool:
    """Whether the start of ``entry`` attached nodes or created files."""
    if not entry:
        return False
    return bool(entry.get('attached') or entry.get('created_file') or entry.get('created_files'))


def target_state(entry: Record | None) -> str | None:
    """The ``target_state`` of a job's record (None: the job has no target of ours)."""
    if not has_targets(entry):
        return None
    entry = t.cast(Record, entry)
    if entry.get('targets') in TARGET_STATES:
        return t.cast(str, entry['targets'])
    if entry.get('state') == 'dismissed':  # detached when it was dismissed
        return 'in_use' if entry.get('kept_nodes') else 'closed'
    return 'open'


def closing_due(record: Record, entry: Record | None) -> bool:
    """Whether the targets of a concluded job are still to be closed."""
    return (record.get('outcome') is not None and entry is not None
            and entry.get('state') == 'started' and target_state(entry) == 'open')


def completion_due(record: Record, entry: Record | None) -> bool:
    """Whether a copy the collection completes itself (a restore's mirror, whose source
    nothing writes to) has reached READY and is to be completed now."""
    return (bool((entry or {}).get('complete_on_ready')) and record.get('live', True)
            and record.get('raw_status') == 'ready'
            and not (entry or {}).get('cancel_requested'))


def finished(record: Record, entry: Record | None) -> bool:
    """Whether a concluded job's target is complete (so it is kept, not removed).

    A job that succeeded is (a pull backup's scratch overlays never are); so is a mirror or active commit canceled while READY
    (``keep_copy`` in its entry): it ends without an error and the copy is
    consistent as of the cancel, as with libvirt's abort without pivot.
    """
    if (entry or {}).get('pull'):
        return False  # a pull backup's fleecing overlays are scratch, whatever its outcome
    if record.get('outcome') == 'succeeded':
        return True
    return (record.get('outcome') == 'canceled' and record.get('error') is None
            and bool((entry or {}).get('keep_copy')))


def created_files(entry: Record) -> list[str]:
    """The files a start created, once each, in the order noted."""
    paths = [entry.get('created_file'), *(entry.get('created_files') or [])]
    return list(dict.fromkeys(p for p in paths if p))


def output_files(entry: Record | None) -> list[str]:
    """The files a job that runs is writing as its output: the files its start created,
    while its targets are open (a pull backup's fleecing overlays are scratch, not output)."""
    if not entry or entry.get('pull') or entry.get('state') not in ('starting', 'started') \
            or target_state(entry) != 'open':
        return []
    return created_files(entry)


def remove_created(entry: Record) -> None:
    """Delete the files a start created (see :func:`created_files`); gone ones are fine."""
    for path in created_files(entry):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def closed_state(kept: list[str], discard: bool) -> str:
    """The ``target_state`` after closing: nodes a device kept, or files removed."""
    if kept:
        return 'in_use'
    return 'removed' if discard else 'closed'


#: Job types dismissed from the VM by the first task that sees them concluded; the
#: ledger keeps their outcome. QEMU 7.2 crashes on ``query-named-block-nodes`` while a
#: stream that pulled a backing chain in is concluded and not dismissed.
DISMISSED_AT_CONCLUSION = frozenset({'stream'})


def dismiss_due(record: Record, entry: Record | None) -> bool:
    """Whether a concluded job is to be dismissed from the VM now, its outcome kept by
    the ledger (see :data:`DISMISSED_AT_CONCLUSION`): a live one the collection started
    and the user has not dismissed."""
    return (record.get('live') is True and record.get('outcome') is not None
            and record.get('type') in DISMISSED_AT_CONCLUSION
            and entry is not None and entry.get('state') == 'started')
