# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Starting block jobs over QMP: target images, attachment, the job command.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import typing as t

from .. import _targets
from .._errors import InvalidArgument
from .._model.session import Note
from .._waiter import Waiter
from . import nodes as _nodes
from .images import TARGETS, create_image, make_file, run_internal_job
from .monitor import Monitor, commands


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
    if kind == 'amend':
        _start_amend(mon, name, params)
        return
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
            for key in ('granularity', 'buf_size', 'copy_mode'):
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


#: QEMU's amend command: unstable (``x-``) so far; the stable name is taken where QEMU has it.
AMEND_COMMANDS = ('blockdev-amend', 'x-blockdev-amend')


def _start_amend(mon: Monitor, name: str, params: dict[str, t.Any]) -> None:
    """Amend the format options of an attached image (e.g. a qcow2's LUKS key slots).

    :raise InvalidArgument: QEMU has no amend command, or no such node.
    """
    have = commands(mon)
    command = next((c for c in AMEND_COMMANDS if c in have), None)
    if command is None:
        raise InvalidArgument(f"job '{name}': this QEMU cannot amend an attached image "
                              '(it has no x-blockdev-amend)', name)
    nodes = mon.execute('query-named-block-nodes', {'flat': True})
    node = _nodes.resolve_device(params['device'], mon.execute('query-block'), nodes, name)
    options = dict(params['amend'])
    options.setdefault('driver', _nodes.node(nodes, node).get('drv'))
    mon.execute(command, {'job-id': name, 'node-name': node, 'options': options})
