# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_errors.py: the tree, messages and failure results."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _errors
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    BackendError,
    InvalidArgument,
    JobConflict,
    JobFailed,
    JobNotFound,
    JobStateError,
    JobTimeout,
    LedgerError,
    MonitorBusy,
    TransportError,
    VmjobsError,
)


@pytest.mark.parametrize('cls, parent', [
    (InvalidArgument, VmjobsError),
    (JobNotFound, VmjobsError),
    (JobConflict, VmjobsError),
    (JobStateError, VmjobsError),
    (JobFailed, VmjobsError),
    (JobTimeout, VmjobsError),
    (LedgerError, VmjobsError),
    (BackendError, VmjobsError),
    (TransportError, VmjobsError),
    (MonitorBusy, TransportError),
    (InvalidArgument, ValueError),
    (VmjobsError, Exception),
])
def test_tree(cls: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(cls, parent)


def test_the_tree_is_drawn_in_the_docstring() -> None:
    doc = _errors.__doc__ or ''
    for cls in (VmjobsError, InvalidArgument, JobNotFound, JobConflict, JobStateError,
                JobFailed, JobTimeout, LedgerError, BackendError, TransportError, MonitorBusy):
        assert cls.__name__ in doc


@pytest.mark.parametrize('cls', [VmjobsError, InvalidArgument, JobNotFound, JobConflict,
                                 LedgerError, TransportError, MonitorBusy])
def test_message_job_and_no_extra_result(cls: type[VmjobsError]) -> None:
    err = cls('it went wrong', 'j1')
    assert str(err) == err.message == 'it went wrong'
    assert err.job == 'j1'
    assert err.result() == {}
    assert cls('no job').job is None


def test_job_state_error_reports_the_record() -> None:
    record = {'name': 'b1', 'status': 'concluded'}
    assert JobStateError('no', 'b1', record).records == [record]
    assert JobStateError('no', 'b1', record).result() == {}
    assert JobStateError('no', 'b1').records == []
    assert JobStateError('no', 'b1', {}).records == []


def test_job_failed_reports_the_records() -> None:
    records = [{'name': 'b1', 'outcome': 'failed'}]
    assert JobFailed("job 'b1' failed: x", 'b1', records).records == records
    assert JobFailed('x').records == []
    assert JobFailed('x').result() == {}


@pytest.mark.parametrize('elapsed, shown', [(0.0, 0.0), (12.34567, 12.346), (300, 300)])
def test_job_timeout_reports_records_and_elapsed(elapsed: float, shown: float) -> None:
    records: list[dict[str, t.Any]] = [{'name': 'b1', 'status': 'running'}]
    err = JobTimeout('timed out', 'b1', records, elapsed)
    assert err.records == records
    assert err.result() == {'elapsed': shown, 'timed_out': True}
    assert JobTimeout('timed out').result() == {'elapsed': 0.0, 'timed_out': True}


def test_every_error_can_carry_records() -> None:
    record = {'name': 'b1', 'status': 'running'}
    assert VmjobsError('x', 'b1', [record]).records == [record]
    assert VmjobsError('x').records == []


def test_backend_error_keeps_qemus_class_and_text(replies: dict[str, t.Any]) -> None:
    error = replies['errors']['job-complete running']
    err = BackendError('job-complete', error['class'], error['desc'])
    desc = "Job 'm1' in state 'running' cannot accept command verb 'complete'"
    assert (err.command, err.error_class, err.desc, err.job) == ('job-complete', 'GenericError',
                                                                 desc, None)
    assert str(err) == ("job-complete failed: GenericError: Job 'm1' in state 'running' cannot "
                        "accept command verb 'complete'")


def test_backend_error_for_a_job(replies: dict[str, t.Any]) -> None:
    error = replies['errors']['block-job-set-speed unknown']
    err = BackendError('block-job-set-speed', error['class'], error['desc'])
    named = err.for_job('nojob')
    assert named is not err
    assert (named.command, named.error_class, named.desc, named.job) == (
        err.command, 'DeviceNotActive', "Block job 'nojob' not found", 'nojob')
    assert str(named) == ("job 'nojob': block-job-set-speed failed: DeviceNotActive: Block job "
                          "'nojob' not found")
    assert named.result() == {}


def test_naming_makes_a_refusal_name_its_job() -> None:
    with pytest.raises(BackendError) as err, _errors.naming('b1'):
        raise BackendError('blockdev-backup', 'GenericError', "Node 'x' not found")
    assert str(err.value) == "job 'b1': blockdev-backup failed: GenericError: Node 'x' not found"
    assert (err.value.job, err.value.error_class) == ('b1', 'GenericError')
    assert isinstance(err.value.__cause__, BackendError)


def test_naming_leaves_an_error_that_names_its_job_and_other_errors_alone() -> None:
    named = BackendError('job-cancel', 'GenericError', 'gone', 'b2')
    with pytest.raises(BackendError) as err, _errors.naming('b1'):
        raise named
    assert err.value is named
    with pytest.raises(TransportError), _errors.naming('b1'):
        raise TransportError('lost the VM')
