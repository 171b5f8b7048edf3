# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_libvirt/verbs.py: one table of libvirt calls per verb."""

from __future__ import annotations

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import BackendError
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    binding as _libvirt,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    verbs as _verbs,
)


def test_block_calls() -> None:
    assert _verbs.block_call('c1', 'vda', 'complete', {}) == (
        'blockJobAbort', ('vda', _libvirt.BLOCK_JOB_ABORT_PIVOT))
    assert _verbs.block_call('c1', 'vda', 'set-speed', {'speed': 9}) == (
        'blockJobSetSpeed', ('vda', 9, _libvirt.BLOCK_JOB_SPEED_BANDWIDTH_BYTES))


@pytest.mark.parametrize('verb, text', [
    ('pause', 'libvirt cannot pause a block job'),
    ('change', ('libvirt cannot change the copy mode of a running copy; start it with '
                'copy_mode: write-blocking')),
])
def test_what_libvirt_cannot_do_is_refused_by_name(verb: str, text: str) -> None:
    with pytest.raises(BackendError) as err:
        _verbs.block_call('c1', 'vda', verb, {'copy_mode': 'write-blocking'})
    assert str(err.value) == f"job 'c1': {verb} failed: VIR_ERR_NO_SUPPORT: {text}"


def test_a_domain_job_is_only_aborted() -> None:
    assert _verbs.domain_call('b1', 'cancel') == ('abortJob', ())
    with pytest.raises(BackendError, match='libvirt cannot pause a domain job'):
        _verbs.domain_call('b1', 'pause')


def test_migration_calls() -> None:
    assert _verbs.migration_call('set-speed', {'speed': 3 << 20}) == (
        'migrateSetMaxSpeed', (3, 0))
    assert _verbs.migration_call('dismiss', {}) is None
