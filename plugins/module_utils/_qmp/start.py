# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Starting block jobs over QMP: target images, attachment, the job command.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import typing as t

from .. import _targets
from .._errors import BackendError, InvalidArgument, VmjobsError
from .._model.session import Note, Record
from .._waiter import Waiter
from . import backup as _qmp_backup
from . import nodes as _nodes
from .monitor import Monitor

#: How long an internal image-creation job may take before we give up.
CREATE_TIMEOUT = 60.0
#: Checks target paths and creates target files.
TARGETS = _targets.Targets()


def _common(name: str, params: dict[str, t.Any]) -> dict[str, t.Any]:
    args: dict[str, t.Any] = {'job-id': name,
                              'auto-finalize': params['auto_finalize'],
                              'auto-dismiss': params['auto_dismiss']}
    if params.get('speed'):
        args['speed'] = params['speed']
    return args


def _error_args(params: dict[str, t.Any], source_key: str | None) -> dict[str, t.Any]:
    policy = params.get('on_error')
    if not policy:
        return {}
    if source_key is None:
        return {'on-error': policy}
    return {source_key: policy, 'on-target-error': policy}


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


def prepare_target(mon: Monitor, waiter: Waiter, name: str, params: dict[str, t.Any],
                   source: str, nodes: list[dict[str, t.Any]], note: Note) -> str:
    """Create (or reuse) and attach the target of a mirror or backup; return its node.

    :raise InvalidArgument: the target is a link, in an unsafe directory, exists
        without ``reuse_target`` or is missing with it.
    """
    checked = TARGETS.check(name, params['target'])
    _targets.require_reuse(name, params['target'], checked, params['reuse_target'])
    exists = checked.exists
    entry = _nodes.node(nodes, source)
    fmt = params.get('target_format') or ('qcow2' if entry.get('drv') == 'qcow2' else 'raw')
    backing_node = backing = None
    if params.get('sync') == 'top':
        chain = _nodes.backing_chain(nodes, source)
        if len(chain) > 1:
            backing_node = chain[1]['node-name']
            backing = (chain[1]['file'], chain[1].get('drv', 'qcow2'))
    fmt_node, file_node = _nodes.target_node_names(name)
    path = checked.path
    if exists:
        note(attached=[file_node])
        mon.execute('blockdev-add', {'driver': 'file', 'node-name': file_node, 'filename': path})
    else:
        create_image(mon, waiter, name, path, fmt, int(entry['image']['virtual-size']), note, backing,
                     params.get('target_mode'))
    note(attached=[fmt_node, file_node])
    args: dict[str, t.Any] = {'driver': fmt, 'node-name': fmt_node, 'file': file_node}
    if fmt == 'qcow2':
        args['backing'] = backing_node
    mon.execute('blockdev-add', args)
    return fmt_node


def start_job(mon: Monitor, waiter: Waiter, name: str, params: dict[str, t.Any],
              note: Note) -> None:
    """Start block job ``name`` of ``params['type']``.

    :raise InvalidArgument: unknown device/base/top, target exists, ...
    :raise BackendError: QEMU refused a command.
    """
    kind = params['type']
    if kind == 'backup' and 'plan' in params:  # a multi-disk backup (the backup module)
        return _qmp_backup.start_group(mon, waiter, name, params, note)
    if kind == 'create':
        _start_create(mon, waiter, name, params, note)
        return
    nodes = mon.execute('query-named-block-nodes', {'flat': True})
    device = _nodes.resolve_device(params['device'], mon.execute('query-block'), nodes, name)
    args = _common(name, params)
    if kind == 'stream':
        args['device'] = device
        if params.get('base'):
            args['base-node'] = _nodes.resolve_in_chain(nodes, device, params['base'], name,
                                                        'base')
        args.update(_error_args(params, None))
        mon.execute('block-stream', args)
    elif kind == 'commit':
        args['device'] = device
        if params.get('top'):
            args['top-node'] = _nodes.resolve_in_chain(nodes, device, params['top'], name, 'top')
        if params.get('base'):
            args['base-node'] = _nodes.resolve_in_chain(nodes, device, params['base'], name,
                                                        'base')
        args.update(_error_args(params, None))
        note(active=args.get('top-node', device) == device)
        mon.execute('block-commit', args)
    else:
        target = prepare_target(mon, waiter, name, params, device, nodes, note)
        args.update({'device': device, 'target': target, 'sync': params.get('sync') or 'full'})
        args.update(_error_args(params, 'on-source-error'))
        if params.get('bitmap'):
            args['bitmap'] = params['bitmap']
        if kind == 'mirror':
            for key in ('granularity', 'buf_size'):
                if params.get(key):
                    args[key.replace('_', '-')] = params[key]
            mon.execute('blockdev-mirror', args)
        else:
            if params.get('bitmap_mode'):
                args['bitmap-mode'] = params['bitmap_mode']
            mon.execute('blockdev-backup', args)


def _start_create(mon: Monitor, waiter: Waiter, name: str, params: dict[str, t.Any],
                  note: Note) -> None:
    checked = TARGETS.check(name, params['target'])
    if checked.exists and not params['reuse_target']:
        raise InvalidArgument(f"job '{name}': target {params['target']} already exists; set "
                              "reuse_target: true to overwrite it", name)
    path = checked.path
    fmt = params.get('target_format') or 'qcow2'
    size = params['size']
    if not checked.exists:
        note(created_files=[path])
        make_file(mon, name, path, params.get('target_mode'), note)
    if fmt == 'raw':
        mon.execute('blockdev-create', {'job-id': name, 'options': {
            'driver': 'file', 'filename': path, 'size': size}})
        return
    file_node = _nodes.target_node_names(name)[1]
    note(attached=[file_node])
    run_internal_job(mon, waiter, file_node + 'c', 'blockdev-create',
                     {'options': {'driver': 'file', 'filename': path, 'size': 0}})
    mon.execute('blockdev-add', {'driver': 'file', 'node-name': file_node, 'filename': path})
    mon.execute('blockdev-create', {'job-id': name, 'options': {
        'driver': fmt, 'file': file_node, 'size': size}})
