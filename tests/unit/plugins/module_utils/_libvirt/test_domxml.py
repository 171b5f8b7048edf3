# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_libvirt/domxml.py, on XML recorded from libvirt 9.0.

``tests/unit/fixtures/libvirt/`` holds a transient domain with a three-image
chain on ``vda`` (top <- mid <- base) and a flat ``vdb``: before a copy, while
copying, once ready, after the pivot.
"""

from __future__ import annotations

import pathlib

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    domxml as _libvirt_xml,
)
from lxml import etree

FIXTURES = pathlib.Path(__file__).parents[4] / 'unit' / 'fixtures' / 'libvirt'
DIR = '/tmp/vjrec'


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_disks_and_their_chains() -> None:
    vda, vdb = _libvirt_xml.disks(fixture('domain-chain.xml'))
    assert vda['target'] == 'vda' and vda['device'] == 'disk' and not vda['readonly']
    assert _libvirt_xml.chain_paths(vda) == [f'{DIR}/top.qcow2', f'{DIR}/mid.qcow2',
                                             f'{DIR}/base.qcow2']
    assert [image['index'] for image in vda['chain']] == ['2', '3', '4']
    assert vda['format'] == 'qcow2' and vda['mirror'] is None
    assert _libvirt_xml.chain_paths(vdb) == [f'{DIR}/data.qcow2']


@pytest.mark.parametrize('name, ready', [('domain-copy-running.xml', None),
                                         ('domain-copy-ready.xml', 'yes')])
def test_mirror_of_a_copy(name: str, ready: str | None) -> None:
    vda = _libvirt_xml.disks(fixture(name))[0]
    assert vda['mirror'] == {'job': 'copy', 'ready': ready, 'path': f'{DIR}/copy.qcow2',
                             'format': 'qcow2'}


def test_after_the_pivot_the_copy_is_the_source() -> None:
    vda = _libvirt_xml.disks(fixture('domain-after-pivot.xml'))[0]
    assert vda['source'] == f'{DIR}/copy.qcow2' and vda['mirror'] is None
    assert _libvirt_xml.chain_paths(vda) == [f'{DIR}/copy.qcow2']


def test_find_disk_by_target_or_path() -> None:
    found = _libvirt_xml.disks(fixture('domain-chain.xml'))
    assert _libvirt_xml.find_disk(found, 'vdb', 'j')['target'] == 'vdb'
    assert _libvirt_xml.find_disk(found, f'{DIR}/top.qcow2', 'j')['target'] == 'vda'
    with pytest.raises(InvalidArgument) as err:
        _libvirt_xml.find_disk(found, 'vdz', 'j1')
    assert str(err.value) == (f"job 'j1': the domain has no disk 'vdz' (disks: vda "
                              f'({DIR}/top.qcow2), vdb ({DIR}/data.qcow2))')


def test_images_in_the_chain_by_path_or_index() -> None:
    vda = _libvirt_xml.disks(fixture('domain-chain.xml'))[0]
    assert _libvirt_xml.in_chain(vda, f'{DIR}/mid.qcow2', 'j', 'top') == f'{DIR}/mid.qcow2'
    assert _libvirt_xml.in_chain(vda, 'vda[4]', 'j', 'base') == f'{DIR}/base.qcow2'
    with pytest.raises(InvalidArgument, match=r"base '/x.qcow2' is not in the backing chain "
                                              r"of disk 'vda' \(chain: /tmp/vjrec/top.qcow2 ->"):
        _libvirt_xml.in_chain(vda, '/x.qcow2', 'j', 'base')


def test_documents_for_copy_backup_and_checkpoint() -> None:
    copy = etree.fromstring(_libvirt_xml.copy_destination('/srv/c.qcow2', 'raw'))
    assert copy.find('source').get('file') == '/srv/c.qcow2'
    assert copy.find('driver').get('type') == 'raw'
    backup = etree.fromstring(_libvirt_xml.backup_xml(
        [{'target': 'vda', 'path': '/b/vda.qcow2', 'format': 'qcow2'},
         {'target': 'vdb', 'path': '/b/vdb.raw', 'format': 'raw'}], incremental='ck1'))
    assert backup.get('mode') == 'push' and backup.findtext('incremental') == 'ck1'
    assert [(d.get('name'), d.find('target').get('file'), d.find('driver').get('type'))
            for d in backup.iter('disk')] == [('vda', '/b/vda.qcow2', 'qcow2'),
                                              ('vdb', '/b/vdb.raw', 'raw')]
    assert etree.fromstring(_libvirt_xml.backup_xml([])).find('incremental') is None
    ckpt = etree.fromstring(_libvirt_xml.checkpoint_xml('ck2', ['vda'], ['vda', 'vdb']))
    assert ckpt.findtext('name') == 'ck2'
    assert [(d.get('name'), d.get('checkpoint')) for d in ckpt.iter('disk')] == [
        ('vda', 'bitmap'), ('vdb', 'no')]


def test_set_disk_source_flattens_the_definition() -> None:
    changed = _libvirt_xml.set_disk_source(fixture('domain-chain.xml'), 'vda', '/new.qcow2', 'raw')
    assert changed is not None
    vda, vdb = _libvirt_xml.disks(changed)
    assert vda['source'] == '/new.qcow2' and vda['format'] == 'raw' and len(vda['chain']) == 1
    assert vdb['source'] == f'{DIR}/data.qcow2'
    assert _libvirt_xml.set_disk_source(fixture('domain-chain.xml'), 'vdz', '/n', 'raw') is None


def test_each_disk_of_a_backup_can_have_its_own_mode() -> None:
    backup = etree.fromstring(_libvirt_xml.backup_xml(
        [{'target': 'vda', 'path': '/b/vda.qcow2', 'format': 'qcow2', 'since': 'inc1'},
         {'target': 'vdb', 'path': '/b/vdb.qcow2', 'format': 'qcow2', 'since': None}]))
    assert backup.find('incremental') is None
    assert [(d.get('name'), d.get('backupmode'), d.get('incremental'))
            for d in backup.iter('disk')] == [('vda', 'incremental', 'inc1'),
                                              ('vdb', 'full', None)]


def test_the_disks_a_checkpoint_tracks() -> None:
    text = ('<domaincheckpoint><name>full</name><creationTime>1</creationTime><disks>'
            '<disk name="vda" checkpoint="bitmap" bitmap="full"/>'
            '<disk name="vdb" checkpoint="no"/></disks></domaincheckpoint>')
    assert _libvirt_xml.checkpoint_disks(text) == ('full', ['vda'])


PULLED = [{'target': 'vda', 'export': 'p1.vda', 'since': 'p0', 'bitmap': 'nightly',
           'scratch': '/d/p1.vda.fleece.qcow2'}]


def test_a_pull_backup_on_a_unix_socket() -> None:
    backup = etree.fromstring(_libvirt_xml.pull_backup_xml(PULLED, {'socket': '/d/nbd.sock'}))
    assert backup.get('mode') == 'pull'
    assert dict(backup.find('server').attrib) == {'transport': 'unix', 'socket': '/d/nbd.sock'}
    disk = backup.find('disks/disk')
    assert (disk.get('exportname'), disk.get('incremental'), disk.get('exportbitmap')) == (
        'p1.vda', 'p0', 'nightly')
    assert disk.find('scratch').get('file') == '/d/p1.vda.fleece.qcow2'


def test_a_pull_backup_over_tcp_uses_tls() -> None:
    backup = etree.fromstring(_libvirt_xml.pull_backup_xml(
        PULLED, {'host': '::1', 'port': 10809, 'tls_dir': None}))
    assert dict(backup.find('server').attrib) == {'transport': 'tcp', 'tls': 'yes',
                                                  'name': '::1', 'port': '10809'}
