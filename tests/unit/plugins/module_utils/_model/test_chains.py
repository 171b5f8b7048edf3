# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/chains.py: which backup a new one builds on, and refusals."""

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

Record = dict[str, t.Any]
B = 'nightly'


def attempt(job: str, mode: str, outcome: str | None = 'succeeded', state: str = 'started',
            devices: t.Sequence[str] = ('disk0', 'disk1'), backing: str | None = None,
            reset: bool = False) -> Record:
    """A learned attempt whose targets are /b/<job>/<device>.qcow2."""
    return {'job': job, 'mode': mode, 'state': state, 'outcome': outcome, 'reset': reset,
            'identity': {'type': 'backup', 'mode': mode, 'bitmap': B, 'job': job},
            'disks': {d: {'target': f'/b/{job}/{d}.qcow2', 'format': 'qcow2',
                          'backing': backing and f'/b/{backing}/{d}.qcow2'} for d in devices}}


def entry(a: Record, state: str = 'started') -> Record:
    """The ledger entry of the job an attempt started."""
    return {'name': a['job'], 'type': 'backup', 'state': state, 'params': a['identity']}


def record(name: str, status: str = 'concluded', outcome: str | None = 'succeeded',
           live: bool = True) -> Record:
    return {'name': name, 'type': 'backup', 'status': status, 'outcome': outcome, 'live': live}


def everything(_path: str) -> bool:
    return True


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


def test_the_marks_a_chain_made() -> None:
    assert _chains.chain_marks(B, None, 'bitmap') == [B, B + '.full']
    attempts = [attempt('i1', 'incremental'), attempt('d1', 'differential'),
                attempt('i2', 'incremental')]
    chain = {'marking': ['f1', 'i1'], 'attempts': attempts}
    assert _chains.chain_marks(B, chain, 'checkpoint') == ['i2', 'i1', 'f1']
    assert _chains.chain_marks(B, None, 'checkpoint') == []
