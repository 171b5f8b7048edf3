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

from .. import _exports, _targets
from .._errors import BackendError, InvalidArgument, naming
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
          note: Note, scope: str = '') -> None:
    """Start backup ``name`` of the disks of ``plan`` with one ``backupBegin``.

    Each step names its disk (``node``: the target), its image (``target``, ``format``,
    ``backing``) and the checkpoint it reads changes since (``require``, None for a
    full copy).  The images are made first (noted), with their backing file recorded.

    :raise InvalidArgument: an option libvirt has no counterpart for, a target that exists.
    :raise BackendError: libvirt refused (its code name and text kept).
    """
    for option, why in UNSUPPORTED.items():
        if params.get(option):
            raise InvalidArgument(f"job '{name}': {why}", name)
    chain = params.get('bitmap') is not None
    checkpoint = name if chain and params['mode'] != 'differential' else None
    chosen = [step['node'] for step in plan]
    if _chains.is_pull(params):
        _start_pull(starter, name, params, plan, note, checkpoint, scope)
        return
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
    ckpt = _checkpoint(starter, checkpoint, chosen)
    starter.run(name, 'backupBegin', _libvirt_xml.backup_xml(targets), ckpt,
                _libvirt.BACKUP_BEGIN_REUSE_EXTERNAL)


def _checkpoint(starter: Starter, checkpoint: str | None, chosen: list[str]) -> str | None:
    """The ``<domaincheckpoint>`` a backup of the disks ``chosen`` makes, if any."""
    if checkpoint is None:
        return None
    every = [disk['target'] for disk in _libvirt_xml.writable(starter.disks())]
    every += [target for target in chosen if target not in every]
    return _libvirt_xml.checkpoint_xml(checkpoint, chosen, every)


def _start_pull(starter: Starter, name: str, params: dict[str, t.Any], plan: list[Record],
                note: Note, checkpoint: str | None, scope: str) -> None:
    """Start pull backup ``name``: libvirt makes a scratch image per disk (and removes it
    at the end) and exports each disk over its NBD server, in pull mode: on a UNIX socket,
    or over TCP with TLS, with the certificates libvirtd's configuration names."""
    directory = _exports.pull_dir(scope)
    server = _exports.server_of(params, directory)
    _exports.private_dir(name, directory)
    chosen = [step['node'] for step in plan]
    disks = [dict({key: step.get(key) for key in _chains.DISK_KEYS},
                  export=step['export'], uri=_exports.export_uri(server, step['export']),
                  meta_context=step['meta_context'] if step.get('require') else None,
                  scratch=_exports.scratch_path(directory, step['member']),
                  target_dev=step['node'])
             for step in plan]
    note(libvirt_type='backup', backup_disks=chosen, checkpoint=checkpoint, disks=disks,
         created_files=[disk['scratch'] for disk in disks],
         pull=server)
    exported = [{'target': step['node'], 'export': step['export'], 'since': step.get('require'),
                 'bitmap': step['bitmap'], 'scratch': disk['scratch']}
                for step, disk in zip(plan, disks)]
    starter.run(name, 'backupBegin', _libvirt_xml.pull_backup_xml(exported, server),
                _checkpoint(starter, checkpoint, chosen), 0)


def end_pull(domain: Domain, entry: Record, verdict: str) -> None:
    """End pull backup ``entry`` with its reader's ``verdict``: the domain job is aborted
    (libvirt drops the exports and removes the scratch images it made); unless the reader
    acknowledged the read, the backup's checkpoint is deleted, which merges its bitmap into
    the checkpoint before, so the next incremental still covers every change since the last
    acknowledged backup.

    :raise BackendError: libvirt refused.
    """
    with naming(entry['name']):
        try:
            domain.call('abortJob')
        except BackendError as err:
            if 'no job' not in err.desc.lower():
                raise
        mine = entry.get('checkpoint')
        if verdict != 'succeeded' and mine and any(
                _libvirt_xml.checkpoint_disks(text)[0] == mine for text in domain.checkpoints()):
            domain.delete_checkpoint(mine)
