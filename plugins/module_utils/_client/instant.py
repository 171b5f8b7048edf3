# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instant restore: a disk on an overlay of a backup chain, pulled in by a named stream.

This is a private module: its API may change between any two releases.

With ``attach`` the overlay is made and attached, and the stream started, as one named
job of the VM (``JobClient.start`` with a launch of its own): found by name on a re-run
like every job, visible to ``job_info``, ``job_wait`` and ``job``. Without it, only the
overlay is made, for a VM to be started on it; its stream is then an ordinary
``block_job type=stream``.
"""

from __future__ import annotations

import os
import typing as t

from .. import _overlay
from .._errors import InvalidArgument
from .._model.session import Note, Session
from .jobs import JobClient
from .reads import absent_record

#: Looks up the image a backup wrote for a device: (job, backup name, device) -> path.
Resolver = t.Callable[[str, str, str], str]


class InstantRestore:
    """Instant restores on the VM of ``client``.

    :param client: the VM's job client (its backend's ``targets`` run qemu-img).
    :param resolve: finds the chain image of a backup's device (``backup`` + ``device``).
    """

    def __init__(self, client: JobClient, resolve: Resolver | None = None) -> None:
        self.client = client
        self.overlays = _overlay.Overlays(client.backend.targets)
        self.resolve = resolve

    def image(self, name: str, params: dict[str, t.Any]) -> str:
        """The chain image to restore: given, or looked up by backup name and device.

        :raise InvalidArgument: the backup or its device is unknown.
        """
        if params.get('image'):
            return t.cast(str, params['image'])
        if self.resolve is None:
            raise InvalidArgument(f"job '{name}': backup names cannot be looked up here; "
                                  'give image, the path of the chain image', name)
        return os.path.abspath(self.resolve(name, params['backup'], params['backup_device']))

    def run(self, name: str, params: dict[str, t.Any], start_only: dict[str, t.Any],
            attach: bool, wait: str, wait_timeout: float) -> dict[str, t.Any]:
        """Restore: the module's result (``changed``, ``job``, ``overlay``).

        :raise InvalidArgument: a missing chain image, an existing overlay, ...
        :raise BackendError: QEMU or libvirt refused.
        """
        if not attach:
            return self.make_only(name, params, start_only)

        def prepare(_records: t.Any, _entries: t.Any) -> dict[str, t.Any]:
            return dict(start_only, image=self.image(name, params))

        def launch(session: Session, job: str, given: dict[str, t.Any], note: Note) -> None:
            session.start_instant(job, given, note, lambda owner: self.overlays.make(
                job, given['image'], given['target'], given['backing'], given['overwrite'],
                given.get('target_mode'), note, owner))

        result = self.client.start(name, params, wait, wait_timeout, prepare, launch)
        return dict(result.start_output(), overlay=params['target'])

    def make_only(self, name: str, params: dict[str, t.Any],
                  start_only: dict[str, t.Any]) -> dict[str, t.Any]:
        """Make the overlay for a VM to start on; an overlay already on the chain is kept.

        :raise InvalidArgument: an existing file that is no overlay of this chain (unless
            ``overwrite``), a missing chain image, ...
        """
        image, target = self.image(name, params), params['target']
        reference = None
        if os.path.lexists(target) and not start_only['overwrite']:
            reference = _overlay.backing_reference(image, target, params['backing'])
            if self.overlays.backing_of(name, target) == reference:
                return {'changed': False, 'job': absent_record(name), 'overlay': target}
        if self.client.check_mode:
            self.overlays.targets.check(name, target, 'overlay')
            if reference is not None:
                raise InvalidArgument(f"job '{name}': overlay {target} already exists; set "
                                      'overwrite: true to replace it', name)
            return {'changed': True, 'job': absent_record(name), 'overlay': target}
        self.overlays.make(name, image, target, params['backing'], start_only['overwrite'],
                           start_only.get('target_mode'), lambda **_facts: None)
        return {'changed': True, 'job': absent_record(name), 'overlay': target}
