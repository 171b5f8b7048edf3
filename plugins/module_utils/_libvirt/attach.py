# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restored image made a disk of a libvirt domain, through libvirt's own API.

This is a private module: its API may change between any two releases.
``attachDeviceFlags`` with the live domain and/or its persistent definition, as the
domain has them; no QMP passthrough.
"""

from __future__ import annotations

from .._errors import InvalidArgument, naming
from .._lxml import etree
from . import domxml as _libvirt_xml
from .binding import AFFECT_CONFIG, AFFECT_LIVE
from .connection import Domain

#: The bus a disk target's prefix stands for.
BUSES = {'vd': 'virtio', 'sd': 'scsi', 'hd': 'ide', 'xvd': 'xen'}


def bus_of(name: str, target: str) -> str:
    """The bus of disk target ``target`` (``vdb`` is virtio).

    :raise InvalidArgument: a target name of no known bus.
    """
    for prefix in sorted(BUSES, key=len, reverse=True):
        rest = target[len(prefix):]
        if target.startswith(prefix) and rest.isalpha() and rest.islower():
            return BUSES[prefix]
    raise InvalidArgument(f"job '{name}': attach '{target}' is no disk target name such as "
                          'vdb or sdb', name)


def disk_xml(path: str, fmt: str, target: str, bus: str) -> str:
    """The ``<disk>`` of a file image ``path`` of ``fmt`` as disk ``target`` on ``bus``."""
    disk = etree.Element('disk', type='file', device='disk')
    etree.SubElement(disk, 'driver', name='qemu', type=fmt)
    etree.SubElement(disk, 'source', file=path)
    etree.SubElement(disk, 'target', dev=target, bus=bus)
    return str(etree.tostring(disk, encoding='unicode'))


def attach_disk(domain: Domain, name: str, target: str, path: str, fmt: str,
                dry: bool = False) -> bool:
    """Attach ``path`` to ``domain`` as disk ``target``, live and in its definition as it has
    them; False if that disk is there with that image already. With ``dry``, only check
    (before the image is made): whether it would be attached.

    :raise InvalidArgument: the domain has a disk ``target`` with another image.
    :raise BackendError: libvirt refused (its code name and text kept).
    """
    bus = bus_of(name, target)
    active, persistent = domain.active(), domain.persistent()
    views = ([domain.xml()] if active else []) + ([domain.xml(inactive=True)] if persistent else [])
    missing = False
    for view in views:
        there = [disk for disk in _libvirt_xml.disks(view) if disk['target'] == target]
        if there and there[0]['source'] != path:
            raise InvalidArgument(f"job '{name}': the domain has a disk {target} already "
                                  f"({there[0]['source']}); choose another attach target", name)
        missing = missing or not there
    if not missing or dry:
        return missing
    flags = (AFFECT_LIVE if active else 0) | (AFFECT_CONFIG if persistent else 0)
    with naming(name):
        domain.call('attachDeviceFlags', disk_xml(path, fmt, target, bus), flags)
    return True
