# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_jobxml.py: every kind of record, one schema."""

from __future__ import annotations

import json
import pathlib

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _jobxml
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    jobs as _libvirt_jobs,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    migration as _migration,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _records,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    shapes as _shapes,
)
from lxml import etree

FIXTURES = pathlib.Path(__file__).parents[2] / 'fixtures'
SCHEMA = etree.RelaxNG(etree.parse(str(FIXTURES / 'job-xml.rng')))


def valid(text: str) -> etree._Element:
    root = etree.fromstring(text.encode())
    SCHEMA.assertValid(root)
    return root


def running_backup() -> dict:
    record = _records.record_from_qmp(
        {'id': 'b1', 'type': 'backup', 'status': 'running', 'current-progress': 1 << 20,
         'total-progress': 4 << 20},
        {'device': 'b1', 'speed': 0, 'auto-finalize': True, 'auto-dismiss': False,
         'busy': True, 'io-status': 'ok'})
    return _records.attach_detail(record, {'params': {'device': 'disk0',
                                                      'target': '/srv/b1.qcow2'}})


def test_a_running_job() -> None:
    (job,) = valid(_jobxml.jobs_document([running_backup()]))
    assert (job.get('name'), job.get('type'), job.get('state')) == ('b1', 'backup', 'running')
    assert job.get('outcome') is None
    assert job.findtext('config/device') == 'disk0'
    assert job.findtext('config/auto-finalize') == 'yes'
    assert (job.findtext('stats/current'), job.findtext('stats/end')) == ('1048576', '4194304')


def test_every_kind_of_record_has_the_one_shape() -> None:
    failed = _records.record_from_ledger({'name': 'gone', 'type': 'mirror', 'state': 'dismissed',
                                          'last': {'outcome': 'failed', 'error': 'No space'}})
    lost = _records.record_from_ledger({'name': 'lost', 'type': 'stream', 'state': 'started'})
    group = _records.group_record('g1', [running_backup()], {
        'type': 'backup', 'disks': [{'member': 'b1', 'device': 'disk0', 'target': '/b'}]})
    replies = json.loads((FIXTURES / 'qemu-7.2-migrate.json').read_text())
    moved = [r for r in (_migration.record_from_migrate(reply, 'move')
                         for reply in replies.values()) if r is not None]
    libvirt = _libvirt_jobs.domain_record('libvirt-domain-backup', {'type': 2, 'operation': 8})
    root = valid(_jobxml.jobs_document([failed, lost, group, libvirt, *moved]))
    jobs = {job.get('name'): job for job in root}
    assert jobs['gone'].get('outcome') == 'failed' and jobs['gone'].findtext('error') == 'No space'
    assert jobs['lost'].get('state') == 'absent' and jobs['lost'].findtext('stats/end') == ''
    assert [m.get('device') for m in jobs['g1'].iter('member')] == ['disk0']
    assert root.xpath("job[@type='migration']/stats/transferred")


def test_no_jobs_is_an_empty_document() -> None:
    assert len(valid(_jobxml.jobs_document([]))) == 0


@pytest.mark.parametrize('keys', [_jobxml.CONFIG, _jobxml.DETAIL])
def test_every_key_shown_is_a_record_key(keys: tuple[str, ...]) -> None:
    assert set(keys) <= _shapes.KEYS
