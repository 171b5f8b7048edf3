# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/planning.py: which backup a new one builds on,
the refusals, and ``auto``."""

from __future__ import annotations

import re
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    chains as _chains,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    planning as _planning,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._model.samples import (
    B,
    attempt,
    everything,
    record,
)

Record = dict[str, t.Any]


def plan(mode: str, attempts: list[Record], records: dict[str, Record] | None = None,
         device: str = 'disk0', exists: t.Callable[[str], bool] = everything) -> Record:
    return _planning.plan_disk('new', device, mode, B, attempts, records or {}, exists)


def refusal(mode: str, attempts: list[Record], records: dict[str, Record] | None = None,
            exists: t.Callable[[str], bool] = everything) -> str:
    with pytest.raises(InvalidArgument) as caught:
        plan(mode, attempts, records, exists=exists)
    message = str(caught.value)
    assert message.startswith("job 'new': ") and '\n' not in message
    return message


# -- planning ------------------------------------------------------------------------------------

def test_full_clears_both_bitmaps_and_needs_no_history() -> None:
    assert plan('full', []) == {
        'backing': None, 'backing_format': None, 'base': None, 'bitmap': None,
        'bitmap_mode': None, 'sync': 'full', 'reset': ['nightly', 'nightly.full']}


def test_full_incremental_incremental_differential() -> None:
    chain = [attempt('f1', 'full')]
    step = plan('incremental', chain)
    assert step == {'backing': '/b/f1/disk0.qcow2', 'backing_format': 'qcow2', 'base': 'f1',
                    'bitmap': 'nightly', 'bitmap_mode': 'on-success', 'sync': 'bitmap',
                    'reset': []}
    chain.append(attempt('i1', 'incremental', backing='f1'))
    assert plan('incremental', chain)['base'] == 'i1'
    chain.append(attempt('i2', 'incremental', backing='i1'))
    step = plan('differential', chain)
    assert (step['base'], step['bitmap'], step['bitmap_mode']) == ('f1', 'nightly.full', 'never')
    assert step['backing'] == '/b/f1/disk0.qcow2'
    chain.append(attempt('d1', 'differential', backing='f1'))
    assert plan('incremental', chain)['base'] == 'i2', 'a differential is no base'


def test_failed_and_canceled_incrementals_are_passed_over() -> None:
    chain = [attempt('f1', 'full'), attempt('i1', 'incremental', backing='f1'),
             attempt('i2', 'incremental', outcome='failed', backing='i1'),
             attempt('i3', 'incremental', outcome='canceled', backing='i1'),
             attempt('i4', 'incremental', outcome=None, state='not-started', backing='i1')]
    assert plan('incremental', chain)['base'] == 'i1'


def test_differential_outcomes_do_not_matter() -> None:
    chain = [attempt('f1', 'full'), attempt('d1', 'differential', outcome='failed'),
             attempt('d2', 'differential', outcome=None, state='gone')]
    assert plan('differential', chain)['base'] == 'f1'
    assert plan('incremental', chain)['base'] == 'f1'


@pytest.mark.parametrize('mode', ['incremental', 'differential'])
def test_no_full_yet(mode: str) -> None:
    message = refusal(mode, [])
    assert "there is no full backup of disk 'disk0' with bitmap 'nightly' to build " \
        f"{_chains.a_mode(mode)} backup on" in message
    assert message.endswith('run a full backup first')


def test_a_full_of_other_disks_does_not_count() -> None:
    assert 'there is no full backup' in refusal('incremental', [
        attempt('f1', 'full', devices=['disk1'])])


@pytest.mark.parametrize('outcome, state, text', [
    ('failed', 'started', "'f2', failed; run a full backup"),
    ('canceled', 'started', "'f2', was canceled; run a full backup"),
    (None, 'not-started', "'f2', did not start cleanly"),
    (None, 'gone', "'f2', has an outcome that was never seen"),
])
@pytest.mark.parametrize('mode', ['incremental', 'differential'])
def test_a_full_that_did_not_succeed_breaks_the_chain(mode: str, outcome: str | None, state: str,
                                                      text: str) -> None:
    chain = [attempt('f1', 'full'), attempt('i1', 'incremental', backing='f1'),
             attempt('f2', 'full', outcome=outcome, state=state, reset=True)]
    message = refusal(mode, chain)
    assert "the last full backup of disk 'disk0' with bitmap 'nightly'" in message
    assert text in message


@pytest.mark.parametrize('mode, base', [('incremental', 'i1'), ('differential', 'f1')])
def test_a_full_whose_start_failed_before_touching_the_bitmaps_does_not_count(
        mode: str, base: str) -> None:
    chain = [attempt('f1', 'full'), attempt('i1', 'incremental', backing='f1'),
             attempt('f2', 'full', outcome=None, state='not-started')]
    assert _chains.status(chain[-1], {}) == 'never-started'
    assert plan(mode, chain)['base'] == base
    assert 'there is no full backup' in refusal('incremental', chain[2:])


def test_an_unknown_incremental_refuses_incrementals_but_not_differentials() -> None:
    chain = [attempt('f1', 'full'), attempt('i1', 'incremental', outcome=None, state='gone')]
    message = refusal('incremental', chain)
    assert "incremental backup 'i1' of disk 'disk0' has an outcome that was never seen" in message
    assert "bitmap 'nightly' may have been cleared; run a full backup" in message
    assert plan('differential', chain)['base'] == 'f1'


def test_an_unknown_incremental_before_a_succeeded_one_does_not_matter() -> None:
    chain = [attempt('f1', 'full'), attempt('i1', 'incremental', outcome=None, state='gone'),
             attempt('i2', 'incremental', backing='f1')]
    assert plan('incremental', chain)['base'] == 'i2'


@pytest.mark.parametrize('mode', ['full', 'incremental', 'differential'])
def test_a_running_backup_of_the_disk_refuses(mode: str) -> None:
    chain = [attempt('f1', 'full'), attempt('d1', 'differential', outcome=None)]
    message = refusal(mode, chain, {'d1': record('d1', 'running', None)})
    assert "differential backup 'd1' of disk 'disk0' with bitmap 'nightly' is still running" \
        in message


def test_gone_images_refuse() -> None:
    chain = [attempt('f1', 'full'), attempt('i1', 'incremental', backing='f1'),
             attempt('i2', 'incremental', backing='i1')]
    message = refusal('incremental', chain, exists=lambda path: path != '/b/f1/disk0.qcow2')
    assert "image /b/f1/disk0.qcow2 of full backup 'f1' (disk 'disk0')" in message
    assert message.endswith('is gone; run a full backup')
    message = refusal('incremental', chain, exists=lambda path: path != '/b/i2/disk0.qcow2')
    assert "image /b/i2/disk0.qcow2 of incremental backup 'i2'" in message
    # a differential needs the full only
    assert plan('differential', chain, exists=lambda path: not path.startswith('/b/i'))['base'] == 'f1'


def test_only_the_disks_chain_counts() -> None:
    chain = [attempt('f1', 'full'), attempt('i1', 'incremental', devices=['disk1'],
                                            backing='f1')]
    assert plan('incremental', chain, device='disk0')['base'] == 'f1'
    assert plan('incremental', chain, device='disk1')['base'] == 'i1'


def test_a_previous_attempt_of_the_same_name_is_ignored() -> None:
    chain = [attempt('f1', 'full'), attempt('new', 'incremental', outcome=None)]
    assert plan('incremental', chain, {'new': record('new', 'running', None)})['base'] == 'f1'


@pytest.mark.parametrize('kind, expected', [('bitmap', 'nightly'), ('checkpoint', 'inc1')])
def test_the_mark_an_incremental_reads(kind: t.Any, expected: str) -> None:
    step = {'sync': 'bitmap', 'bitmap': 'nightly', 'base': 'inc1'}
    assert _planning.mark(step, kind) == expected
    assert _planning.mark(dict(step, sync='full'), kind) is None


def test_a_missing_checkpoint_is_refused_with_its_disk() -> None:
    source = {'device': 'vdb', 'node': 'vdb', 'marks': {'full': None}}
    _planning.check_mark('inc2', source, 'full', 'checkpoint')
    with pytest.raises(InvalidArgument, match=re.escape(
            "job 'inc2': checkpoint 'inc1' of disk 'vdb' is missing; run a full backup")):
        _planning.check_mark('inc2', source, 'inc1', 'checkpoint')


# -- per-disk modes and auto ---------------------------------------------------------------------

def source(marks: dict[str, str | None] | None = None) -> Record:
    return {'device': 'disk0', 'node': 'disk0-fmt',
            'marks': {B: None, B + '.full': None} if marks is None else marks}


def step(mode: str, attempts: list[Record], marks: dict[str, str | None] | None = None,
         exists: t.Callable[[str], bool] = everything) -> Record:
    return _planning.plan_step('new', 'disk0', mode, B, attempts, {}, exists, source(marks),
                               'bitmap')


def test_auto_is_an_incremental_on_a_sound_chain() -> None:
    planned = step('auto', [attempt('f1', 'full')])
    assert (planned['mode'], planned['reason'], planned['require']) == ('incremental', None, B)
    assert planned['backing'] == '/b/f1/disk0.qcow2'


@pytest.mark.parametrize('attempts, marks, why', [
    ([], None, ("there is no full backup of disk 'disk0' with bitmap 'nightly' to build an "
                'incremental backup on')),
    ([attempt('f1', 'full', outcome='failed')], None,
     "the last full backup of disk 'disk0' with bitmap 'nightly', 'f1', failed"),
    ([attempt('f1', 'full')], {B: 'is inconsistent (QEMU stopped without saving it)'},
     ("dirty bitmap 'nightly' of disk 'disk0' (node disk0-fmt) is inconsistent (QEMU stopped "
      'without saving it)')),
    ([attempt('f1', 'full')], {}, "dirty bitmap 'nightly' of disk 'disk0' (node disk0-fmt) is missing"),
])
def test_auto_falls_back_to_a_full_with_the_reason(attempts: list[Record],
                                                   marks: dict[str, str | None] | None,
                                                   why: str) -> None:
    planned = step('auto', attempts, marks)
    assert (planned['mode'], planned['sync'], planned['reason']) == ('full', 'full', why)
    assert planned['reset'] == [B, B + '.full'] and planned['require'] is None


def test_a_full_copy_within_an_auto_backup_is_the_disks_new_full() -> None:
    mixed = attempt('a1', 'auto', backing='f1')
    mixed['disks']['disk0'].update(mode='full', backing=None)
    mixed['disks']['disk1']['mode'] = 'incremental'
    attempts = [attempt('f1', 'full'), mixed]
    assert _chains.disk_mode(mixed, 'disk0') == 'full'
    assert plan('differential', attempts)['backing'] == '/b/a1/disk0.qcow2'
    assert plan('differential', attempts, device='disk1')['backing'] == '/b/f1/disk1.qcow2'
    assert _chains.prune([*attempts, attempt('f2', 'full', devices=('disk0',))]) == [
        attempts[0], mixed, attempt('f2', 'full', devices=('disk0',))]
