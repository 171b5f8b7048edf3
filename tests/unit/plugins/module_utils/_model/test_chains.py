# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/chains.py: a chain's history, its names and marks."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    chains as _chains,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._model.samples import (
    B,
    attempt,
    entry,
    record,
)

Record = dict[str, t.Any]


# -- names ---------------------------------------------------------------------------------------

def test_companion_bitmap_name() -> None:
    assert _chains.companion('nightly') == 'nightly.full'


@pytest.mark.parametrize('name, device, expected', [
    ('b1', 'disk0', 'b1.disk0'),
    ('vm1-2026-11-21', 'virtio-disk0', 'vm1-2026-11-21.virtio-disk0'),
])
def test_member_ids_are_readable(name: str, device: str, expected: str) -> None:
    assert _chains.member_id(name, device) == expected


@pytest.mark.parametrize('name, device', [
    ('b' * 128, 'disk0'),                                    # too long together
    ('b1', '/machine/peripheral-anon/device[0]/virtio-backend'),  # not an id
])
def test_member_ids_fall_back_to_a_hash(name: str, device: str) -> None:
    member = _chains.member_id(name, device)
    assert _chains.ID_RE.fullmatch(member) and len(member) <= 128
    assert member != _chains.member_id(name, device + 'x')


# -- learning outcomes ---------------------------------------------------------------------------

def test_learn_keeps_outcomes_from_records() -> None:
    full = attempt('f1', 'full', outcome=None, state='starting')
    learned = _chains.learn([full], {'f1': record('f1')}, {'f1': entry(full)})
    assert learned[0]['outcome'] == 'succeeded' and learned[0]['state'] == 'started'
    assert full['outcome'] is None, 'the input is not changed'


def test_learn_running_job_is_started_without_outcome() -> None:
    full = attempt('f1', 'full', outcome=None, state='starting')
    learned = _chains.learn([full], {'f1': record('f1', 'running', None)}, {'f1': entry(full)})
    assert learned[0]['state'] == 'started' and learned[0]['outcome'] is None
    assert _chains.status(learned[0], {'f1': record('f1', 'running', None)}) == 'running'


def test_learn_start_that_left_no_entry_never_started() -> None:
    full = attempt('f1', 'full', outcome=None, state='starting')
    learned = _chains.learn([full], {}, {})
    assert learned[0]['state'] == 'not-started'
    assert _chains.status(learned[0], {}) == 'never-started'
    assert _chains.status(dict(learned[0], reset=True), {}) == 'not-started'


def test_learn_forgotten_job_without_outcome_is_gone_for_good() -> None:
    inc = attempt('i1', 'incremental', outcome=None)
    learned = _chains.learn([inc], {}, {})
    assert learned[0]['state'] == 'gone' and _chains.status(learned[0], {}) == 'unknown'
    # a new job that reuses the name later does not speak for the old attempt
    again = _chains.learn(learned, {'i1': record('i1')}, {'i1': entry(inc)})
    assert _chains.status(again[0], {'i1': record('i1')}) == 'unknown'


def test_learn_outcome_survives_forgetting() -> None:
    inc = attempt('i1', 'incremental', outcome=None)
    learned = _chains.learn([inc], {'i1': record('i1', outcome='failed')}, {'i1': entry(inc)})
    forgotten = _chains.learn(learned, {}, {})
    assert forgotten[0]['outcome'] == 'failed'


def test_learn_ignores_an_entry_with_other_parameters() -> None:
    inc = attempt('i1', 'incremental', outcome=None)
    other = dict(entry(inc), params={'type': 'backup', 'device': 'disk0', 'target': '/x'})
    learned = _chains.learn([inc], {'i1': record('i1')}, {'i1': other})
    assert learned[0]['state'] == 'gone' and learned[0]['outcome'] is None


def test_learn_a_reused_name_belongs_to_the_newest_attempt() -> None:
    old = attempt('i1', 'incremental', outcome=None, state='starting')
    new = attempt('i1', 'incremental', outcome=None, state='starting')
    learned = _chains.learn([old, new], {'i1': record('i1')}, {'i1': entry(new)})
    assert [a['state'] for a in learned] == ['not-started', 'started']
    assert [a['outcome'] for a in learned] == [None, 'succeeded']


def test_learn_only_one_job() -> None:
    full, inc = attempt('f1', 'full', outcome=None), attempt('i1', 'incremental', outcome=None)
    learned = _chains.learn([full, inc], {'i1': record('i1')}, {'i1': entry(inc)}, only='i1')
    assert learned[0] == full and learned[1]['outcome'] == 'succeeded'


def test_status_of_a_job_qemu_lost() -> None:
    inc = attempt('i1', 'incremental', outcome=None)
    lost = record('i1', 'absent', None, live=False)
    assert _chains.status(inc, {'i1': lost}) == 'unknown'


# -- pruning -------------------------------------------------------------------------------------

def test_prune_drops_what_a_newer_full_replaced() -> None:
    f1, i1 = attempt('f1', 'full'), attempt('i1', 'incremental', backing='f1')
    f2 = attempt('f2', 'full')
    assert _chains.prune([f1, i1, f2]) == [f2]


def test_prune_keeps_history_until_every_disk_has_a_newer_full() -> None:
    f1, f2 = attempt('f1', 'full'), attempt('f2', 'full', devices=['disk0'])
    assert _chains.prune([f1, f2]) == [f1, f2]


def test_prune_keeps_everything_after_a_failed_full() -> None:
    chain = [attempt('f1', 'full'), attempt('f2', 'full', outcome='failed'),
             attempt('f3', 'full', outcome=None, state='starting')]
    assert _chains.prune(chain) == chain


@pytest.mark.parametrize('target, backing, expected', [
    ('/b/vm1/c1/2026-11-22-incremental/disk0.qcow2', '/b/vm1/c1/2026-11-21-full/disk0.qcow2',
     '../2026-11-21-full/disk0.qcow2'),
    ('/b/i1.qcow2', '/b/f1.qcow2', 'f1.qcow2'),
])
def test_backing_names_are_relative(target: str, backing: str, expected: str) -> None:
    assert _chains.backing_name(target, backing) == expected


def test_the_marks_a_chain_made() -> None:
    assert _chains.chain_marks(B, None, 'bitmap') == [B, B + '.full']
    attempts = [attempt('i1', 'incremental'), attempt('d1', 'differential'),
                attempt('i2', 'incremental')]
    chain = {'marking': ['f1', 'i1'], 'attempts': attempts}
    assert _chains.chain_marks(B, chain, 'checkpoint') == ['i2', 'i1', 'f1']
    assert _chains.chain_marks(B, None, 'checkpoint') == []
