# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_libvirt/attach.py: the disk a restored image becomes."""

from __future__ import annotations

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    attach as _attach,
)


@pytest.mark.parametrize('target, bus', [('vdb', 'virtio'), ('sdc', 'scsi'), ('hdb', 'ide'),
                                         ('xvdb', 'xen'), ('vdaa', 'virtio')])
def test_bus_of(target: str, bus: str) -> None:
    assert _attach.bus_of('r', target) == bus


@pytest.mark.parametrize('target', ['vd', 'disk1', 'VDB', 'vd1', ''])
def test_bus_of_refuses(target: str) -> None:
    with pytest.raises(InvalidArgument, match="job 'r': attach"):
        _attach.bus_of('r', target)


def test_disk_xml() -> None:
    assert _attach.disk_xml('/i/r.qcow2', 'qcow2', 'vdb', 'virtio') == (
        '<disk type="file" device="disk"><driver name="qemu" type="qcow2"/>'
        '<source file="/i/r.qcow2"/><target dev="vdb" bus="virtio"/></disk>')
