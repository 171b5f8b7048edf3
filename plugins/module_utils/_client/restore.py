# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``restore`` module's logic: a disk's point in time copied into a new standalone image.

This is a private module: its API may change between any two releases.

The copy is a job in a qemu-storage-daemon of its own (see ``chainjob``); the source is
an image of a chain, given as such or found by the backup's name and the disk
(``_model/restore_source``) in the chain history of the VM that was backed up.
"""

from __future__ import annotations

import os
import typing as t

from .. import _imageinfo
from .._args.restore import restore_params
from .._errors import ChainDamaged, InvalidArgument
from .._model import verify as _verify
from .._model.restore_source import backup_image
from .._model.session import Attach, Record
from .._targets import Runner
from .backup import chain_ledger
from .chainjob import ChainJobs
from .jobs import JobClient


def backup_source(vm: JobClient, name: str, backup: str, device: str) -> str:
    """The image backup ``backup`` of the VM of ``vm`` wrote for ``device``.

    :raise InvalidArgument: no such backup, it did not succeed, or it has no such disk.
    """
    return backup_image(name, backup, device, chain_ledger(vm.ledger).all(), vm.ledger.all())


def probe_source(run: Runner, name: str, source: str) -> dict[str, t.Any]:
    """What the start needs to know of the source image: its path, format and size.

    :raise InvalidArgument: an image of its chain cannot be read or is missing (the image
        that names it, and qemu-img's text, kept).
    """
    images = _imageinfo.chain(run, name, source)
    last = images[-1]
    if last['backing'] and not os.path.exists(_verify.backing_path(last['path'], last['backing'])):
        raise InvalidArgument(t.cast(str, _verify.failure(name, [
            _verify.image_result(last['path'], last['problem'])])), name)
    top = images[0]['info']
    return {'source': images[0]['path'], 'source_format': top['format'],
            'size': int(top['virtual-size'])}


class SourceJob:
    """A job that reads a chain: a restore or a verification, and where it reads from.

    :param jobs: the daemon jobs under the ledger root.
    :param run: runs qemu-img (the module edge's runner).
    :param vm: the job client of the VM whose backup is read (None for an ``image``).
    """

    def __init__(self, jobs: ChainJobs, run: Runner, vm: JobClient | None) -> None:
        self.jobs = jobs
        self.run = run
        self.vm = vm

    def source(self, name: str, params: dict[str, t.Any]) -> str:
        """The chain's top image: ``image`` as given, or the one ``backup`` wrote for ``device``.

        :raise InvalidArgument: no such backup, it did not succeed, or it has no such disk.
        """
        if params.get('source') is not None:
            return t.cast(str, params['source'])
        return backup_source(t.cast(JobClient, self.vm), name, params['backup'], params['device'])


class Restore(SourceJob):
    """Starts (or finds) one named restore.

    :param attach: attaches an image to the libvirt domain (its backend's ``attach``).
    """

    def __init__(self, jobs: ChainJobs, run: Runner, vm: JobClient | None,
                 attach: Attach | None = None) -> None:
        super().__init__(jobs, run, vm)
        self.attach = attach

    def restore(self, options: dict[str, t.Any]) -> dict[str, t.Any]:
        """Restore ``options['name']`` unless it exists; wait if asked.

        :raise InvalidArgument: bad options, an unknown backup or disk, an unreadable
            source, a target that exists (without ``overwrite``) or is refused.
        :raise JobConflict: the name is taken by a different job.
        :raise BackendError: QEMU refused (nothing is left behind).
        :raise JobFailed: the copy failed (its unfinished target is deleted).
        :raise JobTimeout: the wait ran out (the copy goes on).
        """
        name = options['name']
        params, start_only = restore_params(options)

        def probe() -> dict[str, t.Any]:
            return dict(start_only, **probe_source(self.run, name, self.source(name, params)))

        if options.get('attach'):
            self._attach(name, options['attach'], params, dry=True)  # refuse a clash first
        result = self.jobs.start(name, params, probe, options['wait'], options['wait_timeout'])
        out = result.start_output()
        out['socket'] = self.jobs.paths(name).socket
        if options.get('verify') and succeeded(result.record):
            out['verify'] = self.check_target(name, params)
        if options.get('attach') and succeeded(result.record):
            done = self._attach(name, options['attach'], params, dry=self.jobs.check_mode)
            out['attached'] = {'target': options['attach'], 'changed': done}
            out['changed'] = out['changed'] or done
        return out

    def _attach(self, name: str, disk: str, params: dict[str, t.Any], dry: bool) -> bool:
        if self.attach is None:
            raise InvalidArgument(f"job '{name}': attach needs a libvirt domain", name)
        return self.attach(name, disk, params['target'], params['target_format'], dry)

    def check_target(self, name: str, params: dict[str, t.Any]) -> list[Record]:
        """``qemu-img check`` of a restored image (a raw image has nothing to check).

        :raise ChainDamaged: the check found a problem.
        """
        problem = None
        if params['target_format'] == 'qcow2':
            report, stderr = _imageinfo.check(self.run, name, params['target'], 'qcow2')
            problem = _verify.check_problem(report, stderr)
        images = [_verify.image_result(params['target'], problem)]
        message = _verify.failure(name, images)
        if message is not None:
            raise ChainDamaged(message, name, images)
        return images


def succeeded(record: Record) -> bool:
    """Whether a restore's record says its image is complete and closed."""
    return record.get('outcome') == 'succeeded' and record.get('target_state') == 'closed'
