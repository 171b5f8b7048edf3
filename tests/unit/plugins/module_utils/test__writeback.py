# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_writeback.py: when it asks, and about which file."""

from __future__ import annotations

import os
import threading
import time
import typing as t
from pathlib import Path

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _writeback
from ansible_collections.vmjobs.qemu.plugins.module_utils._writeback import Writeback


class Counting(Writeback):
    """Counts the requests and whether the file was there for each."""

    def __init__(self, paths: list[str], period: float) -> None:
        super().__init__(paths, period)
        self.seen: list[bool] = []
        self.twice = threading.Event()

    def nudge(self, path: str) -> bool:
        found = super().nudge(path)
        self.seen.append(found)
        if len(self.seen) >= 2:
            self.twice.set()
        return found


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


def test_it_asks_while_the_block_runs_and_stops_after(tmp_path: Path) -> None:
    target = tmp_path / 'target.qcow2'
    with Counting([str(target)], period=0.001) as writeback:
        assert writeback.twice.wait(10)
        target.write_bytes(b'made meanwhile')  # a target created while it runs
        count = len(writeback.seen)
        deadline = time.monotonic() + 10
        while len(writeback.seen) == count and time.monotonic() < deadline:
            time.sleep(0.001)
    asked = len(writeback.seen)
    assert writeback.seen[0] is False and writeback.seen[-1] is True
    time.sleep(0.01)
    assert len(writeback.seen) == asked
    assert not any(th.name == 'vmjobs-writeback' for th in threading.enumerate())


def test_each_file_is_asked_about(tmp_path: Path) -> None:
    files = [str(tmp_path / 'a.qcow2'), str(tmp_path / 'b.qcow2')]
    asked: list[str] = []

    class Listing(Writeback):
        def nudge(self, path: str) -> bool:
            asked.append(path)
            return False

    with Listing(files, period=0.001):
        deadline = time.monotonic() + 10
        while len(asked) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
    assert asked[:2] == files


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
