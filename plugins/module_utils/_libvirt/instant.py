# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instant restore on a libvirt domain: attach an overlay on a backup chain, then pull.

This is a private module: its API may change between any two releases.

The overlay (made by the caller's ``make``) is attached with ``attachDeviceFlags`` as a
``<disk>`` whose ``<backingStore>`` elements describe the backup chain, so libvirt knows
every image it opens; the stream is libvirt's ``blockPull``, started as any stream job of
the collection (``start.Starter``). A persistent domain gets the disk in its definition
too, without the chain, which the pull makes unneeded.
"""

from __future__ import annotations

import typing as t

from .. import _overlay
from .._errors import InvalidArgument
from .._lxml import etree
from .._model.session import MakeOverlay, Note
from . import binding as _libvirt
from .start import Starter


def overlay_disk_xml(overlay: str, target: str, chain: _overlay.Chain | None) -> str:
    """The ``<disk>`` of the overlay as virtio disk ``target``, its backing chain described
    when ``chain`` is given (the backup chain, top first)."""
    disk = etree.Element('disk', type='file', device='disk')
    etree.SubElement(disk, 'driver', name='qemu', type='qcow2')
    etree.SubElement(disk, 'source', file=overlay)
    parent = disk
    for image in chain.images if chain is not None else ():
        parent = etree.SubElement(parent, 'backingStore', type='file')
        etree.SubElement(parent, 'format', type=image.format)
        etree.SubElement(parent, 'source', file=image.path)
    if chain is not None:
        etree.SubElement(parent, 'backingStore')  # the end of the chain
    etree.SubElement(disk, 'target', dev=target, bus='virtio')
    return t.cast(str, etree.tostring(disk, encoding='unicode'))


def start(starter: Starter, name: str, params: dict[str, t.Any], note: Note,
          make: MakeOverlay) -> None:
    """Attach the overlay as disk ``params['device']`` and start the pull ``name`` into it.

    A disk of that target already on the overlay (a domain started on it) is pulled into
    as it is.

    :raise InvalidArgument: ``bus`` (libvirt places the disk), a disk of that target on
        another image.
    :raise BackendError: libvirt refused the disk or the pull (its text kept).
    """
    disk, target = params['device'], params['target']
    if params.get('bus'):
        raise InvalidArgument(f"job '{name}': bus cannot be used with a libvirt domain "
                              '(libvirt chooses where the disk goes)', name)
    found = [d for d in starter.disks() if d['target'] == disk]
    if found and found[0]['source'] != target:
        raise InvalidArgument(f"job '{name}': disk '{disk}' exists and runs on "
                              f"{found[0]['source']}, not on the overlay {target}; give the "
                              'target of a new disk', name)
    if not found:
        chain = make(None)
        starter.run(name, 'attachDeviceFlags', overlay_disk_xml(target, disk, chain),
                    _libvirt.AFFECT_LIVE)
        # The domain's disk now: never removed by the collection.
        note(created_files=[])
        if starter.domain.persistent():
            starter.run(name, 'attachDeviceFlags', overlay_disk_xml(target, disk, None),
                        _libvirt.AFFECT_CONFIG)
    starter.start(name, params, note)
