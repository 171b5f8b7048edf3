# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Multi-disk backups of a libvirt domain: one ``backupBegin`` for a plan of the client's.

This is a private module: its API may change between any two releases.

The client plans the chain (``_model/chains``) the same way for libvirt as for
QMP; here a disk's changes are marked by checkpoints.  A full or incremental
backup of a chain creates a checkpoint named after the backup, tracking its
disks; an incremental of a disk reads the changes since the checkpoint of the
backup it builds on (``backupmode='incremental'`` per disk), a differential
since that of the last full.  A differential creates no checkpoint.
"""

from __future__ import annotations

import typing as t

from .. import _targets
from .._errors import InvalidArgument
from .._model import chains as _chains
from .._model.session import Note, Record
from . import binding as _libvirt
from . import domxml as _libvirt_xml
from .connection import Domain
from .start import Starter

#: Backup options libvirt has no counterpart for, and why.
UNSUPPORTED = {'compress': 'compress and perf cannot be used with a libvirt domain',
               'perf': 'compress and perf cannot be used with a libvirt domain',
               'speed': 'libvirt sets no speed for backups'}


def sources(domain: Domain, name: str, devices: t.Sequence[str] | None) -> list[Record]:
    """The disks ``devices`` (every writable disk if None), each with the checkpoints that
    track it: ``[{'device', 'node': target, 'marks': {checkpoint: None}}]``.

    :raise InvalidArgument: an unknown disk.
    """
    disks = _libvirt_xml.disks(domain.xml())
    tracked: dict[str, dict[str, str | None]] = {}
    for text in domain.checkpoints():
        checkpoint, targets = _libvirt_xml.checkpoint_disks(text)
        for target in targets:
            tracked.setdefault(target, {})[checkpoint] = None
    if devices is None:
        found = [(disk['target'], disk) for disk in _libvirt_xml.writable(disks)]
    else:
        found = [(device, _libvirt_xml.find_disk(disks, device, name)) for device in devices]
    return [{'device': device, 'node': disk['target'], 'marks': tracked.get(disk['target'], {})}
            for device, disk in found]


def start(starter: Starter, name: str, params: dict[str, t.Any], plan: list[Record],
          note: Note) -> None:
    """Start backup ``name`` of the disks of ``plan`` with one ``backupBegin``.

    Each step names its disk (``node``: the target), its image (``target``, ``format``,
    ``backing``) and the checkpoint it reads changes since (``require``, None for a
    full copy).  The images are made first (noted), with their backing file recorded.

    :raise InvalidArgument: an option libvirt has no counterpart for, a target that exists.
    :raise BackendError: libvirt refused (its code name and text kept).
    """
    if params.get('delivery') == 'pull':
        raise InvalidArgument(f"job '{name}': delivery: pull is not offered for a libvirt "
                              'domain yet', name)
    for option, why in UNSUPPORTED.items():
        if params.get(option):
            raise InvalidArgument(f"job '{name}': {why}", name)
    chain = params.get('bitmap') is not None
    checkpoint = name if chain and params['mode'] != 'differential' else None
    chosen = [step['node'] for step in plan]
    note(libvirt_type='backup', backup_disks=chosen, checkpoint=checkpoint,
         created_files=[step['target'] for step in plan],
         disks=[{key: step.get(key) for key in _chains.DISK_KEYS} for step in plan])
    made: list[str] = []
    try:
        for step in plan:
            starter.targets.check(name, step['target'])
            starter.targets.create(name, step['target'], params.get('target_mode'))
            made.append(step['target'])
            backing = None
            if step.get('backing'):
                backing = (_chains.backing_name(step['target'], step['backing']),
                           step['backing_format'])
            starter.targets.format(name, step['target'], step['format'],
                                   starter.capacity(name, step['node']), backing)
    except _targets.TargetRace:
        note(created_files=made)  # the one that appeared is not ours to remove
        raise
    targets = [{'target': step['node'], 'path': step['target'], 'format': step['format'],
                'since': step.get('require')} for step in plan]
    every = [disk['target'] for disk in _libvirt_xml.writable(starter.disks())]
    every += [target for target in chosen if target not in every]
    ckpt = _libvirt_xml.checkpoint_xml(checkpoint, chosen, every) if checkpoint else None
    starter.run(name, 'backupBegin', _libvirt_xml.backup_xml(targets), ckpt,
                _libvirt.BACKUP_BEGIN_REUSE_EXTERNAL)


def end_pull(domain: Domain, entry: Record, verdict: str) -> None:
    """End a pull backup with its reader's verdict (not offered for libvirt yet)."""
    raise InvalidArgument(f"job '{entry['name']}': delivery: pull is not offered for a "
                          'libvirt domain yet', entry['name'])
