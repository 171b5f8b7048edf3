# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target images made through QEMU: the file made safely, then formatted by QEMU.

This is a private module: its API may change between any two releases.
Used by block job starts (``start``) and multi-disk backups (``backup``).
"""

from __future__ import annotations

import typing as t

from .. import _targets
from .._errors import BackendError, VmjobsError
from .._model.session import Note, Record
from .._waiter import Waiter
from . import nodes as _nodes
from .monitor import Monitor

#: How long an internal image-creation job may take before we give up.
CREATE_TIMEOUT = 60.0
#: Checks target paths and creates target files.
TARGETS = _targets.Targets()


def run_internal_job(mon: Monitor, waiter: Waiter, job_id: str, command: str,
                     arguments: dict[str, t.Any], timeout: float = CREATE_TIMEOUT) -> None:
    """Run a short job (image creation) to its end, dismiss it, raise on failure."""
    mon.execute(command, dict(arguments, **{'job-id': job_id}))

    def ended(left: float) -> tuple[Record | None] | None:
        job = {j['id']: j for j in mon.execute('query-jobs')}.get(job_id)
        if job is None or job['status'] == 'concluded':
            return (job,)
        if left > 0:
            mon.wait_event(min(left, 0.05))
        return None

    found = waiter.until(ended, timeout)
    if found is None:
        mon.execute('job-cancel', {'id': job_id})
        raise VmjobsError(f'{command} of {arguments} did not finish within {int(timeout)}s')
    job = found[0]
    if job is not None:
        mon.execute('job-dismiss', {'id': job_id})
        if job.get('error'):
            raise BackendError(command, 'GenericError', job['error'])


def make_file(mon: Monitor, name: str, path: str, mode: int | None, note: Note) -> None:
    """Create the empty target file ``path`` (noted as created just before) for QEMU.

    It gets ``mode`` (default 0600) before QEMU ever opens it, and belongs to QEMU's
    user if root makes it for another user.

    :raise InvalidArgument: it cannot be created; if something else made it meanwhile,
        the note is withdrawn, so that nothing removes a file that is not ours.
    """
    peer = getattr(mon, 'peer', None)
    try:
        TARGETS.create(name, path, mode, peer() if peer else None)
    except _targets.TargetRace:
        note(created_files=[])
        raise


def create_image(mon: Monitor, waiter: Waiter, name: str, path: str, fmt: str, size: int,
                 note: Note, backing: tuple[str, str] | None = None,
                 mode: int | None = None) -> None:
    """Create an image through QEMU and leave its file node attached.

    The file is made first (see :func:`make_file`); QEMU formats it.

    :param backing: (backing file name, backing format) to record in a qcow2 header.
    :param mode: the file's mode; default 0600.
    """
    fmt_node, file_node = _nodes.target_node_names(name)
    note(created_files=[path], attached=[file_node])
    make_file(mon, name, path, mode, note)
    run_internal_job(mon, waiter, file_node + 'c', 'blockdev-create', {'options': {
        'driver': 'file', 'filename': path, 'size': size if fmt == 'raw' else 0}})
    mon.execute('blockdev-add', {'driver': 'file', 'node-name': file_node, 'filename': path})
    if fmt == 'raw':
        return
    options: dict[str, t.Any] = {'driver': fmt, 'file': file_node, 'size': size}
    if backing and fmt == 'qcow2':
        options.update({'backing-file': backing[0], 'backing-fmt': backing[1]})
    run_internal_job(mon, waiter, fmt_node + 'c', 'blockdev-create', {'options': options})
