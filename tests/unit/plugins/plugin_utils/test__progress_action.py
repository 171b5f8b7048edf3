# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/plugin_utils/_progress_action.py: is the controller on a terminal?"""

from __future__ import annotations

import pytest
from ansible_collections.vmjobs.qemu.plugins.plugin_utils import _progress_action


@pytest.mark.parametrize('where, expected', [
    ('/dev/pts/3', True),
    ('/dev/tty1', True),
    ('/dev/console', True),
    ('pipe:[123456]', False),
    ('/dev/null', False),
    ('/tmp/ansible.log', False),
    (OSError(2, 'No such file or directory'), False),
])
def test_on_terminal_asks_the_controllers_stdout(monkeypatch: pytest.MonkeyPatch,
                                                 where: str | OSError, expected: bool) -> None:
    asked = []

    def readlink(path: str) -> str:
        asked.append(path)
        if isinstance(where, OSError):
            raise where
        return where

    monkeypatch.setattr(_progress_action.os, 'readlink', readlink)
    monkeypatch.setattr(_progress_action.os, 'getppid', lambda: 4242)
    assert _progress_action.on_terminal() is expected
    assert asked == ['/proc/4242/fd/1']
