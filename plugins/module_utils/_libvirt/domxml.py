# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt XML, read and written with lxml: disks, copy/backup/checkpoint documents.

This is a private module: its API may change between any two releases.
Nothing here does I/O; every function takes or returns XML text.
"""

from __future__ import annotations

import os
import typing as t

from .._errors import InvalidArgument, LedgerError
from .._lxml import etree

Disk = dict[str, t.Any]
Record = dict[str, t.Any]


def parse_xml(text: str, what: str) -> t.Any:
    """The root element of ``text``.

    :raise LedgerError: ``text`` (``what``) is no XML.
    """
    try:
        return etree.fromstring(text.encode())
    except etree.XMLSyntaxError as err:
        raise LedgerError(f'cannot parse {what}: {err}') from err


def _source(elem: t.Any) -> str | None:
    """The path (or network name) of a ``<source>`` element."""
    if elem is None:
        return None
    found = elem.get('file') or elem.get('dev') or elem.get('name') or elem.get('volume')
    return t.cast('str | None', found)


def _chain(disk: t.Any) -> list[dict[str, t.Any]]:
    """The disk's images, top first: path, format and libvirt's index of each."""
    top = disk.find('source')
    driver = disk.find('driver')
    images = [{'path': _source(top), 'format': driver.get('type') if driver is not None else None,
               'index': top.get('index') if top is not None else None}]
    store = disk.find('backingStore')
    while store is not None and store.find('source') is not None:
        fmt = store.find('format')
        source = store.find('source')
        images.append({'path': _source(source),
                       'format': fmt.get('type') if fmt is not None else None,
                       'index': store.get('index') or source.get('index')})
        store = store.find('backingStore')
    return images


def disks(domain_xml: str) -> list[Disk]:
    """Every ``<disk>`` of a domain: target, device kind, chain, and the ``<mirror>`` if any."""
    root = parse_xml(domain_xml, 'domain XML')
    found = []
    for disk in root.iterfind('devices/disk'):
        target = disk.find('target')
        mirror = disk.find('mirror')
        mirrored = None
        if mirror is not None:
            mirror_fmt = mirror.find('format')
            mirrored = {'job': mirror.get('job'), 'ready': mirror.get('ready'),
                        'path': _source(mirror.find('source')) or mirror.get('file'),
                        'format': mirror_fmt.get('type') if mirror_fmt is not None
                        else mirror.get('format')}
        chain = _chain(disk)
        found.append({
            'target': target.get('dev') if target is not None else None,
            'device': disk.get('device', 'disk'),
            'type': disk.get('type'),
            'readonly': disk.find('readonly') is not None,
            'source': chain[0]['path'],
            'format': chain[0]['format'],
            'chain': chain,
            'mirror': mirrored,
        })
    return found


def writable(found: t.Sequence[Disk]) -> list[Disk]:
    """The disks a backup or snapshot takes by default: read-write disks (no CD-ROMs or
    floppies)."""
    return [disk for disk in found if disk['device'] == 'disk' and not disk['readonly']]


def chain_paths(disk: Disk) -> list[str]:
    """The paths of a disk's images, top first."""
    return [image['path'] for image in disk['chain'] if image['path']]


def find_disk(found: t.Sequence[Disk], device: str, job: str) -> Disk:
    """The disk whose target (``vda``) or top image path is ``device``.

    :raise InvalidArgument: no such disk; the message lists the domain's disks.
    """
    path = os.path.abspath(device) if '/' in device else None
    for disk in found:
        if disk['target'] == device or (path and disk['source'] == path):
            return disk
    listed = ', '.join(f"{d['target']} ({d['source']})" for d in found) or 'none'
    raise InvalidArgument(f"job '{job}': the domain has no disk '{device}' (disks: {listed})", job)


def in_chain(disk: Disk, wanted: str, job: str, what: str) -> str:
    """The path of an image of ``disk``'s chain, given as a path or as ``vda[N]``.

    :raise InvalidArgument: it is not in the chain.
    """
    for image in disk['chain']:
        if wanted in (image['path'], f"{disk['target']}[{image['index']}]") or (
                '/' in wanted and image['path'] == os.path.abspath(wanted)):
            return t.cast(str, image['path'])
    shown = ' -> '.join(chain_paths(disk)) or 'empty'
    raise InvalidArgument(f"job '{job}': {what} '{wanted}' is not in the backing chain of disk "
                          f"'{disk['target']}' (chain: {shown})", job)


def xml_text(elem: t.Any) -> str:
    """``elem`` as XML text."""
    return t.cast(str, etree.tostring(elem, encoding='unicode'))


def copy_destination(path: str, fmt: str) -> str:
    """The ``<disk>`` a ``blockCopy`` copies to."""
    disk = etree.Element('disk', type='file')
    etree.SubElement(disk, 'source', file=path)
    etree.SubElement(disk, 'driver', type=fmt)
    return xml_text(disk)


def backup_xml(targets: t.Sequence[Disk], incremental: str | None = None) -> str:
    """A push-mode ``<domainbackup>`` of the disks in ``targets`` (target, path, format).

    A disk with ``since`` (a checkpoint, or None for a full copy) gets its own mode,
    overriding ``incremental`` for that disk.
    """
    root = etree.Element('domainbackup', mode='push')
    if incremental:
        etree.SubElement(root, 'incremental').text = incremental
    listed = etree.SubElement(root, 'disks')
    for disk in targets:
        elem = etree.SubElement(listed, 'disk', name=disk['target'], backup='yes', type='file')
        if 'since' in disk:
            elem.set('backupmode', 'incremental' if disk['since'] else 'full')
            if disk['since']:
                elem.set('incremental', disk['since'])
        etree.SubElement(elem, 'target', file=disk['path'])
        etree.SubElement(elem, 'driver', type=disk['format'])
    return xml_text(root)


def pull_backup_xml(disks: t.Sequence[Disk], server: t.Mapping[str, t.Any]) -> str:
    """A pull-mode ``<domainbackup>``: its NBD server on UNIX socket ``server['socket']``,
    or on TCP ``server['host']``/``['port']`` with TLS (libvirtd's certificates); per disk
    (``target``) its scratch image (``scratch``), export name (``export``), and for an
    incremental the checkpoint it reads changes since (``since``) and the name of the
    exported bitmap (``bitmap``)."""
    root = etree.Element('domainbackup', mode='pull')
    if server.get('host'):
        etree.SubElement(root, 'server', transport='tcp', tls='yes', name=server['host'],
                         port=str(server['port']))
    else:
        etree.SubElement(root, 'server', transport='unix', socket=server['socket'])
    listed = etree.SubElement(root, 'disks')
    for disk in disks:
        elem = etree.SubElement(listed, 'disk', name=disk['target'], backup='yes', type='file',
                                exportname=disk['export'])
        elem.set('backupmode', 'incremental' if disk['since'] else 'full')
        if disk['since']:
            elem.set('incremental', disk['since'])
            elem.set('exportbitmap', disk['bitmap'])
        etree.SubElement(elem, 'scratch', file=disk['scratch'])
        etree.SubElement(elem, 'driver', type='qcow2')
    return xml_text(root)


def checkpoint_xml(name: str, targets: t.Sequence[str], all_targets: t.Sequence[str]) -> str:
    """A ``<domaincheckpoint>`` tracking ``targets`` (other disks of the domain excluded)."""
    root = etree.Element('domaincheckpoint')
    etree.SubElement(root, 'name').text = name
    listed = etree.SubElement(root, 'disks')
    for target in all_targets:
        etree.SubElement(listed, 'disk', name=target,
                         checkpoint='bitmap' if target in targets else 'no')
    return xml_text(root)


def checkpoint_disks(checkpoint_xml_text: str) -> tuple[str, list[str]]:
    """A ``<domaincheckpoint>``'s name and the disks it tracks with a bitmap."""
    root = parse_xml(checkpoint_xml_text, 'checkpoint XML')
    return (root.findtext('name') or '',
            [disk.get('name') for disk in root.iterfind('disks/disk')
             if disk.get('checkpoint', 'bitmap') == 'bitmap'])


def set_disk_source(domain_xml: str, target: str, path: str, fmt: str) -> str | None:
    """The domain XML with disk ``target`` pointing at ``path`` (a flat image), or None."""
    root = parse_xml(domain_xml, 'domain XML')
    for disk in root.iterfind('devices/disk'):
        elem = disk.find('target')
        if elem is None or elem.get('dev') != target:
            continue
        disk.set('type', 'file')
        source = disk.find('source')
        if source is None:
            source = etree.SubElement(disk, 'source')
        for key in list(source.attrib):
            del source.attrib[key]
        source.set('file', path)
        driver = disk.find('driver')
        if driver is not None:
            driver.set('type', fmt)
        for store in disk.findall('backingStore'):
            disk.remove(store)
        return xml_text(root)
    return None
