# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Internal snapshots of a libvirt domain through libvirt's snapshot API.

This is a private module: its API may change between any two releases.

``virDomainSnapshotCreateXML`` (memory and disks internal), ``virDomainRevertToSnapshot``
and ``virDomainSnapshotDelete`` run to the end before they return, so a start notes
the outcome itself. Should it die before that, :func:`outcome` reads it from the
domain's snapshots. A revert restores the domain's definition as it was at the
snapshot, the collection's metadata included; the records are put back after it.
"""

from __future__ import annotations

import typing as t

from .._errors import InvalidArgument, naming
from .._lxml import etree
from .._model.session import Note, Record
from .._model.vocabulary import check_snapshot_format
from . import domxml as _libvirt_xml
from . import metaxml as _metaxml
from .connection import Domain

#: libvirt's way of reaching each snapshot job's state.
LIBVIRT_TYPE = 'snapshot'


def snapshot_xml(tag: str, chosen: t.Sequence[str], every: t.Sequence[str], memory: bool) -> str:
    """A ``<domainsnapshot>`` with internal snapshots of ``chosen`` (and of the memory)."""
    root = etree.Element('domainsnapshot')
    etree.SubElement(root, 'name').text = tag
    etree.SubElement(root, 'memory', snapshot='internal' if memory else 'no')
    listed = etree.SubElement(root, 'disks')
    for target in every:
        etree.SubElement(listed, 'disk', name=target,
                         snapshot='internal' if target in chosen else 'no')
    return t.cast(str, etree.tostring(root, encoding='unicode'))


def start(domain: Domain, name: str, params: dict[str, t.Any], note: Note) -> None:
    """Save, load or delete snapshot ``params['tag']`` of ``domain``; note the outcome.

    :raise InvalidArgument: ``vmstate`` (libvirt chooses where the VM state goes), an
        unknown disk, a disk that cannot hold internal snapshots.
    :raise BackendError: libvirt refused (its code name and text kept).
    """
    kind, tag = params['type'], params['tag']
    if params.get('vmstate'):
        raise InvalidArgument(f"job '{name}': vmstate cannot be used with a libvirt domain "
                              '(libvirt chooses the image that holds the VM state)', name)
    disks = _libvirt_xml.disks(domain.xml())
    writable = _libvirt_xml.writable(disks)
    every = [disk['target'] for disk in writable]
    chosen = [_libvirt_xml.find_disk(disks, device, name) for device in params['devices']] \
        or writable
    for disk in chosen:
        check_snapshot_format(name, f"disk '{disk['target']}'", disk['format'])
    note(libvirt_type=LIBVIRT_TYPE, disk=None)
    with naming(name):
        if kind == 'snapshot-save':
            xml = snapshot_xml(tag, [d['target'] for d in chosen], every, domain.active())
            domain.call('snapshotCreateXML', xml, 0)
        else:
            snapshot = domain.call('snapshotLookupByName', tag, 0)
            if kind == 'snapshot-load':
                # the revert brings back the definition of the snapshot's time, metadata and
                # all: the job records written since are put back
                kept = domain.metadata(_metaxml.NAMESPACE)
                domain.call('revertToSnapshot', snapshot, 0)
                if kept is not None:
                    domain.set_metadata(kept, _metaxml.PREFIX, _metaxml.NAMESPACE)
            else:
                domain.snapshot_delete(snapshot)
    note(last={'status': 'concluded', 'outcome': 'succeeded', 'error': None})


def outcome(domain: Domain, entry: Record) -> tuple[str, str | None]:
    """How a snapshot job whose start did not note its end went, from the domain's
    snapshots: saved (the tag exists), deleted (it does not), loaded (it is current)."""
    tag = (entry.get('params') or {}).get('tag')
    names = domain.call('snapshotListNames', 0)
    kind = entry.get('type')
    if kind == 'snapshot-save':
        done = tag in names
    elif kind == 'snapshot-delete':
        done = tag not in names
    else:
        done = bool(domain.call('hasCurrentSnapshot', 0)) and \
            domain.call('snapshotCurrent', 0).getName() == tag
    if done:
        return 'succeeded', None
    return 'failed', f"libvirt shows no sign of the {kind} of snapshot '{tag}'"
