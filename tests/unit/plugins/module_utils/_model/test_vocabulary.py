# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/vocabulary.py: names, verbs, progress, outcome."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    vocabulary as _vocabulary,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    QEMU_STATUSES,
    QEMU_VERB_TABLE,
    qemu_accepts,
)

Record = dict[str, t.Any]


# -- names ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', [
    'a', 'Z', 'backup-disk0', 'move.disk0_2026-11-21', 'x' * 128, 'a1', 'A-._',
])
def test_validate_name_accepts_qemu_ids(name: str) -> None:
    assert _vocabulary.validate_name(name) == name


@pytest.mark.parametrize('name', [
    '', '1bad', '-a', '.x', '_x', 'a b', 'a/b', '../x', '/abs', 'x' * 129, 'caf\u00e9', 'a:b',
    'a\x00', 'a\tb', ' a',
])
def test_validate_name_rejects(name: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _vocabulary.validate_name(name)
    assert repr(name) in str(err.value)
    assert '1-128 characters' in str(err.value)


@pytest.mark.parametrize('name', [None, 7, b'abc', ['a']])
def test_validate_name_rejects_non_strings(name: t.Any) -> None:
    with pytest.raises(InvalidArgument):
        _vocabulary.validate_name(name)


@pytest.mark.parametrize('name', ['a\n', 'backup-disk0\n'])
def test_validate_name_rejects_trailing_newline(name: str) -> None:
    with pytest.raises(InvalidArgument):
        _vocabulary.validate_name(name)


# -- verbs -------------------------------------------------------------------------------------------

def test_statuses_are_qemus_without_undefined_and_null() -> None:
    assert set(_vocabulary.STATUSES) == set(QEMU_STATUSES) - {'undefined', 'null'}
    assert _vocabulary.ACTIVE == set(_vocabulary.STATUSES) - {'concluded'}
    assert set(_vocabulary.VERBS) == set(QEMU_VERB_TABLE)


VERB_CELLS = [(verb, status) for verb in QEMU_VERB_TABLE for status in _vocabulary.STATUSES]


@pytest.mark.parametrize('verb, status', VERB_CELLS)
def test_verb_allowed_matches_qemus_verb_table(verb: str, status: str) -> None:
    assert _vocabulary.verb_allowed(verb, status) is qemu_accepts(verb, status)


def test_complete_is_accepted_in_standby(nodes_replies: dict[str, t.Any]) -> None:
    # Recorded: job-complete on a paused READY mirror (standby) returns {}.
    assert nodes_replies['accepted'] == {'job-complete standby': {}}
    assert _vocabulary.verb_allowed('complete', 'standby')


@pytest.mark.parametrize('key, verb, status', [
    ('job-cancel concluded', 'cancel', 'concluded'),
    ('job-finalize concluded', 'finalize', 'concluded'),
    ('job-pause pending', 'pause', 'pending'),
])
def test_recorded_refusals_are_not_allowed(nodes_replies: dict[str, t.Any], key: str, verb: str,
                                           status: str) -> None:
    error = nodes_replies['errors'][key]
    assert f"in state '{status}' cannot accept command verb '{verb}'" in error['desc']
    assert not _vocabulary.verb_allowed(verb, status)


@pytest.mark.parametrize('status, verbs', [
    ('created', ['cancel', 'pause', 'resume', 'set-speed']),
    ('running', ['cancel', 'pause', 'resume', 'set-speed']),
    ('paused', ['cancel', 'pause', 'resume', 'set-speed']),
    ('ready', ['cancel', 'pause', 'resume', 'set-speed', 'complete']),
    ('standby', ['cancel', 'pause', 'resume', 'set-speed', 'complete']),
    ('waiting', ['cancel']),
    ('pending', ['cancel', 'finalize']),
    ('concluded', ['dismiss']),
    ('absent', []),
])
def test_allowed_verbs_in_table_order(status: str, verbs: list[str]) -> None:
    assert _vocabulary.allowed_verbs(status) == verbs


def test_verb_allowed_unknown_verb_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        _vocabulary.verb_allowed('change', 'running')


# -- progress and outcome ----------------------------------------------------------------------------

@pytest.mark.parametrize('current, total, expected', [
    (16777216, 67108864, 25.0),
    (1, 3, 33.3),
    (2, 3, 66.7),
    (0, 10, 0.0),
    (10, 10, 100.0),
    (11, 10, 100.0),
    (None, 10, None),
    (5, None, None),
    (5, 0, None),
    (0, 0, None),
])
def test_percent(current: int | None, total: int | None, expected: float | None) -> None:
    assert _vocabulary.percent(current, total) == expected


@pytest.mark.parametrize('status, error, cancel_requested, expected', [
    ('running', None, False, None),
    ('ready', None, True, None),
    ('aborting', 'Operation canceled', False, None),
    ('pending', None, False, None),
    ('concluded', None, False, 'succeeded'),
    ('concluded', None, True, 'canceled'),
    ('concluded', 'Operation canceled', False, 'canceled'),
    ('concluded', 'Operation cancelled', False, 'canceled'),
    ('concluded', 'No space left on device', False, 'failed'),
    ('concluded', 'No space left on device', True, 'failed'),
    ('concluded', '', False, 'failed'),
])
def test_outcome(status: str, error: str | None, cancel_requested: bool,
                 expected: str | None) -> None:
    assert _vocabulary.outcome(status, error, cancel_requested) == expected
