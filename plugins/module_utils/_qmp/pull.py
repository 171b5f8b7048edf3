# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pull backups over QMP: each disk's point-in-time view exported over NBD (fleecing).

This is a private module: its API may change between any two releases.

Per disk, a qcow2 *fleecing overlay* (a scratch image in a private directory) is
attached with the disk's node as its backing node, and a ``blockdev-backup``
``sync=none`` member job copies into it every cluster the guest is about to
overwrite (QEMU inserts its copy-before-write filter for that).  Read through the
overlay, the disk stays as it was when the member started; that node is exported
over NBD.  One ``transaction`` starts every member and, at that same instant, adds
the bitmap ``<bitmap>.pull`` to each disk (what changes while the reader reads),
and gives an incremental's or differential's export a frozen copy of the chain's
bitmap (the extents to read, offered as the meta context ``qemu:dirty-bitmap:<name>``).

The chain's own bitmaps are not touched until the reader's verdict
(:func:`end_pull`): ``succeeded`` makes ``<bitmap>.pull`` the chain's bitmap(s),
anything else drops it, so the next incremental still covers every change since the
last backup a reader acknowledged.
"""

from __future__ import annotations

import contextlib
import os
import stat
import typing as t

from .._errors import BackendError, InvalidArgument, VmjobsError
from .._exports import export_uri, private_dir, pull_dir, scratch_path, server_of
from .._model import chains as _chains
from .._model.session import Note, Record
from .._waiter import Waiter
from . import images as _qmp_images
from . import nodes as _nodes
from .backup import _Attached, checked_sources
from .monitor import Monitor
from .sources import bitmaps, reset_actions

#: Seconds QEMU gets to drop an export's connections and close it.
EXPORT_CLOSE_TIMEOUT = 30.0
#: QEMU's text when ``nbd-server-start`` finds a server running.
SERVER_RUNNING = 'already running'
#: The id of the TLS credentials object of a TCP NBD server the collection starts.
TLS_ID = 'vmjobs-nbd-tls'


# -- pure helpers --------------------------------------------------------------------------

def start_actions(plan: list[Record], sources: list[str], fleece: list[str]) -> list[Record]:
    """The one ``transaction`` that fixes the start instant of a pull backup.

    Per disk: the start-instant bitmap (``pull_mark``), the export's frozen copy of the
    bitmap an incremental or differential reads (on the overlay, disabled, so the
    copy-before-write writes do not mark it), and the ``sync=none`` member.
    """
    actions: list[Record] = []
    for disk, node, overlay in zip(plan, sources, fleece):
        if disk.get('pull_mark'):  # persistent: a disk that cannot keep a chain fails here
            actions.append({'type': 'block-dirty-bitmap-add',
                            'data': {'node': node, 'name': disk['pull_mark'],
                                     'persistent': True}})
        if disk.get('bitmap'):
            actions += [
                {'type': 'block-dirty-bitmap-add',
                 'data': {'node': overlay, 'name': disk['bitmap'], 'disabled': True}},
                {'type': 'block-dirty-bitmap-merge',
                 'data': {'node': overlay, 'target': disk['bitmap'],
                          'bitmaps': [{'node': node, 'name': disk['bitmap']}]}}]
        actions.append({'type': 'blockdev-backup', 'data': {
            'job-id': disk['member'], 'device': node, 'target': overlay, 'sync': 'none',
            'auto-finalize': True, 'auto-dismiss': False}})
    return actions


def verdict_actions(disk: Record, found: dict[str, Record],
                    verdict: str) -> tuple[list[str], list[Record]]:
    """What the reader's ``verdict`` does to the bitmaps of one disk (``found``: its bitmaps).

    ``succeeded``: each bitmap of ``settle`` becomes the start-instant bitmap (cleared,
    or made anew if unusable, then merged with it); then the start-instant bitmap goes.
    Any other verdict only drops the start-instant bitmap.

    :return: (bitmaps to remove before the transaction, transaction actions).
    """
    mark, node = disk.get('pull_mark'), disk['node']
    if not mark or mark not in found:
        return [], []
    remove: list[str] = []
    actions: list[Record] = []
    if verdict == 'succeeded':
        remove, actions = reset_actions(node, disk.get('settle') or [], found)
        actions += [{'type': 'block-dirty-bitmap-merge',
                     'data': {'node': node, 'target': name, 'bitmaps': [mark]}}
                    for name in disk.get('settle') or []]
    actions.append({'type': 'block-dirty-bitmap-remove', 'data': {'node': node, 'name': mark}})
    return remove, actions


# -- starting and ending ---------------------------------------------------------------------

def ensure_server(mon: Monitor, name: str, server: Record) -> bool:
    """Start QEMU's NBD server at ``server`` (``pull`` of the entry) unless one runs on
    its UNIX socket already; a TCP server gets its TLS credentials object first.

    :return: whether this call started it.
    :raise InvalidArgument: a server runs elsewhere (QEMU runs one at a time).
    """
    arguments: Record = {'addr': {'type': 'unix', 'data': {'path': server.get('socket')}}}
    if server.get('host'):
        arguments = {'addr': {'type': 'inet', 'data': {'host': server['host'],
                                                       'port': str(server['port'])}},
                     'tls-creds': TLS_ID}
        mon.execute('object-add', {'qom-type': 'tls-creds-x509', 'id': TLS_ID,
                                   'dir': server['tls_dir'], 'endpoint': 'server',
                                   'verify-peer': True})
    try:
        mon.execute('nbd-server-start', arguments)
        return True
    except BackendError as err:
        if server.get('host'):
            with contextlib.suppress(BackendError):
                mon.execute('object-del', {'id': TLS_ID})
        if SERVER_RUNNING not in err.desc or server.get('host'):
            raise err.for_job(name) from err
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(server['socket']).st_mode):
                return False
        raise InvalidArgument(f"job '{name}': nbd-server-start failed: {err.error_class}: "
                              f"{err.desc}, and not on {server['socket']}; give its socket "
                              'as nbd_socket', name) from err


def start_pull(mon: Monitor, waiter: Waiter, name: str, params: dict[str, t.Any],
               plan: list[Record], note: Note, scope: str) -> None:
    """Start pull backup ``name``: fleecing overlays, members, exports (see the module doc).

    On failure everything is undone before the error is raised.

    :raise InvalidArgument: unknown device, missing bitmap, the private directory is not
        private, an NBD server runs elsewhere.
    :raise BackendError: QEMU refused a command.
    """
    nodes, sources = checked_sources(mon, name, plan)
    directory = pull_dir(scope)
    server = server_of(params, directory)
    private_dir(name, directory)
    disks = [dict({key: disk.get(key) for key in _chains.DISK_KEYS}, member=disk['member'],
                  node=node, export=disk['export'], uri=export_uri(server, disk['export']),
                  meta_context=disk['meta_context'], pull_mark=disk['pull_mark'],
                  settle=disk['settle'])
             for disk, node in zip(plan, sources)]
    note(members=[disk['member'] for disk in plan], disks=disks,
         pull=server)
    attached = _Attached(note)
    fleece: list[str] = []
    started = False
    try:
        for disk, node in zip(plan, sources):
            fleece.append(_fleece(mon, waiter, directory, disk, node,
                                  _nodes.node(nodes, node), attached))
        # The server is the collection's to stop if it started it, or runs in its directory.
        started = ensure_server(mon, name, server) or \
            os.path.dirname(server.get('socket') or '') == directory
        note(pull=dict(server, server_started=started))
        for disk, node in zip(plan, sources):  # left by a pull backup QEMU lost (killed)
            if disk.get('pull_mark') in bitmaps(nodes, node):
                mon.execute('block-dirty-bitmap-remove', {'node': node,
                                                          'name': disk['pull_mark']})
        mon.execute('transaction', {'actions': start_actions(plan, sources, fleece)})
    except VmjobsError:
        _stop_server(mon, dict(server, server_started=started))
        attached.undo(mon)
        raise
    try:
        for disk, overlay in zip(plan, fleece):
            mon.execute('block-export-add', {
                'type': 'nbd', 'id': disk['member'], 'node-name': overlay,
                'name': disk['export'], 'writable': False,
                **({'bitmaps': [disk['bitmap']]} if disk.get('bitmap') else {})})
    except VmjobsError:
        end_pull(mon, waiter, {'disks': disks, 'pull': dict(server, server_started=started)},
                 'failed')
        _reap(mon, waiter, [disk['member'] for disk in plan])
        attached.undo(mon)
        raise


def _reap(mon: Monitor, waiter: Waiter, members: list[str]) -> None:
    """Wait for the canceled ``members`` to conclude, and dismiss them."""
    def concluded(left: float) -> bool | None:
        live = mon.execute('query-jobs')
        if all(job['status'] == 'concluded' for job in live if job['id'] in members):
            return True
        if left > 0:
            mon.wait_event(min(left, 0.05))
        return None

    waiter.until(concluded, EXPORT_CLOSE_TIMEOUT)
    for member in members:
        with contextlib.suppress(BackendError):
            mon.execute('job-dismiss', {'id': member})


def _fleece(mon: Monitor, waiter: Waiter, directory: str, disk: Record, node: str,
            source: Record, attached: _Attached) -> str:
    """Create and attach the fleecing overlay of one disk; return its node."""
    fmt_node, file_node = _nodes.target_node_names(disk['member'])
    _qmp_images.create_image(mon, waiter, disk['member'], scratch_path(directory, disk['member']),
                             'qcow2', int(source['image']['virtual-size']),
                             attached.member_note(fmt_node))
    mon.execute('blockdev-add', {'driver': 'qcow2', 'node-name': fmt_node, 'file': file_node,
                                 'backing': node})
    return fmt_node


def _stop_server(mon: Monitor, server: Record) -> None:
    """Stop the NBD server if the collection started it and no export is left on it; its
    TLS credentials object goes with it."""
    if server.get('server_started') and not mon.execute('query-block-exports'):
        with contextlib.suppress(BackendError):
            mon.execute('nbd-server-stop')
        if server.get('host'):
            with contextlib.suppress(BackendError):
                mon.execute('object-del', {'id': TLS_ID})


def end_pull(mon: Monitor, waiter: Waiter, entry: Record, verdict: str) -> None:
    """End pull backup ``entry`` with the reader's ``verdict`` (``succeeded``, ``failed``,
    ``canceled``): its exports go (their connections dropped), the bitmaps follow the
    verdict (:func:`verdict_actions`), the members are canceled. Detaching the overlays
    is left to closing the backup's targets, as for any job.

    :raise BackendError: QEMU refused a command (the bitmaps are then as they were).
    """
    disks = entry.get('disks') or []
    members = {disk['member'] for disk in disks}
    for member in sorted(members):
        with contextlib.suppress(BackendError):
            mon.execute('block-export-del', {'id': member, 'mode': 'hard'})

    def closed(left: float) -> bool | None:
        if not members & {e['id'] for e in mon.execute('query-block-exports')}:
            return True
        if left > 0:
            mon.wait_event(min(left, 0.05))
        return None

    waiter.until(closed, EXPORT_CLOSE_TIMEOUT)
    nodes = mon.execute('query-named-block-nodes', {'flat': True})
    remove: list[tuple[str, str]] = []
    actions: list[Record] = []
    for disk in disks:
        with contextlib.suppress(VmjobsError):  # the disk's node is gone with its bitmaps
            dropped, more = verdict_actions(disk, bitmaps(nodes, disk['node']), verdict)
            remove += [(disk['node'], bitmap) for bitmap in dropped]
            actions += more
    for node, bitmap in remove:
        mon.execute('block-dirty-bitmap-remove', {'node': node, 'name': bitmap})
    if actions:
        mon.execute('transaction', {'actions': actions})
    live = {job['id']: job for job in mon.execute('query-jobs')}
    for member in sorted(members):
        if member in live and live[member]['status'] != 'concluded':
            mon.execute('job-cancel', {'id': member})
    _stop_server(mon, entry.get('pull') or {})
