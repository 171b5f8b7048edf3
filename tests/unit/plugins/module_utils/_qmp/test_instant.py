# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the pure part of plugins/module_utils/_qmp/instant.py."""

from __future__ import annotations

from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import (
    instant as _instant,
)

BLOCKS = [{'device': '', 'qdev': '/machine/peripheral/disk0/virtio-backend',
           'inserted': {'node-name': 'disk0-fmt'}}]
NODES = [{'node-name': 'disk0-fmt', 'drv': 'qcow2', 'file': '/vm/disk0.qcow2'},
         {'node-name': 'disk0-file', 'drv': 'file', 'file': '/vm/disk0.qcow2'}]


def test_the_image_of_an_existing_disk() -> None:
    assert _instant.existing_image(BLOCKS, NODES, 'disk0') == '/vm/disk0.qcow2'
    assert _instant.existing_image(BLOCKS, NODES, 'disk0-fmt') == '/vm/disk0.qcow2'


def test_a_new_disk_has_none() -> None:
    assert _instant.existing_image(BLOCKS, NODES, 'restored') is None


def test_device_ids_are_the_peripheral_children() -> None:
    members = [{'name': 'type', 'type': 'string'},
               {'name': 'disk0', 'type': 'child<virtio-blk-pci>'},
               {'name': 'hotplug1', 'type': 'child<pcie-root-port>'}]
    assert _instant.device_ids(members) == {'disk0', 'hotplug1'}
