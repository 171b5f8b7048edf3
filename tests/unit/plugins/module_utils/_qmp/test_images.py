# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the file node of a target in plugins/module_utils/_qmp/images.py."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import BackendError
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import images


class Monitor:
    """Refuses the first ``refusals`` blockdev-adds, as QEMU refuses O_DIRECT on tmpfs."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls: list[dict[str, t.Any]] = []

    def execute(self, command: str, arguments: dict[str, t.Any]) -> dict[str, t.Any]:
        self.calls.append(arguments)
        if len(self.calls) <= self.refusals:
            raise BackendError(command, 'GenericError', f'refusal {len(self.calls)}')
        return {}


PLAIN = {'driver': 'file', 'node-name': 'n', 'filename': '/t.img'}


@pytest.mark.parametrize('direct, refusals, calls', [
    (False, 0, [PLAIN]),
    (True, 0, [dict(PLAIN, cache={'direct': True})]),
    (True, 1, [dict(PLAIN, cache={'direct': True}), PLAIN]),
])
def test_a_direct_file_node_falls_back_to_a_buffered_one(
        direct: bool, refusals: int, calls: list[dict[str, t.Any]]) -> None:
    mon = Monitor(refusals)
    images.add_file_node(t.cast(t.Any, mon), 'n', '/t.img', direct)
    assert mon.calls == calls


def test_a_second_refusal_is_reported() -> None:
    with pytest.raises(BackendError, match='refusal 2'):
        images.add_file_node(t.cast(t.Any, Monitor(2)), 'n', '/t.img', True)
