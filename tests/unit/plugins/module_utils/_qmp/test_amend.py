# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the amend start in plugins/module_utils/_qmp/start.py (probed, not assumed)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import (
    start as _qmp_start,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._waiter import Waiter

NODES = [{'node-name': 'disk0', 'drv': 'qcow2'}, {'node-name': 'disk0-file', 'drv': 'file'}]
PARAMS = {'type': 'amend', 'device': 'disk0', 'amend': {'encrypt': {'format': 'luks'}}}


class Monitor:
    def __init__(self, commands: t.Sequence[str]) -> None:
        self.commands = commands
        self.calls: list[tuple[str, t.Any]] = []

    def execute(self, command: str, arguments: t.Any = None) -> t.Any:
        self.calls.append((command, arguments))
        replies = {'query-qmp-schema': [{'meta-type': 'command', 'name': c}
                                        for c in self.commands],
                   'query-named-block-nodes': NODES, 'query-block': []}
        return replies.get(command, {})


@pytest.mark.parametrize('commands, used', [(['x-blockdev-amend'], 'x-blockdev-amend'),
                                            (['blockdev-amend', 'x-blockdev-amend'],
                                             'blockdev-amend')])
def test_amend_takes_the_command_qemu_has(commands: list[str], used: str) -> None:
    mon = Monitor(commands)
    _qmp_start.start_job(t.cast(t.Any, mon), Waiter(), 'k1', dict(PARAMS), lambda **_: None)
    assert mon.calls[-1] == (used, {'job-id': 'k1', 'node-name': 'disk0', 'options': {
        'driver': 'qcow2', 'encrypt': {'format': 'luks'}}})


def test_a_qemu_without_amend_is_refused_before_anything() -> None:
    mon = Monitor(['query-jobs'])
    with pytest.raises(InvalidArgument, match="^job 'k1': this QEMU cannot amend an attached "
                                              r'image \(it has no x-blockdev-amend\)$'):
        _qmp_start.start_job(t.cast(t.Any, mon), Waiter(), 'k1', dict(PARAMS), lambda **_: None)
    assert [call[0] for call in mon.calls] == ['query-qmp-schema']
