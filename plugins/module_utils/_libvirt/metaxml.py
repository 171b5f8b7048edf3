# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's metadata in a libvirt domain: job records as XML, and back.

This is a private module: its API may change between any two releases.
Nothing here does I/O; every function takes or returns XML text.
"""

from __future__ import annotations

import json
import math
import typing as t

from .._errors import LedgerError
from .._lxml import etree
from .domxml import parse_xml, xml_text

#: The collection's XML namespace in a domain's ``<metadata>``.
NAMESPACE = 'https://vmjobs.github.io/xmlns/jobs/1'
#: The prefix libvirt shows it with.
PREFIX = 'vmjobs'

Record = dict[str, t.Any]


def _value(parent: t.Any, tag: str, value: t.Any, key: str | None = None) -> None:
    """Append ``value`` under ``parent`` as element ``tag`` typed by its ``t`` attribute."""
    elem = etree.SubElement(parent, tag)
    if key is not None:
        elem.set('key', key)
    if value is None:
        elem.set('t', 'null')
    elif isinstance(value, bool):
        elem.set('t', 'bool')
        elem.text = 'true' if value else 'false'
    elif isinstance(value, int):
        elem.set('t', 'int')
        elem.text = str(value)
    elif isinstance(value, float):
        elem.set('t', 'float')
        elem.text = repr(value) if math.isfinite(value) else json.dumps(value)
    elif isinstance(value, str):
        elem.set('t', 'str')
        elem.text = value
    elif isinstance(value, (list, tuple)):
        elem.set('t', 'list')
        for item in value:
            _value(elem, 'item', item)
    elif isinstance(value, dict):
        elem.set('t', 'dict')
        for name, item in value.items():
            _value(elem, 'field', item, str(name))
    else:
        raise LedgerError(f'cannot keep a {type(value).__name__} in domain metadata')


def _read(elem: t.Any) -> t.Any:
    kind = elem.get('t')
    text = elem.text or ''
    if kind == 'null':
        return None
    if kind == 'bool':
        return text == 'true'
    if kind == 'int':
        return int(text)
    if kind == 'float':
        return float(json.loads(text)) if text in ('NaN', 'Infinity', '-Infinity') else float(text)
    if kind == 'str':
        return text
    if kind == 'list':
        return [_read(child) for child in elem if isinstance(child.tag, str)]
    if kind == 'dict':
        return {child.get('key'): _read(child) for child in elem if isinstance(child.tag, str)}
    raise LedgerError(f'unknown value type {kind!r} in domain metadata')


#: Record keys shown as attributes of ``<job>`` too, so that ``virsh dumpxml`` reads well.
SHOWN = ('name', 'type', 'state')


def encode_jobs(records: t.Iterable[Record]) -> str:
    """The ``<jobs>`` element that holds every record.

    It is built without a namespace: ``setMetadata`` puts it into the
    collection's namespace (:data:`NAMESPACE`, prefix :data:`PREFIX`), and
    ``metadata()`` hands it back without one.
    """
    root = etree.Element('jobs')
    for record in sorted(records, key=lambda r: r['name']):
        job = etree.SubElement(root, 'job')
        for key in SHOWN:
            if record.get(key) is not None:
                job.set(key, str(record[key]))
        for key, value in record.items():
            _value(job, 'field', value, key)
    return xml_text(root)


def decode_jobs(text: str | None) -> list[Record]:
    """The records of a ``<jobs>`` element (none for None).

    :raise LedgerError: the element cannot be parsed.
    """
    if not text:
        return []
    root = parse_xml(text, 'the vmjobs domain metadata')
    records = []
    for job in root:
        if not isinstance(job.tag, str) or etree.QName(job).localname != 'job':
            continue
        record = {child.get('key'): _read(child) for child in job if isinstance(child.tag, str)}
        if record.get('name'):
            records.append(record)
    return records
