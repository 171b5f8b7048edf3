# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_writeback.py: when it asks, and about which file.

The pause between two rounds is injected: no test waits for time to pass.
"""

from __future__ import annotations

import os
import threading
import typing as t
from pathlib import Path

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _writeback
from ansible_collections.vmjobs.qemu.plugins.module_utils._writeback import Writeback


class Counting(Writeback):
    """Records each request: the path, and whether the file was there."""

    def __init__(self, paths: list[str], pause: t.Callable[[float], bool] | None = None
                 ) -> None:
        super().__init__(paths, period=0.25, pause=pause)
        self.seen: list[tuple[str, bool]] = []

    def nudge(self, path: str) -> bool:
        found = super().nudge(path)
        self.seen.append((path, found))
        return found


def rounds(count: int, pauses: list[float],
           between: t.Callable[[int], None] = lambda _: None) -> t.Callable[[float], bool]:
    """A pause that lets ``count`` rounds run, calling ``between(i)`` before round i."""
    def pause(seconds: float) -> bool:
        pauses.append(seconds)
        if len(pauses) <= count:
            between(len(pauses))
        return len(pauses) > count
    return pause


def test_a_file_that_is_not_there_yet_is_no_error(tmp_path: Path) -> None:
    assert Writeback([]).nudge(str(tmp_path / 'later.qcow2')) is False


def test_a_file_being_written_is_asked_about(tmp_path: Path) -> None:
    target = tmp_path / 'target.qcow2'
    with target.open('wb') as out:
        out.write(b'\x5a' * 65536)  # dirty, not flushed
        assert Writeback([]).nudge(str(target)) is True
    assert target.read_bytes() == b'\x5a' * 65536  # asking changes no data


def test_a_link_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / 'real').write_bytes(b'x')
    (tmp_path / 'link').symlink_to(tmp_path / 'real')
    assert Writeback([]).nudge(str(tmp_path / 'link')) is False


def test_each_file_is_asked_about_every_period_until_the_end(tmp_path: Path) -> None:
    files = [str(tmp_path / 'a.qcow2'), str(tmp_path / 'b.qcow2')]
    pauses: list[float] = []
    writeback = Counting(files, rounds(2, pauses))
    writeback.run()
    assert pauses == [0.25, 0.25, 0.25]
    assert [path for path, _found in writeback.seen] == files + files


def test_a_target_created_meanwhile_is_the_one_asked_about(tmp_path: Path) -> None:
    target = tmp_path / 'target.qcow2'

    def between(round_: int) -> None:
        if round_ == 2:
            target.write_bytes(b'made meanwhile')

    writeback = Counting([str(target)], rounds(2, [], between))
    writeback.run()
    assert writeback.seen == [(str(target), False), (str(target), True)]


def test_the_thread_runs_only_inside_the_block(tmp_path: Path) -> None:
    reached = threading.Event()

    def pause(_seconds: float) -> bool:
        reached.set()
        return writeback.ended.wait()  # until the block ends

    writeback = Counting([str(tmp_path / 'target.qcow2')], pause)
    with writeback:
        assert reached.wait(30), 'the thread started'
        assert any(th.name == 'vmjobs-writeback' for th in threading.enumerate())
    assert not any(th.name == 'vmjobs-writeback' for th in threading.enumerate())
    assert writeback.seen == []


@pytest.mark.parametrize('files, fadvise', [([], True), (['/t.qcow2'], False)])
def test_no_thread_without_files_or_where_the_platform_cannot_ask(
        monkeypatch: pytest.MonkeyPatch, files: list[str], fadvise: bool) -> None:
    if not fadvise:
        monkeypatch.delattr(os, 'posix_fadvise')
    started: list[t.Any] = []
    monkeypatch.setattr(_writeback.threading.Thread, 'start', started.append)
    with Writeback(files):
        pass
    assert started == []
