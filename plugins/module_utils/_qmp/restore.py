# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a whole backing chain in a job: a restore (into a new image) or a verify read.

This is a private module: its API may change between any two releases.

The chain is opened read-only from its top image (QEMU opens the backing files the
headers name). A ``restore`` copies it with ``blockdev-mirror sync=full`` into a
target the collection creates (``images.create_image``): nothing writes to the
source, so the mirror is complete when it reaches READY, and the observer then
completes it (``Observer.complete_copies``; the entry's ``complete_on_ready``). A
``verify`` reads the chain with ``blockdev-backup sync=full`` into a ``null-co``
node, so that every cluster of every image is read. Every node is noted in the
ledger entry before it is added, so that closing the job (``QmpSession.cleanup``)
detaches them all.
"""

from __future__ import annotations

import os
import stat
import typing as t

from .._errors import InvalidArgument
from .._model.session import Note
from .._waiter import Waiter
from . import nodes as _nodes
from .images import TARGETS, create_image
from .monitor import Monitor

#: Bytes a restore's mirror keeps in flight (QEMU's default is 16 MiB).
MIRROR_BUFFER = 32 * 1024 * 1024


def source_node(name: str) -> str:
    """The node name of the chain's top image in job ``name``'s daemon."""
    return _nodes.target_node_names(name)[0][:-1] + 's'


def _remove_existing(name: str, path: str) -> None:
    """Delete the regular file at ``path`` (``overwrite``); refuse anything else."""
    try:
        found = os.lstat(path)
        if not stat.S_ISREG(found.st_mode):
            raise InvalidArgument(f"job '{name}': target {path} exists and is not a regular "
                                  'file; it is left alone', name)
        os.unlink(path)
    except OSError as err:
        raise InvalidArgument(f"job '{name}': cannot replace target {path}: {err.strerror}",
                              name) from err


def start_chain_job(mon: Monitor, waiter: Waiter, name: str, params: dict[str, t.Any],
                    note: Note) -> None:
    """Open ``params['source']`` read-only and start job ``name`` reading all of it.

    :raise InvalidArgument: the target exists (without ``overwrite``), is a link or in
        an unsafe or missing directory.
    :raise BackendError: QEMU refused (cannot open the chain, ...), its text kept.
    """
    source = source_node(name)
    attached = [source]
    if params['type'] == 'verify':
        note(attached=list(attached))
    else:  # noted with the first write, not in one more
        note(attached=list(attached), complete_on_ready=True)
    mon.execute('blockdev-add', {
        'driver': params['source_format'], 'node-name': source, 'read-only': True,
        'file': {'driver': 'file', 'filename': params['source']}})
    fmt_node = _nodes.target_node_names(name)[0]
    if params['type'] == 'verify':
        attached.insert(0, fmt_node)
        note(attached=list(attached))
        mon.execute('blockdev-add', {'driver': 'null-co', 'node-name': fmt_node,
                                     'size': params['size'], 'read-zeroes': False})
        mon.execute('blockdev-backup', {'job-id': name, 'device': source, 'target': fmt_node,
                                        'sync': 'full', 'auto-finalize': True,
                                        'auto-dismiss': False})
        return
    target = _restore_target(mon, waiter, name, params, note, attached)
    # A mirror copies a chain faster than a backup job (larger requests, no
    # copy-before-write bookkeeping; see docs/performance.md, Restore).
    mon.execute('blockdev-mirror', {'job-id': name, 'device': source, 'target': target,
                                    'sync': 'full', 'buf-size': MIRROR_BUFFER,
                                    'auto-finalize': True, 'auto-dismiss': False})


def _restore_target(mon: Monitor, waiter: Waiter, name: str, params: dict[str, t.Any],
                    note: Note, attached: list[str]) -> str:
    """Create the restore's target image through QEMU and attach it; return its node."""
    checked = TARGETS.check(name, params['target'])
    if checked.exists and not params.get('overwrite'):
        raise InvalidArgument(f"job '{name}': target {params['target']} already exists; set "
                              'overwrite: true to replace it', name)
    if checked.exists:
        _remove_existing(name, checked.path)
    fmt = params['target_format']
    fmt_node, file_node = _nodes.target_node_names(name)

    def noted(**facts: t.Any) -> None:  # the source stays on the list of what to detach
        if 'attached' in facts:
            facts['attached'] = [*facts['attached'], *attached]
        note(**facts)

    create_image(mon, waiter, name, checked.path, fmt, params['size'], noted,
                 mode=params.get('target_mode'))
    if fmt == 'raw':
        return file_node
    noted(attached=[fmt_node, file_node])
    mon.execute('blockdev-add', {'driver': fmt, 'node-name': fmt_node, 'file': file_node,
                                 'backing': None})
    return fmt_node
