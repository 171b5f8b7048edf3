# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/verdicts.py: can a wait still reach its target."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _model,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    verdicts as _verdicts,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._model.samples import (
    live,
    tombstone,
)

Record = dict[str, t.Any]


# -- can_become_ready and wait verdicts -------------------------------------------------------------

@pytest.mark.parametrize('kind, status, entry, expected', [
    ('mirror', 'created', None, True),
    ('mirror', 'running', None, True),
    ('mirror', 'paused', None, True),
    ('mirror', 'ready', None, True),
    ('mirror', 'standby', None, True),
    ('mirror', 'waiting', None, False),
    ('mirror', 'pending', None, False),
    ('mirror', 'aborting', None, False),
    ('mirror', 'concluded', None, False),
    ('mirror', 'absent', None, False),
    ('commit', 'running', None, True),
    ('commit', 'running', {'active': True}, True),
    ('commit', 'running', {'active': False}, False),
    ('commit', 'running', {}, True),
    ('mirror', 'running', {'active': False}, True),
    ('backup', 'running', None, False),
    ('stream', 'running', None, False),
    ('create', 'running', None, False),
])
def test_can_become_ready(kind: str, status: str, entry: Record | None, expected: bool) -> None:
    assert _verdicts.can_become_ready(live(status, None, kind), entry) is expected


WAIT_CASES = [
    # target absent
    ('absent', live('absent', None), None, 'reached'),
    ('absent', live('running', None), None, 'waiting'),
    ('absent', live('concluded'), None, 'waiting'),
    # target concluded
    ('concluded', live('running', None), None, 'waiting'),
    ('concluded', live('aborting', None), None, 'waiting'),
    ('concluded', live('concluded'), None, 'reached'),
    ('concluded', live('concluded', 'failed'), None, 'reached'),
    ('concluded', live('absent', None), None, 'never'),
    ('concluded', live('absent', None, dismissed=True), None, 'reached'),
    # target pending
    ('pending', live('running', None, 'backup'), None, 'waiting'),
    ('pending', live('waiting', None, 'backup'), None, 'waiting'),
    ('pending', live('pending', None, 'backup'), None, 'reached'),
    ('pending', live('concluded', 'succeeded', 'backup'), None, 'reached'),
    ('pending', live('concluded', 'failed', 'backup'), None, 'never'),
    ('pending', live('concluded', 'canceled', 'backup'), None, 'never'),
    ('pending', live('aborting', None, 'backup'), None, 'waiting'),
    ('pending', live('absent', None, 'backup'), None, 'never'),
    # target ready
    ('ready', live('running', None), None, 'waiting'),
    ('ready', live('paused', None), None, 'waiting'),
    ('ready', live('ready', None), None, 'reached'),
    ('ready', live('standby', None), None, 'reached'),
    # A mirror (or active commit) that went past READY on its normal path counts as ready.
    ('ready', live('waiting', None), None, 'reached'),
    ('ready', live('pending', None), None, 'reached'),
    ('ready', live('concluded'), None, 'reached'),
    ('ready', live('concluded', 'failed'), None, 'never'),
    ('ready', live('concluded', 'canceled'), None, 'never'),
    ('ready', live('aborting', None), None, 'waiting'),
    ('ready', live('waiting', None, 'commit'), {'active': False}, 'never'),
    ('ready', live('waiting', None, 'commit'), {'active': True}, 'reached'),
    ('ready', live('running', None, 'backup'), None, 'never'),
    ('ready', live('waiting', None, 'backup'), None, 'never'),
    ('ready', live('concluded', 'succeeded', 'backup'), None, 'never'),
    ('ready', live('running', None, 'commit'), {'active': True}, 'waiting'),
    ('ready', live('running', None, 'commit'), {'active': False}, 'never'),
    ('ready', live('absent', None), None, 'never'),
    # A job paused through the collection, or stopped on an I/O error, stays until resumed.
    ('ready', live('paused', None), {'user_paused': True}, 'never'),
    ('ready', live('paused', None), {'user_paused': False}, 'waiting'),
    ('ready', live('paused', None), None, 'waiting'),
    ('ready', live('standby', None), {'user_paused': True}, 'reached'),
    ('concluded', live('standby', None), {'user_paused': True}, 'never'),
    ('pending', live('paused', None, 'backup'), {'user_paused': True}, 'never'),
    ('concluded', live('paused', None, 'backup', io_status='nospace'), None, 'never'),
    ('concluded', live('paused', None, 'backup', io_status='ok'), None, 'waiting'),
    ('absent', live('paused', None), {'user_paused': True}, 'waiting'),
]


@pytest.mark.parametrize('target, record, entry, expected', WAIT_CASES)
def test_wait_verdict(target: str, record: Record, entry: Record | None, expected: str) -> None:
    assert _verdicts.wait_verdict(record, target, entry) == expected


@pytest.mark.parametrize('kind, target, expected', [
    ('backup', 'ready', 'never'),
    ('mirror', 'ready', 'reached'),
    ('backup', 'pending', 'reached'),
    ('backup', 'concluded', 'reached'),
    ('backup', 'absent', 'reached'),
])
def test_wait_verdict_of_a_tombstone(kind: str, target: str, expected: str) -> None:
    record = _model.record_from_ledger(tombstone(type=kind))
    assert record['status'] == 'concluded'
    assert _verdicts.wait_verdict(record, target) == expected


@pytest.mark.parametrize('target, expected', [
    ('absent', 'reached'), ('concluded', 'reached'), ('pending', 'reached'),
])
def test_wait_verdict_of_a_job_qemu_dismissed_by_itself(target: str, expected: str) -> None:
    # Auto-dismissed, outcome seen: not live, not dismissed by the collection.
    record = _model.record_from_ledger(tombstone(state='started'))
    assert _verdicts.wait_verdict(record, target) == expected


def test_wait_verdict_unknown_target() -> None:
    with pytest.raises(ValueError, match="unknown wait target 'gone'"):
        _verdicts.wait_verdict(live('running', None), 'gone')


# -- the wait predicates -----------------------------------------------------------------------------

@pytest.mark.parametrize('status, left_ready, paused, concluded, pending', [
    ('created', 'never', 'waiting', 'waiting', 'waiting'),
    ('running', 'never', 'waiting', 'waiting', 'waiting'),
    ('paused', 'never', 'reached', 'waiting', 'waiting'),
    ('ready', 'waiting', 'waiting', 'waiting', 'waiting'),
    ('standby', 'waiting', 'reached', 'waiting', 'waiting'),
    ('waiting', 'reached', 'never', 'waiting', 'waiting'),
    ('pending', 'reached', 'never', 'waiting', 'reached'),
    ('aborting', 'waiting', 'never', 'waiting', 'waiting'),
    ('concluded', 'reached', 'never', 'reached', 'never'),
    ('absent', 'reached', 'never', 'reached', 'never'),
])
def test_wait_predicates(status: str, left_ready: str, paused: str, concluded: str,
                         pending: str) -> None:
    record = {'status': status}
    assert _verdicts.left_ready(record, None) == left_ready
    assert _verdicts.is_paused(record, None) == paused
    assert _verdicts.concluded(record, None) == concluded
    assert _verdicts.pending(record, None) == pending
