# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``qemu-img`` says of an image file: ``info`` and ``check``, as plain dicts.

This is a private module: its API may change between any two releases.
The commands run through the runner the module edge hands down (see ``_targets.Runner``);
``-U`` lets them read an image another process holds open.
"""

from __future__ import annotations

import json
import typing as t

from ._errors import InvalidArgument
from ._targets import Runner

Record = dict[str, t.Any]


def one_line(text: str) -> str:
    """A command's output on one line."""
    return ' '.join(text.split())


def _json(run: Runner, job: str, argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[int, Record]:
    try:
        status, out, err = run(argv)
    except OSError as failure:
        raise InvalidArgument(f"job '{job}': cannot run {argv[0]}: "
                              f'{failure.strerror or failure}', job) from failure
    if status in ok and out.strip():
        try:
            return status, t.cast(Record, json.loads(out))
        except ValueError:
            pass
    text = one_line(err or out) or f'exit {status}'
    raise InvalidArgument(f"job '{job}': {' '.join(argv[:2])} {argv[-1]} failed: {text}", job)


def info(run: Runner, job: str, path: str) -> Record:
    """``qemu-img info`` of one image (its backing files are not opened).

    :raise InvalidArgument: the image cannot be read (qemu-img's text kept).
    """
    return _json(run, job, ['qemu-img', 'info', '-U', '--output=json', path])[1]


def check(run: Runner, job: str, path: str, fmt: str) -> Record:
    """``qemu-img check`` of one image: its report, also when it finds errors (exit 2, 3).

    :raise InvalidArgument: the image cannot be checked at all (qemu-img's text kept).
    """
    return _json(run, job, ['qemu-img', 'check', '-U', '--output=json', '-f', fmt, path],
                 ok=(0, 2, 3))[1]
