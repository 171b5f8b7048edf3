# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the pure parts of plugins/module_utils/_overlay.py."""

from __future__ import annotations

import json
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _overlay
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._targets import Targets

#: ``qemu-img info -U --backing-chain --output=json`` of an incremental backup image whose
#: backing file is relative (``../full/d.qcow2``), as qemu-img 7.2 prints it (abridged).
CHAIN = [
    {'virtual-size': 16777216, 'filename': '/b/incr/d.qcow2', 'format': 'qcow2',
     'backing-filename': '../full/d.qcow2', 'full-backing-filename': '/b/incr/../full/d.qcow2',
     'backing-filename-format': 'qcow2'},
    {'virtual-size': 16777216, 'filename': '/b/incr/../full/d.qcow2', 'format': 'qcow2'},
]


def test_a_chain_is_read_top_first_with_normal_paths() -> None:
    chain = _overlay.parse_chain('ir', '/b/incr/d.qcow2', json.dumps(CHAIN))
    assert chain.top == _overlay.Image('/b/incr/d.qcow2', 'qcow2')
    assert [image.path for image in chain.images] == ['/b/incr/d.qcow2', '/b/full/d.qcow2']
    assert chain.virtual_size == 16 << 20


def test_a_single_image_reply_is_a_chain_of_one() -> None:
    chain = _overlay.parse_chain('ir', '/b/f.img', json.dumps(
        {'virtual-size': 1024, 'filename': '/b/f.img', 'format': 'raw'}))
    assert chain.images == (_overlay.Image('/b/f.img', 'raw'),)


@pytest.mark.parametrize('text', ['', 'not json', '[]', '[{"filename": "x"}]'])
def test_an_unreadable_reply_is_one_line_naming_the_job(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^job 'ir': cannot read what qemu-img says of "
                                              r'the backup image /b/x.qcow2: '):
        _overlay.parse_chain('ir', '/b/x.qcow2', text)


@pytest.mark.parametrize(('overlay', 'mode', 'expected'), [
    ('/vm/disk.qcow2', 'absolute', '/b/incr/d.qcow2'),
    ('/vm/disk.qcow2', 'relative', '../b/incr/d.qcow2'),
    ('/b/restore/d.qcow2', 'relative', '../incr/d.qcow2'),
    ('/b/incr/o.qcow2', 'relative', 'd.qcow2'),
])
def test_the_backing_reference(overlay: str, mode: str, expected: str) -> None:
    assert _overlay.backing_reference('/b/incr/d.qcow2', overlay, mode) == expected


class Runs:
    """A qemu-img that answers from a table (argv[1] -> reply)."""

    def __init__(self, replies: dict[str, tuple[int, str, str]]) -> None:
        self.replies = replies
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        return self.replies[argv[1]]


def test_a_chain_that_cannot_be_opened_says_what_qemu_img_said(tmp_path: t.Any) -> None:
    image = tmp_path / 'incr.qcow2'
    image.write_bytes(b'')
    said = "qemu-img: Could not open 'full.qcow2': No such file or directory\n"
    runs = Runs({'info': (1, '', said)})
    overlays = _overlay.Overlays(Targets(run=runs))
    with pytest.raises(InvalidArgument) as err:
        overlays.chain('ir', str(image))
    assert str(err.value) == (f"job 'ir': the backup chain of {image} cannot be opened: "
                              "qemu-img: Could not open 'full.qcow2': No such file or directory")
