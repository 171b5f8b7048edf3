# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_ansible.py: one result shape on success and failure."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._ansible import shaped

Record = dict[str, t.Any]
B1: Record = {'name': 'b1', 'status': 'concluded'}
B2: Record = {'name': 'b2', 'status': 'running'}


def test_a_job_module_returns_its_one_record() -> None:
    assert shaped([B1], {'name': 'b1'}, 'job') == {'job': B1}


def test_a_job_module_that_failed_before_its_job_existed_returns_an_absent_record() -> None:
    out = shaped([], {'name': 'b1'}, 'job')
    assert set(out) == {'job'}
    assert (out['job']['name'], out['job']['status'], out['job']['outcome']) == (
        'b1', 'absent', None)


@pytest.mark.parametrize('names, records, expected', [
    (['b1'], [B1], {'jobs': [B1], 'job': B1}),
    (['b1', 'b2'], [B1, B2], {'jobs': [B1, B2]}),
    (['b1', 'b2'], [], {'jobs': []}),
])
def test_job_wait_returns_jobs_and_job_for_one_name(names: list[str], records: list[Record],
                                                    expected: Record) -> None:
    assert shaped(records, {'name': names}, 'wait') == expected


def test_job_wait_with_one_name_and_no_record_returns_an_absent_job() -> None:
    out = shaped([], {'name': ['b1']}, 'wait')
    assert out['jobs'] == [] and out['job']['status'] == 'absent'


def test_job_info_returns_jobs_only() -> None:
    assert shaped([B1, B2], {'name': ['b1']}, 'jobs') == {'jobs': [B1, B2]}
