# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Starting the block jobs of a libvirt domain: pull, commit, copy and one disk's backup.

This is a private module: its API may change between any two releases.
Every start notes the facts its outcome will be judged by (the disk, its chain,
the source or chain the job is to leave) before libvirt is asked.
"""

from __future__ import annotations

import os
import typing as t

from .. import _targets
from .._errors import InvalidArgument, naming
from .._model.session import Note, Record
from . import binding as _libvirt
from . import domxml as _libvirt_xml
from . import jobs as _libvirt_jobs
from .connection import Domain

#: block_job options libvirt has no counterpart for, and why.
UNSUPPORTED = {'on_error': 'libvirt sets no error policy for block jobs',
               'bitmap_mode': 'libvirt manages the bitmaps of its checkpoints itself',
               'auto_finalize': 'libvirt finalizes block jobs itself'}


class Starter:
    """Starts one job on ``domain``.

    Target files are checked and made by :attr:`targets` (see ``_targets``), formatted
    with ``qemu-img``, and handed to libvirt as existing images (``REUSE_EXT``), so
    that they have their mode before QEMU opens them.

    :param domain: the domain.
    """

    def __init__(self, domain: Domain, targets: _targets.Targets | None = None) -> None:
        self.domain = domain
        #: Checks target paths, makes and formats target files.
        self.targets = targets or _targets.Targets()

    def disks(self) -> list[Record]:
        return _libvirt_xml.disks(self.domain.xml())

    def start(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        """Start block job or backup ``name`` as ``params`` describe it.

        ``note(**facts)`` is called with what the outcome will be judged by before
        libvirt is asked.

        :raise InvalidArgument: an option libvirt has no counterpart for, an unknown
            disk or image, an existing target, ...
        :raise BackendError: libvirt refused (its code name and text kept).
        """
        kind = params['type']
        if kind == 'create':
            raise InvalidArgument(f"job '{name}': type create is not available for libvirt "
                                  'domains; create images with qemu-img or a storage pool', name)
        if kind == 'amend':
            raise InvalidArgument(f"job '{name}': type amend is not available for libvirt "
                                  'domains: libvirt has no API to amend an attached image', name)
        for key, why in UNSUPPORTED.items():
            if params.get(key) not in (None, True if key == 'auto_finalize' else None):
                raise InvalidArgument(f"job '{name}': {key} cannot be used with a libvirt "
                                      f'domain ({why})', name)
        if kind == 'backup':
            self._start_backup(name, params, note)
            return
        disk = _libvirt_xml.find_disk(self.disks(), params['device'], name)
        chain = _libvirt_xml.chain_paths(disk)
        target = disk['target']
        speed = params.get('speed') or 0
        if kind == 'stream':
            base = _libvirt_xml.in_chain(disk, params['base'], name, 'base') \
                if params.get('base') else None
            note(disk=target, libvirt_type='pull', chain=chain,
                 expect_chain=_libvirt_jobs.expected_chain(chain, 'pull', None, base))
            if base:
                self.run(name, 'blockRebase', target, base, speed,
                         _libvirt.BLOCK_REBASE_BANDWIDTH_BYTES)
            else:
                self.run(name, 'blockPull', target, speed, _libvirt.BLOCK_PULL_BANDWIDTH_BYTES)
        elif kind == 'commit':
            self._start_commit(name, params, disk, chain, speed, note)
        else:
            self._start_copy(name, params, disk, speed, note)

    def run(self, name: str, command: str, *args: t.Any) -> t.Any:
        with naming(name):
            return self.domain.call(command, *args)

    def _start_commit(self, name: str, params: dict[str, t.Any], disk: Record,
                      chain: list[str], speed: int, note: Note) -> None:
        top = _libvirt_xml.in_chain(disk, params['top'], name, 'top') if params.get('top') \
            else chain[0]
        base = _libvirt_xml.in_chain(disk, params['base'], name, 'base') \
            if params.get('base') else None
        if len(chain) < 2:
            raise InvalidArgument(f"job '{name}': disk '{disk['target']}' has no backing file "
                                  'to commit into', name)
        if base is not None and chain.index(base) <= chain.index(top):
            raise InvalidArgument(f"job '{name}': base '{base}' is not below top '{top}' in "
                                  f"the chain of disk '{disk['target']}'", name)
        active = top == chain[0]
        flags = _libvirt.BLOCK_COMMIT_BANDWIDTH_BYTES
        facts: dict[str, t.Any] = {'disk': disk['target'], 'chain': chain, 'active': active}
        if active:
            flags |= _libvirt.BLOCK_COMMIT_ACTIVE
            facts.update(libvirt_type='active-commit', expect_source=base or chain[-1])
        else:
            facts.update(libvirt_type='commit',
                         expect_chain=_libvirt_jobs.expected_chain(chain, 'commit', top, base))
        note(**facts)
        self.run(name, 'blockCommit', disk['target'], base, None if active else top, speed,
                 flags)

    def _start_copy(self, name: str, params: dict[str, t.Any], disk: Record, speed: int,
                    note: Note) -> None:
        checked = self.targets.check(name, params['target'])
        _targets.require_reuse(name, params['target'], checked, params['reuse_target'])
        exists = checked.exists
        path = checked.path
        sync = params.get('sync') or 'full'
        if sync not in ('full', 'top'):
            raise InvalidArgument(f"job '{name}': a libvirt copy takes sync full or top "
                                  f'(got {sync})', name)
        if params.get('bitmap'):
            raise InvalidArgument(f"job '{name}': a libvirt copy takes no bitmap", name)
        fmt = params.get('target_format') or 'qcow2'
        # The collection makes the file, so libvirt always reuses it.
        flags = _libvirt.BLOCK_COPY_REUSE_EXT
        backing = None
        if sync == 'top':
            flags |= _libvirt.BLOCK_COPY_SHALLOW
            if len(disk['chain']) > 1 and disk['chain'][1]['path']:
                backing = (disk['chain'][1]['path'], disk['chain'][1]['format'] or 'raw')
        transient = self.domain.persistent()
        if transient:
            flags |= _libvirt.BLOCK_COPY_TRANSIENT_JOB
        if params.get('copy_mode') == 'write-blocking':
            flags |= _libvirt.BLOCK_COPY_SYNCHRONOUS_WRITES
        typed: dict[str, t.Any] = {}
        if speed:
            typed['bandwidth'] = speed
        if params.get('granularity'):
            typed['granularity'] = params['granularity']
        if params.get('buf_size'):
            typed['buf-size'] = params['buf_size']
        facts: dict[str, t.Any] = {'disk': disk['target'], 'libvirt_type': 'copy',
                                   'chain': _libvirt_xml.chain_paths(disk), 'expect_source': path,
                                   'target_format': fmt, 'transient_job': transient}
        if not exists:
            facts['created_files'] = [path]
        note(**facts)
        if not exists:
            self._make(name, path, fmt, self.capacity(name, disk['target']),
                       params.get('target_mode'), note, backing)
        self.run(name, 'blockCopy', disk['target'], _libvirt_xml.copy_destination(path, fmt),
                 typed, flags)

    def capacity(self, name: str, target: str) -> int:
        """The virtual size of disk ``target`` in bytes (``virDomainGetBlockInfo``)."""
        info = self.run(name, 'blockInfo', target, 0)
        return int(info[0]) if info else 0

    def _make(self, name: str, path: str, fmt: str, size: int, mode: int | None, note: Note,
              backing: tuple[str, str] | None = None) -> None:
        """Create the (noted) file ``path`` with its mode, then format it as an image.

        :raise InvalidArgument: it cannot be made; if something else made it meanwhile,
            the note is withdrawn.
        """
        try:
            self.targets.create(name, path, mode)
        except _targets.TargetRace:
            note(created_files=[])
            raise
        self.targets.format(name, path, fmt, size, backing)

    def _start_backup(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        """One disk's backup (``block_job type=backup``), its checkpoint named by ``bitmap``."""
        incremental, checkpoint = None, None
        disks = self.disks()
        sync = params.get('sync') or 'full'
        targets = [self._backup_target(name, disks, params['device'], params['target'],
                                       params.get('target_format') or 'qcow2')]
        if sync in ('incremental', 'bitmap'):
            incremental = params['bitmap']
        elif sync != 'full':
            raise InvalidArgument(f"job '{name}': a libvirt backup takes sync full or "
                                  f'incremental (got {sync})', name)
        elif params.get('bitmap'):
            checkpoint = params['bitmap']
        if params.get('speed'):
            raise InvalidArgument(f"job '{name}': libvirt sets no speed for backups", name)
        chosen = [disk['target'] for disk in targets]
        # ``disks`` in the shape the backup module reports; ``backup_disks`` for ownership
        note(libvirt_type='backup', backup_disks=chosen, checkpoint=checkpoint,
             incremental=incremental, created_files=[disk['path'] for disk in targets],
             disks=[{'device': disk['target'], 'target': disk['path'], 'format': disk['format'],
                     'backing': None} for disk in targets])
        made: list[str] = []
        try:
            for disk in targets:
                self.targets.create(name, disk['path'], params.get('target_mode'))
                made.append(disk['path'])
                self.targets.format(name, disk['path'], disk['format'],
                                    self.capacity(name, disk['target']))
        except _targets.TargetRace:
            note(created_files=made)  # the one that appeared is not ours to remove
            raise
        writable = [disk['target'] for disk in _libvirt_xml.writable(disks)]
        ckpt = _libvirt_xml.checkpoint_xml(checkpoint, chosen, writable) if checkpoint else None
        self.run(name, 'backupBegin', _libvirt_xml.backup_xml(targets, incremental), ckpt,
                 _libvirt.BACKUP_BEGIN_REUSE_EXTERNAL)

    def _backup_target(self, name: str, disks: list[Record], device: str, path: str,
                       fmt: str) -> Record:
        disk = _libvirt_xml.find_disk(disks, device, name)
        checked = self.targets.check(name, path)
        if checked.exists:
            raise InvalidArgument(f"job '{name}': target {os.path.abspath(path)} of disk "
                                  f"'{disk['target']}' already exists; choose another path", name)
        return {'target': disk['target'], 'path': checked.path, 'format': fmt}
