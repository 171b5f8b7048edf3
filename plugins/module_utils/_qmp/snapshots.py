# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Internal snapshots as QEMU jobs: ``snapshot-save``, ``snapshot-load``, ``snapshot-delete``.

This is a private module: its API may change between any two releases.

Each job takes the disks by node name; the saving and loading ones also the node
that holds the VM state. Only formats that hold internal snapshots (qcow2) can take
part: any other is refused before QEMU is asked.
"""

from __future__ import annotations

import typing as t

from .._errors import InvalidArgument
from .._model.session import Record
from .._model.vocabulary import check_snapshot_format
from . import nodes as _nodes
from . import sources as _qmp_sources
from .monitor import Monitor, commands


def start_snapshot(mon: Monitor, name: str, params: dict[str, t.Any]) -> None:
    """Start snapshot job ``name`` (``params['type']``) on the disks of ``params``.

    :raise InvalidArgument: QEMU has no such command, an unknown disk, a disk that
        cannot hold internal snapshots.
    :raise BackendError: QEMU refused.
    """
    kind = params['type']
    if kind not in commands(mon):
        raise InvalidArgument(f"job '{name}': this QEMU has no {kind} command", name)
    graph = _qmp_sources.block_graph(mon)
    blocks, nodes = graph['blocks'], graph['nodes']
    devices = params['devices'] or _qmp_sources.vm_disks(blocks)
    if not devices:
        raise InvalidArgument(f"job '{name}': the VM has no writable disks; list them in "
                              'devices', name)
    chosen = [(device, _nodes.resolve_device(device, blocks, nodes, name)) for device in devices]
    for device, node in chosen:
        check_snapshot_format(name, f"disk '{device}' (node {node})",
                              _nodes.node(nodes, node).get('drv'))
    args: Record = {'job-id': name, 'tag': params['tag'], 'devices': [n for _d, n in chosen]}
    if kind != 'snapshot-delete':
        vmstate = params.get('vmstate')
        args['vmstate'] = (_nodes.resolve_device(vmstate, blocks, nodes, name)
                           if vmstate else chosen[0][1])
        if vmstate and args['vmstate'] not in args['devices']:
            check_snapshot_format(name, f"disk '{vmstate}' (node {args['vmstate']})",
                                  _nodes.node(nodes, args['vmstate']).get('drv'))
    mon.execute(kind, args)
