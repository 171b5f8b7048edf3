# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disks of a migration without shared storage, over QMP: NBD and one mirror per disk.

This is a private module: its API may change between any two releases.

The destination QEMU (waiting with ``-incoming defer``) serves its disks over NBD on a
UNIX socket beside its QMP socket (``nbd-server-start``, one writable ``block-export-add``
per disk); the source attaches each export as an NBD client node (``blockdev-add``) and
mirrors its disk into it (``blockdev-mirror``, the migration's members). The order of the
phases is in ``_model/storage``. Each step is noted in the ledger before it is taken, so
that :func:`release` can undo what a failed, canceled or finished migration left on
either side.
"""

from __future__ import annotations

import typing as t

from .._errors import BackendError, TransportError, VmjobsError, naming
from .._model import storage as _storage
from .._model.session import Note, Record
from .._waiter import Waiter
from . import nodes as _nodes
from .monitor import Monitor
from .sources import vm_disks

#: Longest wait for the members to end once they were told to.
END_SECONDS = 120.0
#: QEMU's texts for an NBD server or export that is not there.
NOT_THERE = ('not running', 'not found', 'no such', 'cannot find')


def nbd_socket(dest_socket: str) -> str:
    """The UNIX socket the destination's NBD server listens on (beside its QMP socket)."""
    return f'{dest_socket}.nbd'


def export_id(disk: Record) -> str:
    """The destination's block export id for one disk."""
    return f"{disk['nbd_node']}x"


def plan(name: str, source: Monitor, dest: Monitor, devices: t.Sequence[str] | None) -> list[Record]:
    """The disks to copy (every writable disk of the source unless ``devices`` are given).

    :raise VmjobsError: a device one side lacks.
    """
    blocks = source.execute('query-block')
    wanted = list(devices) if devices else vm_disks(blocks)
    try:
        return _storage.disk_plan(name, wanted, _nodes.inserted_nodes(blocks),
                                  _nodes.inserted_nodes(dest.execute('query-block')))
    except LookupError as err:
        raise VmjobsError(f"job '{name}': storage copy: {err}", name) from err


def start_copy(source: Monitor, dest: Monitor, name: str, disks: list[Record],
               note: Note) -> None:
    """Serve the destination's disks over NBD and mirror each source disk into them.

    :raise BackendError: QEMU refused a step (its class and text kept); :func:`release`
        undoes the steps taken, as the ledger noted them.
    """
    path = nbd_socket(dest.path)
    note(disks=disks, members=[d['member'] for d in disks],
         nbd_server={'socket': dest.path, 'path': path, 'exports': []})
    with naming(name):
        dest.execute('nbd-server-start', {'addr': {'type': 'unix', 'data': {'path': path}}})
        exports: list[str] = []
        for disk in disks:
            exports.append(export_id(disk))
            note(nbd_server={'socket': dest.path, 'path': path, 'exports': list(exports),
                             'started': True})
            dest.execute('block-export-add', {
                'type': 'nbd', 'id': export_id(disk), 'node-name': disk['dest_node'],
                'name': disk['export'], 'writable': True})
        attached: list[str] = []
        for disk in disks:
            attached.append(disk['nbd_node'])
            note(attached=list(attached))
            source.execute('blockdev-add', {
                'driver': 'nbd', 'node-name': disk['nbd_node'], 'export': disk['export'],
                'server': {'type': 'unix', 'path': path}})
        for disk in disks:
            source.execute('blockdev-mirror', {
                'job-id': disk['member'], 'device': disk['node'], 'target': disk['nbd_node'],
                'sync': 'full', 'auto-finalize': True, 'auto-dismiss': False})


def stop_copy(source: Monitor, entry: Record) -> None:
    """Cancel every member still copying (a canceled migration, or a member that failed)."""
    live = {j['id']: j['status'] for j in source.execute('query-jobs')}
    for member in entry.get('members') or []:
        if live.get(member) not in (None, 'concluded', 'aborting'):
            with naming(entry['name']):
                source.execute('job-cancel', {'id': member})


def end_members(source: Monitor, waiter: Waiter, entry: Record, keep: bool) -> None:
    """End the members and dismiss them.

    With ``keep`` (the migration completed, the guest is paused), a ``ready`` member is
    ended without a pivot (``block-job-cancel``): QEMU copies what is left, and the
    destination's disk equals the source's. Otherwise each member is canceled.
    """
    name, members = entry['name'], set(entry.get('members') or [])

    def statuses() -> dict[str, str]:
        return {j['id']: j['status'] for j in source.execute('query-jobs') if j['id'] in members}

    with naming(name):
        for member, status in statuses().items():
            if keep and status == 'ready':
                source.execute('block-job-cancel', {'device': member})
            elif status not in ('concluded', 'aborting'):
                source.execute('job-cancel', {'id': member})

        def ended(left: float) -> dict[str, str] | None:
            now = statuses()
            if all(s == 'concluded' for s in now.values()):
                return now
            source.wait_event(min(left, 0.2))
            return None

        done = waiter.until(ended, END_SECONDS)
        if done is None:
            raise VmjobsError(f"job '{name}': the disk copies did not end within "
                              f'{END_SECONDS:.0f}s', name)
        for member in done:
            source.execute('job-dismiss', {'id': member})


def stop_server(entry: Record, connect_timeout: float) -> None:
    """Remove the destination's exports and stop its NBD server (a gone QEMU is fine).

    :raise BackendError: QEMU refused for another reason than the export or server being gone.
    """
    server = entry.get('nbd_server') or {}
    if not server.get('started'):
        return
    try:
        with Monitor(server['socket'], connect_timeout) as dest:
            for export in server.get('exports') or []:
                _tolerate(dest, 'block-export-del', {'id': export})
            _tolerate(dest, 'nbd-server-stop', {})
    except TransportError:
        return  # the destination QEMU has gone, and its server with it


def _tolerate(mon: Monitor, command: str, arguments: Record) -> None:
    try:
        mon.execute(command, arguments)
    except BackendError as err:
        if not any(text in err.desc.lower() for text in NOT_THERE):
            raise
