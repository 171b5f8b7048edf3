# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay of an instant restore: a new qcow2 image whose backing is a backup chain.

This is a private module: its API may change between any two releases.

The chain is read with ``qemu-img info --backing-chain`` (which fails, with its own
text, on a missing image or a backing file that cannot be opened), and the overlay is
made as every target is (``_targets``: no links, a safe directory, a private mode) and
formatted by ``qemu-img create`` with the chain's top as its backing file, recorded
as an absolute path or relative to the overlay's directory. Nothing is copied: the
overlay is a few hundred KiB whatever the disk's size.

The functions at the top are pure; :class:`Overlays` does the file system work.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing as t

from . import _imageinfo, _targets
from ._errors import InvalidArgument

#: How an overlay records its backing file.
BACKING_MODES = ('absolute', 'relative')
Note = t.Callable[..., None]


@dataclasses.dataclass(frozen=True)
class Image:
    """One image of a chain: its path and format."""

    path: str
    format: str


@dataclasses.dataclass(frozen=True)
class Chain:
    """A backup chain as ``qemu-img info`` reads it: its images top first, its disk size."""

    images: tuple[Image, ...]
    virtual_size: int

    @property
    def top(self) -> Image:
        return self.images[0]


# -- pure ----------------------------------------------------------------------------------------

def parse_chain(job: str, path: str, text: str) -> Chain:
    """The chain ``qemu-img info --backing-chain --output=json`` describes.

    :raise InvalidArgument: the output is no such description.
    """
    try:
        found = json.loads(text)
        if isinstance(found, dict):
            found = [found]
        images = tuple(Image(os.path.normpath(str(entry['filename'])), str(entry['format']))
                       for entry in found)
        size = int(found[0]['virtual-size'])
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise InvalidArgument(f"job '{job}': cannot read what qemu-img says of the backup "
                              f'image {path}: {err}', job) from err
    return Chain(images, size)


def backing_reference(image: str, overlay: str, mode: str) -> str:
    """How the overlay at ``overlay`` names its backing file ``image`` (both absolute)."""
    if mode == 'relative':
        return os.path.relpath(image, os.path.dirname(overlay))
    return image


# -- the file system -----------------------------------------------------------------------------

class Overlays:
    """Reads backup chains and makes overlays on them.

    :param targets: checks, makes and formats the overlay file (and runs ``qemu-img``).
    """

    def __init__(self, targets: _targets.Targets) -> None:
        self.targets = targets

    def chain(self, job: str, image: str) -> Chain:
        """The backup chain whose top is ``image``, every backing file opened.

        :raise InvalidArgument: the image is missing, or an image of its chain cannot be
            opened (qemu-img's text kept), or qemu-img cannot be run.
        """
        if self.targets.run is None:
            raise InvalidArgument(f"job '{job}': cannot read the backup image {image}: no way "
                                  'to run qemu-img here', job)
        if not os.path.exists(image):
            raise InvalidArgument(f"job '{job}': the backup image {image} does not exist", job)
        try:
            status, out, err = self.targets.run(_imageinfo.chain_argv(image))
        except OSError as failure:
            raise InvalidArgument(f"job '{job}': cannot run qemu-img info on the backup image "
                                  f'{image}: {failure.strerror or failure}', job) from failure
        if status:
            raise InvalidArgument(f"job '{job}': the backup chain of {image} cannot be opened: "
                                  f"{_imageinfo.one_line(err or out) or f'exit {status}'}", job)
        return parse_chain(job, image, out)

    def make(self, job: str, image: str, target: str, backing: str, overwrite: bool,
             mode: int | None, note: Note, owner: tuple[int, int] | None = None) -> Chain:
        """Create the overlay ``target`` on the chain of ``image``; return the chain.

        ``note(created_files=[target])`` comes just before the file is made.

        :param backing: ``absolute`` or ``relative``: how the overlay records ``image``.
        :param overwrite: replace a file at ``target`` (else it is refused).
        :param owner: QEMU's (uid, gid), to whom a file root makes is given.
        :raise InvalidArgument: an existing overlay without ``overwrite``, a link, an unsafe
            directory, a chain that cannot be opened, qemu-img failing.
        """
        checked = self.targets.check(job, target, 'overlay')
        if checked.exists and not overwrite:
            raise InvalidArgument(f"job '{job}': overlay {target} already exists; set "
                                  'overwrite: true to replace it', job)
        chain = self.chain(job, os.path.abspath(image))
        if checked.path in {img.path for img in chain.images}:
            raise InvalidArgument(f"job '{job}': overlay {target} is an image of the backup "
                                  'chain itself; choose another path', job)
        if checked.exists:
            os.unlink(checked.path)
        note(created_files=[checked.path])
        try:
            self.targets.create(job, checked.path, mode, owner)
        except _targets.TargetRace:
            note(created_files=[])
            raise
        reference = backing_reference(chain.top.path, checked.path, backing)
        self.targets.format(job, checked.path, 'qcow2', chain.virtual_size,
                            (reference, chain.top.format))
        return chain

    def backing_of(self, job: str, target: str) -> str | None:
        """The backing file the overlay ``target`` records (None: it has none).

        :raise InvalidArgument: qemu-img cannot read it.
        """
        if self.targets.run is None:
            raise InvalidArgument(f"job '{job}': cannot read overlay {target}: no way to run "
                                  'qemu-img here', job)
        return t.cast('str | None', _imageinfo.info(self.targets.run, job, target).get(
            'backing-filename'))
