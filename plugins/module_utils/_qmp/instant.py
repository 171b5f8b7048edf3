# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instant restore over QMP: attach an overlay on a backup chain, then stream the chain in.

This is a private module: its API may change between any two releases.

The overlay (made by the caller's ``make``) is opened with ``blockdev-add``: QEMU opens
its backing chain from the overlay's header, read-only, as nodes of its own that go away
once the stream has pulled the chain in. A ``virtio-blk-pci`` device with the id the task
gives takes it, and the named ``block-stream`` job copies the whole chain into it; the
guest reads through the overlay from the first moment and writes into it.
"""

from __future__ import annotations

import typing as t

from .._errors import InvalidArgument
from .._model.session import MakeOverlay, Note
from .._waiter import Waiter
from . import nodes as _nodes
from .monitor import Monitor
from .start import _common, start_job


def existing_image(blocks: list[dict[str, t.Any]], nodes: list[dict[str, t.Any]],
                   disk: str) -> str | None:
    """The image file of the device (or node) ``disk``, or None when there is no such disk."""
    node = _nodes.inserted_nodes(blocks).get(disk)
    if node is None:
        node = disk if any(n['node-name'] == disk for n in nodes) else None
    if node is None:
        return None
    return t.cast('str | None', _nodes.node(nodes, node).get('file'))


def device_ids(members: list[dict[str, t.Any]]) -> set[str]:
    """The ids of the VM's devices, from ``qom-list`` of ``/machine/peripheral``."""
    return {m['name'] for m in members if str(m.get('type', '')).startswith('child<')}


def start_instant(mon: Monitor, waiter: Waiter, name: str, params: dict[str, t.Any],
                  note: Note, make: MakeOverlay) -> None:
    """Attach the overlay as device ``params['device']`` and start stream ``name`` into it.

    A device of that id already running on the overlay (a VM started on it) is streamed
    into as it is.

    A new disk is looked for among the VM's device ids and streamed into by its node name,
    without reading the block graph: QEMU 7.2 dies reading it (``query-named-block-nodes``)
    while a stream that pulled a chain in has concluded and waits to be dismissed. The
    collection dismisses its own streams when it sees them concluded (``Observer.retire``);
    this keeps a stream started outside it, or concluding right now, harmless too.

    :raise InvalidArgument: the device exists on another image.
    :raise BackendError: QEMU refused (no hot-pluggable bus, an unknown ``bus``, ...).
    """
    disk, target = params['device'], params['target']
    if disk in device_ids(mon.execute('qom-list', {'path': '/machine/peripheral'})):
        found = existing_image(mon.execute('query-block'),
                               mon.execute('query-named-block-nodes', {'flat': True}), disk)
        if found != target:
            raise InvalidArgument(f"job '{name}': disk '{disk}' exists and runs on {found}, "
                                  f'not on the overlay {target}; give the id of a new disk', name)
        start_job(mon, waiter, name, params, note)
        return
    make(mon.peer())
    fmt_node = _nodes.target_node_names(name)[0]
    note(attached=[fmt_node])
    mon.execute('blockdev-add', {'driver': 'qcow2', 'node-name': fmt_node, 'file': {
        'driver': 'file', 'filename': target}})
    device: dict[str, t.Any] = {'driver': 'virtio-blk-pci', 'id': disk, 'drive': fmt_node}
    if params.get('bus'):
        device['bus'] = params['bus']
    mon.execute('device_add', device)
    # The VM's disk now: never detached or removed by the collection.
    note(attached=[], created_files=[])
    mon.execute('block-stream', dict(_common(name, params), device=fmt_node))
