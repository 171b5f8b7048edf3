# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure rules of a chain's verification: what is wrong with one image, said in one line.

This is a private module: its API may change between any two releases.
Nothing here does I/O: ``_imageinfo`` runs ``qemu-img`` and tests paths, and hands the
replies in. An image is sound when ``qemu-img check`` finds no corruption and no error
in it, its backing file (if any) exists and is recorded relative to the image's
directory (so a chain moved as a whole directory still opens), and every cluster of the
chain reads back (the read job, see ``_qmp/restore``).
"""

from __future__ import annotations

import os
import typing as t

Record = dict[str, t.Any]

#: What qemu-img check says of clusters that lie beyond the end of the file.
TRUNCATED = 'exceeding the end of the file'


def backing_path(image: str, backing: str) -> str:
    """The path a backing file name recorded in ``image`` resolves to."""
    return os.path.normpath(os.path.join(os.path.dirname(image), backing))


def link_problem(image: str, backing: str | None, exists: bool) -> str | None:
    """What is wrong with ``image``'s backing link, or None (no backing file is fine)."""
    if not backing:
        return None
    if not exists:
        return f'its backing file {backing} ({backing_path(image, backing)}) is missing'
    if os.path.isabs(backing):
        return (f'its backing file {backing} is recorded as an absolute path; the chain breaks '
                'when its directory is moved (rebase it with a relative name)')
    return None


def first_error(text: str) -> str:
    """The first ``ERROR`` line qemu-img check printed (or its first line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith('ERROR')]
    return (errors or lines or [''])[0]


def check_problem(report: Record, stderr: str) -> str | None:
    """What ``qemu-img check`` found wrong in one image (its JSON report and its stderr)."""
    corruptions = int(report.get('corruptions') or 0)
    errors = int(report.get('check-errors') or 0)
    if TRUNCATED in stderr:
        return (f'the image is truncated: {corruptions} of its clusters lie beyond the end of '
                f'the file ({first_error(stderr)})')
    if corruptions:
        return f'qemu-img check found {corruptions} corruption(s): {first_error(stderr)}'
    if errors:
        return f'qemu-img check could not check {errors} part(s): {first_error(stderr)}'
    return None


def image_result(path: str, problem: str | None) -> Record:
    """One entry of a verification's ``images``."""
    return {'path': path, 'ok': problem is None, 'problem': problem}


def failure(name: str, images: t.Sequence[Record]) -> str | None:
    """The one-line message of a verification that found problems, naming the first image."""
    bad = [image for image in images if not image['ok']]
    if not bad:
        return None
    more = f' (and {len(bad) - 1} more image(s), see images)' if len(bad) > 1 else ''
    return f"job '{name}': image {bad[0]['path']}: {bad[0]['problem']}{more}"
