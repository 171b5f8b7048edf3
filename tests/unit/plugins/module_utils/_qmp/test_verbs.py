# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_qmp/verbs.py: one table of QMP commands per verb."""

from __future__ import annotations

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    vocabulary as _vocabulary,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import verbs as _verbs


@pytest.mark.parametrize('verb', sorted(set(_vocabulary.VERBS) - {'set-speed'}))
def test_job_verbs_address_the_job_by_id(verb: str) -> None:
    command, args = _verbs.job_command('j1', verb, {})
    assert command == f'job-{verb}' and args == {'id': 'j1'}


@pytest.mark.parametrize('verb, arguments, expected', [
    ('set-speed', {'speed': 5}, ('block-job-set-speed', {'device': 'j1', 'speed': 5})),
    ('cancel', {'keep_copy': True}, ('block-job-cancel', {'device': 'j1'})),
    ('change', {'copy_mode': 'write-blocking'},
     ('block-job-change', {'id': 'j1', 'type': 'mirror', 'copy-mode': 'write-blocking'})),
])
def test_block_job_commands(verb: str, arguments: dict, expected: tuple) -> None:
    assert _verbs.job_command('j1', verb, arguments) == expected


def test_migration_commands() -> None:
    assert _verbs.migration_command('cancel', {}) == ('migrate_cancel', {})
    assert _verbs.migration_command('set-speed', {'speed': 7}) == (
        'migrate-set-parameters', {'max-bandwidth': 7})
    assert _verbs.migration_command('dismiss', {}) is None
    assert _verbs.migration_command('migrate', {'uri': 'tcp:h:1'}) == ('migrate', {'uri': 'tcp:h:1'})
