# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Job records as XML: one ``<job>`` document shape for every kind of job.

This is a private module: its API may change between any two releases.

The shape follows the job description of libvirt's job-API proposal: the job's name,
type and state as attributes, what it was started with under ``<config>``, how far it
is under ``<stats>`` (``<current>`` of ``<end>``), and how it ended. See
docs/job-model.md for a sample; ``job_info format: xml`` returns it.
"""

from __future__ import annotations

import typing as t

from ._lxml import etree

Record = dict[str, t.Any]

#: Record keys shown under ``<config>``: what the job was started with.
CONFIG = ('device', 'target', 'base', 'top', 'sync', 'bitmap', 'dest_uri', 'dest_socket',
          'speed', 'auto_finalize', 'auto_dismiss')
#: Progress keys shown under ``<stats>``, by element name (``current`` of ``end``).
STATS = (('current', 'current'), ('end', 'total'), ('rate', 'rate'),
         ('remaining', 'remaining'))
#: Record keys shown under ``<stats>`` beside the progress (migrations' statistics).
DETAIL = ('downtime', 'expected_downtime', 'setup_time', 'total_time', 'passes',
          'transferred', 'dirty_page_rate')


def _text(value: t.Any) -> str:
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    return str(value)


def _child(parent: t.Any, tag: str, value: t.Any) -> None:
    if value is not None:
        etree.SubElement(parent, tag).text = _text(value)


def job_element(record: Record) -> t.Any:
    """The ``<job>`` element of one record."""
    job = etree.Element('job', name=record['name'], type=str(record['type'] or 'unknown'),
                        state=record['status'])
    for attribute in ('outcome', 'raw_status'):
        if record.get(attribute):
            job.set(attribute.replace('_', '-'), str(record[attribute]))
    config = etree.SubElement(job, 'config')
    for key in CONFIG:
        _child(config, key.replace('_', '-'), record.get(key))
    stats = etree.SubElement(job, 'stats')
    progress = record.get('progress') or {}
    for tag, key in STATS:
        if tag in ('current', 'end') or progress.get(key) is not None:
            element = etree.SubElement(stats, tag)
            if progress.get(key) is not None:
                element.text = str(progress[key])
    for key in DETAIL:
        _child(stats, key.replace('_', '-'), record.get(key))
    _child(job, 'error', record.get('error'))
    for member in record.get('members') or []:
        etree.SubElement(job, 'member', name=str(member.get('name')),
                         device=str(member.get('device')), state=str(member.get('status')))
    return job


def jobs_document(records: t.Sequence[Record]) -> str:
    """A ``<jobs>`` document with one ``<job>`` per record, as text."""
    root = etree.Element('jobs')
    for record in records:
        root.append(job_element(record))
    return t.cast(bytes, etree.tostring(root, pretty_print=True)).decode()
