# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the pure part of plugins/module_utils/_libvirt/instant.py."""

from __future__ import annotations

from ansible_collections.vmjobs.qemu.plugins.module_utils import _overlay
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    domxml as _libvirt_xml,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    instant as _instant,
)

CHAIN = _overlay.Chain((_overlay.Image('/b/incr/d.qcow2', 'qcow2'),
                        _overlay.Image('/b/full/d.qcow2', 'qcow2')), 1 << 30)


def wrapped(disk: str) -> str:
    return f'<domain><devices>{disk}</devices></domain>'


def test_the_disk_describes_the_backup_chain() -> None:
    xml = _instant.overlay_disk_xml('/vm/o.qcow2', 'vdb', CHAIN)
    disk = _libvirt_xml.disks(wrapped(xml))[0]
    assert disk['target'] == 'vdb' and disk['format'] == 'qcow2'
    assert _libvirt_xml.chain_paths(disk) == ['/vm/o.qcow2', '/b/incr/d.qcow2', '/b/full/d.qcow2']
    assert [image['format'] for image in disk['chain']] == ['qcow2', 'qcow2', 'qcow2']
    assert xml.count('<backingStore/>') == 1, 'the chain ends'
    assert "bus=\"virtio\"" in xml


def test_the_definition_gets_the_disk_without_the_chain() -> None:
    xml = _instant.overlay_disk_xml('/vm/o.qcow2', 'vdb', None)
    assert 'backingStore' not in xml
    assert _libvirt_xml.chain_paths(_libvirt_xml.disks(wrapped(xml))[0]) == ['/vm/o.qcow2']
