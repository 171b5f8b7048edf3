# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure model of a migration that copies its disks (``storage: copy``).

This is a private module: its API may change between any two releases.
Nothing here does I/O.

Over QMP such a migration is one named job with one mirror per disk (its members):

1. the disks are copied first (phase ``storage``): each member mirrors a source disk into
   the destination's disk through the destination's NBD server, and the record's progress
   is the bytes of every disk together;
2. once every member is ``ready`` (source and destination in sync, guest writes copied as
   they come), the migration proper is started and the record is QEMU's ``query-migrate``;
3. once it has completed, each ready member is ended without a pivot (QEMU then makes the
   destination's disk equal to the source's) before the guest resumes at the destination.

A member that fails ends the migration as failed, with that disk's error.
"""

from __future__ import annotations

import hashlib
import typing as t

from .shapes import job_record, progress
from .vocabulary import ABSENT

Record = dict[str, t.Any]

#: Where the disks of a migration are: reachable from both hosts, or copied.
STORAGE = ('shared', 'copy')


def member_id(name: str, device: str) -> str:
    """The job id of the mirror that copies ``device`` for the migration ``name``."""
    return f'{name}.{device}'


def nbd_node(name: str, device: str) -> str:
    """The source's NBD client node for ``device`` (QEMU allows 31 characters)."""
    digest = hashlib.sha256(f'{name}/{device}'.encode()).hexdigest()[:12]
    return f'vj{digest}n'


def disk_plan(name: str, devices: t.Sequence[str], source: dict[str, str],
              dest: dict[str, str]) -> list[Record]:
    """The disks to copy, in the order given: device, source node, destination node,
    the member's job id, the NBD client node and the export's name.

    :param devices: the devices to copy (qdev ids).
    :param source: device -> node inserted on the source.
    :param dest: device -> node inserted on the destination.
    :raise LookupError: a device one side lacks (the message says which).
    """
    if not devices:
        raise LookupError('the VM has no writable disk to copy')
    plan = []
    for device in devices:
        if device not in source:
            raise LookupError(f"the source VM has no disk '{device}' (disks: "
                              f"{', '.join(sorted(source)) or 'none'})")
        if device not in dest:
            raise LookupError(f"the destination QEMU has no disk '{device}' to copy it into "
                              f"(disks: {', '.join(sorted(dest)) or 'none'})")
        plan.append({'device': device, 'node': source[device], 'dest_node': dest[device],
                     'member': member_id(name, device), 'nbd_node': nbd_node(name, device),
                     'export': device})
    return plan


def aggregate(disks: t.Sequence[Record]) -> Record:
    """The progress of every disk together: bytes copied of the bytes to copy."""
    current = total = 0
    for disk in disks:
        done = disk.get('progress') or {}
        current += done.get('current') or 0
        total += done.get('total') or 0
    return dict(progress(current, total))


def members(entry: Record, live: t.Sequence[Record], outcome: str | None) -> list[Record]:
    """The disk members of a migration's record: device, job, status, progress.

    ``live`` are the member jobs QEMU still has. A member QEMU no longer has was ended
    when the migration concluded: it is reported as concluded with the migration's
    ``outcome`` and the last progress the ledger kept.
    """
    found = {m['name']: m for m in live}
    kept = {d.get('device'): d for d in (entry.get('last') or {}).get('disks') or []}
    listed = []
    for disk in entry.get('disks') or []:
        member = found.get(disk['member'])
        if member is not None:
            listed.append({'device': disk['device'], 'name': disk['member'],
                           'status': member['status'], 'ready': member['ready'],
                           'outcome': member['outcome'], 'error': member['error'],
                           'progress': member['progress']})
            continue
        last = kept.get(disk['device']) or {}
        listed.append({'device': disk['device'], 'name': disk['member'],
                       'status': 'concluded' if outcome else ABSENT, 'ready': False,
                       'outcome': last.get('outcome') or outcome, 'error': last.get('error'),
                       'progress': last.get('progress') or dict(progress())})
    return listed


def failure(disks: t.Sequence[Record]) -> str | None:
    """The error of the members that failed ("vda: ..."), or None."""
    failed = [d for d in disks if d.get('outcome') == 'failed']
    if not failed:
        return None
    return '; '.join(f"disk {d['device']}: {d.get('error') or 'failed'}" for d in failed)


def all_ready(disks: t.Sequence[Record]) -> bool:
    """Whether every member is in sync (``ready``): the migration proper may start."""
    return bool(disks) and all(d['status'] == 'ready' for d in disks)


def storage_record(name: str, base: Record | None, live: t.Sequence[Record],
                   entry: Record) -> Record:
    """The record of a migration that copies its disks.

    :param base: the record ``query-migrate`` gives, or None while the disks are copied
        (the migration proper has not started).
    :param live: the member jobs QEMU still has.
    """
    if base is None:
        disks = members(entry, live, None)
        error = failure(disks)
        ended = [d['outcome'] for d in disks if d['outcome'] is not None]
        result = 'failed' if error else ('canceled' if ended else None)
        status = 'concluded' if result else 'running'
        record = job_record(name, 'migration', status,
                            raw_status='failed' if error else ('cancelled' if ended else 'setup'),
                            outcome=result, error=error,
                            progress_=t.cast(t.Any, aggregate(disks)), busy=result is None)
        record['phase'] = 'storage'
    else:
        record = dict(base)
        disks = members(entry, live, record['outcome'])
        error = failure(disks)
        if error and record['outcome'] != 'succeeded':
            record.update(outcome='failed' if record['outcome'] else None, error=error)
        record['phase'] = 'migration'
    record.update(storage='copy', disks=disks, disks_progress=aggregate(disks))
    return record
