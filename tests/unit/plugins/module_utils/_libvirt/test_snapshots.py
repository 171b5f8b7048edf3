# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the document plugins/module_utils/_libvirt/snapshots.py hands libvirt."""

from __future__ import annotations

from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    snapshots as _libvirt_snapshots,
)
from lxml import etree


def test_internal_snapshots_of_the_chosen_disks_and_the_memory() -> None:
    root = etree.fromstring(_libvirt_snapshots.snapshot_xml('before', ['vda'], ['vda', 'vdb'],
                                                            memory=True))
    assert root.findtext('name') == 'before'
    assert root.find('memory').get('snapshot') == 'internal'
    assert [(d.get('name'), d.get('snapshot')) for d in root.iter('disk')] == [
        ('vda', 'internal'), ('vdb', 'no')]
    off = etree.fromstring(_libvirt_snapshots.snapshot_xml('t', ['vda'], ['vda'], memory=False))
    assert off.find('memory').get('snapshot') == 'no'
