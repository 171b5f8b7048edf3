# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_qmp/pull.py: the start transaction, the bitmaps a
verdict changes, URIs and paths."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import pull as _pull

Record = dict[str, t.Any]
GOOD = {'persistent': True, 'recording': True}


def disk(settle: list[str], mark: str | None = 'nightly.pull') -> Record:
    return {'node': 'disk0-fmt', 'member': 'p1.disk0', 'settle': settle, 'pull_mark': mark}


def test_one_transaction_fixes_the_start_instant() -> None:
    plan = [{'member': 'p1.disk0', 'pull_mark': 'nightly.pull', 'bitmap': 'nightly'},
            {'member': 'p1.disk1', 'pull_mark': None, 'bitmap': None}]
    actions = _pull.start_actions(plan, ['disk0-fmt', 'disk1-fmt'], ['fl0', 'fl1'])
    assert [(a['type'], a['data'].get('node'), a['data'].get('name')) for a in actions] == [
        ('block-dirty-bitmap-add', 'disk0-fmt', 'nightly.pull'),
        ('block-dirty-bitmap-add', 'fl0', 'nightly'),
        ('block-dirty-bitmap-merge', 'fl0', None),
        ('blockdev-backup', None, None),
        ('blockdev-backup', None, None)]
    assert actions[0]['data']['persistent'] is True
    assert actions[1]['data']['disabled'] is True, 'copy-before-write must not mark the copy'
    assert actions[2]['data']['bitmaps'] == [{'node': 'disk0-fmt', 'name': 'nightly'}]
    assert actions[4]['data'] == {'job-id': 'p1.disk1', 'device': 'disk1-fmt', 'target': 'fl1',
                                  'sync': 'none', 'auto-finalize': True, 'auto-dismiss': False}


def test_succeeded_makes_the_start_instant_bitmap_the_chains() -> None:
    found = {'nightly': GOOD, 'nightly.full': dict(GOOD, inconsistent=True),
             'nightly.pull': {'recording': True}}
    remove, actions = _pull.verdict_actions(disk(['nightly', 'nightly.full']), found,
                                            'succeeded')
    assert remove == ['nightly.full']
    assert [(a['type'], a['data'].get('name') or a['data'].get('target')) for a in actions] == [
        ('block-dirty-bitmap-clear', 'nightly'), ('block-dirty-bitmap-add', 'nightly.full'),
        ('block-dirty-bitmap-merge', 'nightly'), ('block-dirty-bitmap-merge', 'nightly.full'),
        ('block-dirty-bitmap-remove', 'nightly.pull')]
    assert actions[2]['data']['bitmaps'] == ['nightly.pull']


@pytest.mark.parametrize('verdict', ['failed', 'canceled'])
def test_any_other_verdict_only_drops_it(verdict: str) -> None:
    found = {'nightly': GOOD, 'nightly.pull': {'recording': True}}
    dropped = {'type': 'block-dirty-bitmap-remove',
               'data': {'node': 'disk0-fmt', 'name': 'nightly.pull'}}
    assert _pull.verdict_actions(disk(['nightly']), found, verdict) == ([], [dropped])


def test_no_start_instant_bitmap_changes_nothing() -> None:
    """QEMU restarted (the bitmap was not persistent), or a differential (none made)."""
    assert _pull.verdict_actions(disk(['nightly']), {'nightly': GOOD}, 'succeeded') == ([], [])
    assert _pull.verdict_actions(disk([], None), {'nightly': GOOD}, 'succeeded') == ([], [])
