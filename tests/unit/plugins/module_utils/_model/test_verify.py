# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_model/verify.py: what is wrong with an image, in one line."""

from __future__ import annotations

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    verify as _verify,
)

TRUNCATED_STDERR = ('ERROR: counting reference for region exceeding the end of the file by one '
                    'cluster or more: offset 0x100000 size 0x10000\nERROR: more\n')
UNALIGNED_STDERR = ('ERROR offset=50200: Data cluster is not properly aligned; L2 entry corrupted.\n'
                    'ERROR cluster 6 refcount=1 reference=2\n')


@pytest.mark.parametrize('image, backing, expected', [
    ('/b/i1/d.qcow2', '../f1/d.qcow2', '/b/f1/d.qcow2'),
    ('/b/i1/d.qcow2', '/abs/d.qcow2', '/abs/d.qcow2'),
    ('/b/d.qcow2', 'base.qcow2', '/b/base.qcow2'),
])
def test_backing_path(image: str, backing: str, expected: str) -> None:
    assert _verify.backing_path(image, backing) == expected


@pytest.mark.parametrize('backing, exists, expected', [
    (None, False, None),
    ('../f1/d.qcow2', True, None),
    ('../f1/d.qcow2', False, 'its backing file ../f1/d.qcow2 (/b/f1/d.qcow2) is missing'),
    ('/b/f1/d.qcow2', True, 'its backing file /b/f1/d.qcow2 is recorded as an absolute path'),
])
def test_link_problem(backing: str | None, exists: bool, expected: str | None) -> None:
    found = _verify.link_problem('/b/i1/d.qcow2', backing, exists)
    assert found == expected if expected is None else found is not None and found.startswith(expected)


@pytest.mark.parametrize('report, stderr, expected', [
    ({'check-errors': 0}, '', None),
    ({'check-errors': 0, 'leaks': 3}, 'Leaked cluster 5 refcount=1 reference=0\n', None),
    ({'corruptions': 53}, TRUNCATED_STDERR,
     'the image is truncated: 53 of its clusters lie beyond the end of the file (ERROR: counting'),
    ({'corruptions': 2}, UNALIGNED_STDERR,
     'qemu-img check found 2 corruption(s): ERROR offset=50200: Data cluster is not properly'),
    ({'check-errors': 1}, 'ERROR reading L1\n', 'qemu-img check could not check 1 part(s)'),
])
def test_check_problem(report: dict[str, int], stderr: str, expected: str | None) -> None:
    found = _verify.check_problem(report, stderr)
    assert found == expected if expected is None else found is not None and found.startswith(expected)
    assert found is None or '\n' not in found


def test_failure_names_the_first_bad_image_on_one_line() -> None:
    images = [_verify.image_result('/top', None), _verify.image_result('/mid', 'broken'),
              _verify.image_result('/base', 'also')]
    assert _verify.failure('v', images) == ("job 'v': image /mid: broken (and 1 more image(s), "
                                            'see images)')
    assert _verify.failure('v', images[:1]) is None
