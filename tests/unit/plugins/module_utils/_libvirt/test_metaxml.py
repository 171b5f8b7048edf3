# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_libvirt/metaxml.py: job records kept as domain metadata,
on XML recorded from libvirt 9.0 (``tests/unit/fixtures/libvirt/``)."""

from __future__ import annotations

import math
import pathlib

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import LedgerError
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    metaxml as _metaxml,
)
from lxml import etree

FIXTURES = pathlib.Path(__file__).parents[4] / 'unit' / 'fixtures' / 'libvirt'


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


RECORDS = [
    {'name': 'copy1', 'type': 'mirror', 'state': 'started', 'started_at': 1763700000.25,
     'params': {'type': 'mirror', 'device': 'vda', 'target': '/srv/a b<&>.qcow2',
                'reuse_target': False, 'speed': None},
     'chain': ['/a', '/b'], 'last': {'progress': {'current': 0, 'total': 1 << 40}},
     'empty': '', 'nested': [[1, 2], {}, []], 'odd key!': -3},
    {'name': 'a', 'type': 'migration', 'state': 'dismissed', 'ratio': math.inf},
]


def test_metadata_round_trip() -> None:
    text = _metaxml.encode_jobs(RECORDS)
    assert _metaxml.decode_jobs(text) == sorted(RECORDS, key=lambda r: r['name'])
    shown = etree.fromstring(text)
    assert [(j.get('name'), j.get('type'), j.get('state')) for j in shown] == [
        ('a', 'migration', 'dismissed'), ('copy1', 'mirror', 'started')]


def test_metadata_as_libvirt_hands_it_back() -> None:
    """libvirt returns the element without the namespace it was stored in, indented."""
    assert _metaxml.decode_jobs(fixture('metadata-reply.xml')) == [
        {'name': 'a', 'n': 3, 'l': ['x', None]}]
    domain = etree.fromstring(fixture('domain-metadata.xml').encode())
    stored = domain.find(f'metadata/{{{_metaxml.NAMESPACE}}}jobs')
    assert stored is not None and stored.prefix == _metaxml.PREFIX
    assert _metaxml.decode_jobs(etree.tostring(stored, encoding='unicode')) == [
        {'name': 'a', 'n': 3, 'l': ['x', None]}]


@pytest.mark.parametrize('text', [None, ''])
def test_no_metadata_means_no_records(text: str | None) -> None:
    assert _metaxml.decode_jobs(text) == []


@pytest.mark.parametrize('text, problem', [
    ('<jobs><job', 'cannot parse the vmjobs domain metadata'),
    ("<jobs><job><field key='name' t='set'>x</field></job></jobs>", "unknown value type 'set'"),
])
def test_damaged_metadata(text: str, problem: str) -> None:
    with pytest.raises(LedgerError, match=problem):
        _metaxml.decode_jobs(text)


def test_values_that_cannot_be_kept() -> None:
    with pytest.raises(LedgerError, match='cannot keep a set'):
        _metaxml.encode_jobs([{'name': 'x', 'bad': {1, 2}}])
