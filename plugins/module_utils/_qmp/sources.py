# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a backup reads over QMP: the VM's disks, their nodes and their dirty bitmaps.

This is a private module: its API may change between any two releases.
Besides the two queries (:func:`block_graph`, :func:`backup_sources`), the helpers
are pure and take QEMU's replies as plain data.
"""

from __future__ import annotations

import typing as t

from .._model.session import Record
from . import nodes as _nodes
from .monitor import Monitor

Node = dict[str, t.Any]


def block_graph(mon: Monitor) -> dict[str, list[Node]]:
    """The VM's block graph: ``{'blocks': query-block, 'nodes': query-named-block-nodes}``.

    :raise BackendError: QEMU refused a query.
    """
    return {'blocks': mon.execute('query-block'),
            'nodes': mon.execute('query-named-block-nodes', {'flat': True})}


def vm_disks(blocks: list[Node]) -> list[str]:
    """Every writable disk of a VM, by qdev id (or drive id, or node name).

    Removable drives (CD-ROMs, floppies), empty drives and read-only media are left out.
    """
    disks = []
    for block in blocks:
        inserted = block.get('inserted')
        if not inserted or inserted.get('ro') or block.get('removable'):
            continue
        qdev = block.get('qdev') or ''
        if qdev.startswith('/machine/peripheral/'):
            disks.append(qdev.split('/')[3])
        else:
            disks.append(block.get('device') or inserted['node-name'])
    return disks


def bitmaps(nodes: list[Node], node: str) -> dict[str, Node]:
    """The named dirty bitmaps of ``node`` by name (``dirty-bitmaps`` of
    query-named-block-nodes; a running backup job's own bitmap has no name)."""
    return {b['name']: b for b in _nodes.node(nodes, node).get('dirty-bitmaps') or []
            if 'name' in b}


def marks(found: dict[str, Node]) -> dict[str, str | None]:
    """Each dirty bitmap by name, mapped to what makes it unusable for a backup, or None."""
    return {name: ('is inconsistent (QEMU stopped without saving it)'
                   if bitmap.get('inconsistent') else
                   'is disabled (it does not record writes)'
                   if not bitmap.get('recording', True) else None)
            for name, bitmap in found.items()}


def backup_sources(mon: Monitor, name: str, devices: t.Sequence[str] | None) -> list[Record]:
    """The disks ``devices`` (all writable disks if None) with their nodes and bitmaps.

    :return: ``[{'device', 'node', 'marks': {bitmap: None | problem}}]`` in order.
    :raise InvalidArgument: an unknown device.
    :raise BackendError: QEMU refused a query.
    """
    graph = block_graph(mon)
    blocks, nodes = graph['blocks'], graph['nodes']
    wanted = vm_disks(blocks) if devices is None else devices
    found = []
    for device in wanted:
        node = _nodes.resolve_device(device, blocks, nodes, name)
        found.append({'device': device, 'node': node, 'marks': marks(bitmaps(nodes, node))})
    return found


def reset_actions(node: str, names: list[str], found: dict[str, Node]) -> tuple[list[str], list[Record]]:
    """What makes ``names`` empty, persistent, recording bitmaps of ``node``.

    :return: (bitmaps to remove first, transaction actions): an existing bitmap
        that is persistent, consistent and recording is cleared; any other is
        removed and added anew, like a missing one.
    """
    remove, actions = [], []
    for name in names:
        bitmap = found.get(name)
        usable = (bitmap is not None and bitmap.get('persistent') and bitmap.get('recording')
                  and not bitmap.get('inconsistent'))
        if usable:
            actions.append({'type': 'block-dirty-bitmap-clear',
                            'data': {'node': node, 'name': name}})
            continue
        if bitmap is not None:
            remove.append(name)
        actions.append({'type': 'block-dirty-bitmap-add',
                        'data': {'node': node, 'name': name, 'persistent': True}})
    return remove, actions
