# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure lookups in QEMU's block graph replies (``query-block``, ``query-named-block-nodes``).

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import hashlib
import os
import typing as t

from .._errors import InvalidArgument

Node = dict[str, t.Any]


def qdev_matches(qdev: str, device: str) -> bool:
    """Whether a ``query-block`` qdev path belongs to the qdev id ``device``."""
    prefix = f'/machine/peripheral/{device}'
    return qdev in (device, prefix) or qdev.startswith(prefix + '/')


def inserted_nodes(blocks: list[Node]) -> dict[str, str]:
    """Map every device name and qdev id to the node currently inserted in it."""
    found: dict[str, str] = {}
    for block in blocks:
        inserted = block.get('inserted')
        if not inserted:
            continue
        if block.get('device'):
            found[block['device']] = inserted['node-name']
        qdev = block.get('qdev') or ''
        if qdev.startswith('/machine/peripheral/'):
            found[qdev.split('/')[3]] = inserted['node-name']
        elif qdev:
            found[qdev] = inserted['node-name']
    return found


def resolve_device(device: str, blocks: list[Node], nodes: list[Node], job: str) -> str:
    """The node name for ``device``: a node name, or a qdev id/drive (its inserted node).

    :raise InvalidArgument: nothing of that name.
    """
    names = [n['node-name'] for n in nodes]
    if device in names:
        return device
    inserted = inserted_nodes(blocks)
    if device in inserted:
        return inserted[device]
    devices = ', '.join(sorted(inserted)) or 'none'
    named = ', '.join(n for n in names if not n.startswith('#')) or 'none'
    raise InvalidArgument(f"job '{job}': no block node or device named '{device}' "
                          f"(devices: {devices}; nodes: {named})", job)


def node(nodes: list[Node], name: str) -> Node:
    """The ``query-named-block-nodes`` entry of node ``name`` (KeyError if none)."""
    for entry in nodes:
        if entry['node-name'] == name:
            return entry
    raise KeyError(name)


def backing_chain(nodes: list[Node], top: str) -> list[Node]:
    """Format nodes from ``top`` down its backing chain (each node's ``backing_file``)."""
    chain = [node(nodes, top)]
    while chain[-1].get('backing_file') and len(chain) <= len(nodes):
        backing = [n for n in nodes if n.get('file') == chain[-1]['backing_file']
                   and n.get('drv') != 'file' and n not in chain]
        if not backing:
            break
        chain.append(backing[0])
    return chain


def resolve_in_chain(nodes: list[Node], top: str, wanted: str, job: str, what: str) -> str:
    """A node of ``top``'s backing chain given by node name or image path.

    :raise InvalidArgument: ``wanted`` is not in the chain.
    """
    chain = backing_chain(nodes, top)
    path = os.path.abspath(wanted) if '/' in wanted else None
    for entry in chain:
        if entry['node-name'] == wanted or (path and entry.get('file') == path):
            return t.cast(str, entry['node-name'])
    shown = ' -> '.join(f"{e['node-name']} ({e.get('file')})" for e in chain)
    raise InvalidArgument(f"job '{job}': {what} '{wanted}' is not in the backing chain of "
                          f"'{top}' (chain: {shown})", job)


def target_node_names(job: str) -> tuple[str, str]:
    """Node names for a target the collection attaches: (format node, file node).

    QEMU limits node names to 31 characters, so they derive from a hash of the job name.
    """
    digest = hashlib.sha256(job.encode()).hexdigest()[:12]
    return f'vj{digest}t', f'vj{digest}f'
