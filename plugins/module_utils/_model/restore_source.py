# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which image holds a backup's point in time: a backup name and a device, resolved to a path.

This is a private module: its API may change between any two releases.
Nothing here does I/O: the caller reads the VM's chain history (``#backup-chains``
scope, see ``chains``) and its ledger entries, and hands them in.

The image a backup wrote for a disk *is* that disk's point in time: read through its
backing chain (the incrementals below it, down to the full backup) it gives the disk
as it was when the backup ran. So restoring a point is copying that image, chain and
all, into one standalone image.
"""

from __future__ import annotations

import typing as t

from .._errors import InvalidArgument

Record = dict[str, t.Any]


def _written(name: str, backup: str, device: str, disks: dict[str, Record],
             outcome: str | None) -> str:
    """The image of ``device`` among a backup's ``disks``, if that backup succeeded."""
    if outcome != 'succeeded':
        how = outcome or 'its outcome was never seen'
        raise InvalidArgument(f"job '{name}': backup '{backup}' did not succeed ({how}); "
                              'restore from a backup that did', name)
    if device not in disks:
        known = ', '.join(sorted(disks)) or 'none'
        raise InvalidArgument(f"job '{name}': backup '{backup}' has no disk '{device}' "
                              f'(its disks: {known})', name)
    return t.cast(str, disks[device]['target'])


def backup_image(name: str, backup: str, device: str, chains: t.Sequence[Record],
                 entries: t.Sequence[Record]) -> str:
    """The image backup ``backup`` wrote for ``device``.

    The chain history is asked first (it outlives the job records); a backup that
    started no chain (no bitmap) is found through its job record while the ledger
    keeps it.

    :param name: the restore job's name (for messages).
    :param chains: the VM's chain records (``{'name': bitmap, 'attempts': [...]}``).
    :param entries: the VM's ledger entries.
    :raise InvalidArgument: no such backup, it did not succeed, or it has no such disk.
    """
    found = [attempt for chain in chains for attempt in chain.get('attempts') or []
             if attempt.get('job') == backup]
    if found:
        attempt = found[-1]
        disks = {device_: dict(disk) for device_, disk in (attempt.get('disks') or {}).items()}
        return _written(name, backup, device, disks, attempt.get('outcome'))
    entry = next((e for e in entries if e.get('name') == backup and e.get('type') == 'backup'),
                 None)
    if entry is None:
        known = sorted({a['job'] for chain in chains for a in chain.get('attempts') or []}
                       | {e['name'] for e in entries if e.get('type') == 'backup'})
        listed = ', '.join(known) or 'none'
        raise InvalidArgument(f"job '{name}': no backup named '{backup}' in this VM's ledger "
                              f'(backups known: {listed})', name)
    disks = {disk['device']: disk for disk in entry.get('disks') or [] if disk.get('device')}
    return _written(name, backup, device, disks, (entry.get('last') or {}).get('outcome'))
