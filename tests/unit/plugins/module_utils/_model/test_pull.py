# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for pull backups in the pure model: planning a pull in its chain (planning,
chains), the verdict as an outcome (records) and scratch overlays (closing)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    chains as _chains,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    closing as _closing,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    planning as _planning,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _records,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils._model.samples import (
    B,
    attempt,
    everything,
)

Record = dict[str, t.Any]


def pulled(job: str, mode: str, outcome: str | None = 'succeeded') -> Record:
    """A pull backup's attempt: no images."""
    made = attempt(job, mode, outcome)
    made['delivery'] = 'pull'
    for disk in made['disks'].values():
        disk.update(target=None, format='qcow2', backing=None)
    return made


def step(mode: str, bitmap: str | None = B) -> Record:
    sync = 'full' if mode == 'full' else 'bitmap'
    used = {'full': None, 'incremental': B, 'differential': B + '.full'}[mode]
    return {'mode': mode, 'sync': sync, 'bitmap': used, 'member': 'p1.disk0'}


@pytest.mark.parametrize('mode, bitmap, settle, mark, context', [
    ('full', B, [B, B + '.full'], B + '.pull', None),
    ('incremental', B, [B], B + '.pull', 'qemu:dirty-bitmap:nightly'),
    ('differential', B, [], None, 'qemu:dirty-bitmap:nightly.full'),
    ('full', None, [], None, None),
])
def test_pull_step(mode: str, bitmap: str | None, settle: list[str], mark: str | None,
                   context: str | None) -> None:
    planned = _planning.pull_step(step(mode), bitmap)
    assert planned == {'reset': [], 'backing': None, 'backing_format': None, 'settle': settle,
                       'pull_mark': mark, 'export': 'p1.disk0', 'meta_context': context}


@pytest.mark.parametrize('outcome', ['failed', 'canceled'])
def test_an_unacknowledged_pull_is_passed_over(outcome: str) -> None:
    attempts = [pulled('p1', 'full'), pulled('p2', 'incremental', outcome),
                pulled('p3', 'full', outcome)]
    planned = _planning.plan_disk('new', 'disk0', 'incremental', B, attempts, {}, everything)
    assert (planned['base'], planned['bitmap'], planned['backing']) == ('p1', B, None)


def test_an_acknowledged_pull_is_built_on_and_an_unknown_one_refused() -> None:
    attempts = [pulled('p1', 'full'), pulled('p2', 'incremental')]
    assert _planning.plan_disk('new', 'disk0', 'incremental', B, attempts, {},
                               everything)['base'] == 'p2'
    unknown = [pulled('p1', 'full'), pulled('p2', 'incremental', None)]
    unknown[1]['state'] = 'gone'
    with pytest.raises(Exception, match="incremental backup 'p2' of disk 'disk0' has an "
                                        'outcome that was never seen'):
        _planning.plan_disk('new', 'disk0', 'incremental', B, unknown, {}, everything)


def test_a_push_incremental_on_a_pull_has_no_backing_file() -> None:
    attempts = [pulled('p1', 'full')]
    planned = _planning.plan_disk('new', 'disk0', 'incremental', B, attempts, {},
                                  lambda path: False)
    assert (planned['backing'], planned['backing_format']) == (None, None)


@pytest.mark.parametrize('given, pull', [
    ({'params': {'delivery': 'pull'}}, True), ({'delivery': 'pull'}, True),
    ({'params': {'type': 'backup'}}, False), ({}, False), (None, False)])
def test_is_pull(given: Record | None, pull: bool) -> None:
    assert _chains.is_pull(given) is pull


@pytest.mark.parametrize('verdict, outcome, error', [
    ('succeeded', 'succeeded', None),
    ('failed', 'failed', 'the reader reported that the read failed'),
    ('canceled', 'canceled', None)])
def test_the_verdict_is_the_outcome(verdict: str, outcome: str, error: str | None) -> None:
    record = {'name': 'p1', 'type': 'backup', 'status': 'concluded', 'outcome': 'canceled',
              'error': None}
    shown = _records.attach_detail(dict(record), {'verdict': verdict, 'params': {}})
    assert (shown['outcome'], shown['error']) == (outcome, error)


def test_a_member_that_failed_stays_failed_whatever_the_verdict() -> None:
    record = {'name': 'p1', 'type': 'backup', 'status': 'concluded', 'outcome': 'failed',
              'error': 'disk0: No space left on device'}
    shown = _records.attach_detail(dict(record), {'verdict': 'succeeded', 'params': {}})
    assert shown['outcome'] == 'failed'


def test_fleecing_overlays_are_never_kept() -> None:
    assert not _closing.finished({'outcome': 'succeeded'}, {'pull': {'dir': '/tmp/x'}})
    assert _closing.finished({'outcome': 'succeeded'}, {})


def test_a_pull_lost_before_its_verdict_counts_as_canceled() -> None:
    started = dict(pulled('p2', 'incremental', None), state='started')
    entry = {'name': 'p2', 'type': 'backup', 'state': 'started',
             'params': started['identity']}
    lost = {'p2': {'name': 'p2', 'outcome': None, 'lost': True, 'live': False}}
    (learned,) = _chains.learn([started], lost, {'p2': entry})
    assert learned['outcome'] == 'canceled'
    (told,) = _chains.learn([started], lost, {'p2': dict(entry, verdict='succeeded')})
    assert told['outcome'] is None, 'a verdict was given: what it did is not known'
    push = dict(started)
    del push['delivery']
    assert _chains.learn([push], lost, {'p2': entry})[0]['outcome'] is None
