# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_imageinfo.py: one qemu-img for a sound chain."""

from __future__ import annotations

import json
import pathlib

from ansible_collections.vmjobs.qemu.plugins.module_utils import _imageinfo


def test_a_sound_chain_takes_one_qemu_img(tmp_path: pathlib.Path) -> None:
    (tmp_path / 'base.qcow2').write_bytes(b'')
    top = str(tmp_path / 'top.qcow2')
    calls: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        return 0, json.dumps([{'format': 'qcow2', 'backing-filename': 'base.qcow2'},
                              {'format': 'qcow2'}]), ''

    images = _imageinfo.chain(run, 'r1', top)
    assert [i['path'] for i in images] == [top, str(tmp_path / 'base.qcow2')]
    assert [i['problem'] for i in images] == [None, None]
    assert len(calls) == 1 and '--backing-chain' in calls[0]


def test_a_broken_chain_is_walked_image_by_image(tmp_path: pathlib.Path) -> None:
    top = str(tmp_path / 'top.qcow2')
    calls: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        if '--backing-chain' in argv:
            return 1, '', "qemu-img: Could not open 'gone.qcow2': No such file or directory"
        return 0, json.dumps({'format': 'qcow2', 'backing-filename': 'gone.qcow2'}), ''

    images = _imageinfo.chain(run, 'r1', top)
    assert len(calls) == 2 and [i['path'] for i in images] == [top]
    assert images[0]['problem']


def test_the_chain_command_shares_the_image() -> None:
    assert _imageinfo.chain_argv('/b/x.qcow2') == [
        'qemu-img', 'info', '-U', '--backing-chain', '--output=json', '/b/x.qcow2']
