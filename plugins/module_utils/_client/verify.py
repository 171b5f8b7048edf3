# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``verify`` module's logic: a chain checked image by image, then read whole in a job.

This is a private module: its API may change between any two releases.

Every image of the chain is checked alone first (``qemu-img check`` without its backing
file, and its backing link: resolvable and relative; see ``_model/verify``). A chain
that passes is then read whole, every cluster of every image, by a named job in a
qemu-storage-daemon of its own (``chainjob``) that copies it into a ``null-co`` node.
The per-image results are kept in the job's ledger entry, so a re-run reports them.
"""

from __future__ import annotations

import typing as t

from .. import _imageinfo
from .._args.restore import source_params
from .._errors import ChainDamaged, JobFailed
from .._model import verify as _verify
from .._model.session import Record
from .._targets import Runner
from .restore import SourceJob


def check_images(run: Runner, name: str, top: str) -> list[Record]:
    """Each image of the chain under ``top``, checked alone: ``{path, ok, problem}``.

    :raise InvalidArgument: an image cannot be read at all (qemu-img's text kept).
    """
    found = []
    for image in _imageinfo.chain(run, name, top):
        problem = image['problem']
        if image['info'].get('format') == 'qcow2':
            report, stderr = _imageinfo.check(run, name, image['path'], 'qcow2')
            problem = _verify.check_problem(report, stderr) or problem
        found.append(_verify.image_result(image['path'], problem))
    return found


class Verify(SourceJob):
    """Starts (or finds) one named verification (see :class:`SourceJob`)."""

    def verify(self, options: dict[str, t.Any]) -> dict[str, t.Any]:
        """Verify ``options['name']`` unless it exists; wait if asked.

        :raise ChainDamaged: an image has a problem (``images`` says which, and what).
        :raise InvalidArgument: bad options, an unknown backup, an unreadable image.
        :raise JobConflict: the name is taken by a different job.
        :raise JobTimeout: the wait ran out (the read goes on).
        """
        name = options['name']
        params = source_params(options, 'verify')
        images: list[Record] = []

        def probe() -> dict[str, t.Any]:
            source = self.source(name, params)
            images[:] = check_images(self.run, name, source)
            message = _verify.failure(name, images)
            if message is not None:
                raise ChainDamaged(message, name, images)
            top = _imageinfo.info(self.run, name, source)
            return {'source': images[0]['path'], 'source_format': top['format'],
                    'size': int(top['virtual-size'])}

        try:
            result = self.jobs.start(name, params, probe, options['wait'],
                                     options['wait_timeout'])
        except JobFailed as err:
            images = self._remembered(name, images)
            top = images[0]['path'] if images else params.get('source') or params['backup']
            error = err.records[0].get('error') if err.records else str(err)
            images[:1] = [_verify.image_result(top, f'a cluster of its chain cannot be read: '
                                                    f'{error}')]
            self._keep(name, images)
            raise ChainDamaged(t.cast(str, _verify.failure(name, images)), name, images,
                               err.records) from err
        self._keep(name, images)
        out = result.start_output()
        out.update(socket=self.jobs.paths(name).socket, images=self._remembered(name, images))
        return out

    def _keep(self, name: str, images: list[Record]) -> None:
        """Keep what this task found of each image in the job's ledger entry."""
        ledger = self.jobs.client(name).ledger
        if images and not self.jobs.check_mode:
            with ledger.lock():
                if ledger.get(name) is not None:
                    ledger.update(name, images=images)

    def _remembered(self, name: str, images: list[Record]) -> list[Record]:
        """The images this task checked, or those a first run kept in the ledger."""
        if images:
            return images
        entry = self.jobs.client(name).ledger.get(name) or {}
        return list(entry.get('images') or [])
