# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``qemu-img`` says of an image file: ``info`` and ``check``, as plain dicts.

This is a private module: its API may change between any two releases.
The commands run through the runner the module edge hands down (see ``_targets.Runner``);
``-U`` lets them read an image another process holds open.
"""

from __future__ import annotations

import json
import os
import typing as t

from ._errors import InvalidArgument
from ._model import verify as _verify
from ._targets import Runner

Record = dict[str, t.Any]


def one_line(text: str) -> str:
    """A command's output on one line."""
    return ' '.join(text.split())


#: Images followed down a chain before it is taken for a loop.
MAX_CHAIN = 1000


def _json(run: Runner, job: str, argv: list[str], path: str,
          ok: tuple[int, ...] = (0,)) -> tuple[Record, str]:
    """The JSON a qemu-img command printed, and its stderr."""
    try:
        status, out, err = run(argv)
    except OSError as failure:
        raise InvalidArgument(f"job '{job}': cannot run {argv[0]}: "
                              f'{failure.strerror or failure}', job) from failure
    if status in ok and out.strip():
        try:
            return t.cast(Record, json.loads(out)), err
        except ValueError:
            pass
    text = one_line(err or out) or f'exit {status}'
    raise InvalidArgument(f"job '{job}': image {path}: qemu-img {argv[1]} failed: {text}", job)


def chain_argv(path: str) -> list[str]:
    """``qemu-img info`` of the whole chain under ``path``, top first, in JSON."""
    return ['qemu-img', 'info', '-U', '--backing-chain', '--output=json', path]


def info(run: Runner, job: str, path: str) -> Record:
    """``qemu-img info`` of one image (its backing files are not opened).

    :raise InvalidArgument: the image cannot be read (qemu-img's text kept).
    """
    return _json(run, job, ['qemu-img', 'info', '-U', '--output=json', path], path)[0]


def check(run: Runner, job: str, path: str, fmt: str) -> tuple[Record, str]:
    """``qemu-img check`` of one image alone (its backing file is not opened): its report,
    also when it finds errors (exit 2, 3), and what it printed on stderr.

    :raise InvalidArgument: the image cannot be checked at all (qemu-img's text kept).
    """
    spec = json.dumps({'driver': fmt, 'file': {'driver': 'file', 'filename': path},
                       'backing': None})
    return _json(run, job, ['qemu-img', 'check', '-U', '--output=json', 'json:' + spec], path,
                 ok=(0, 2, 3))


def _whole_chain(run: Runner, top: str) -> list[Record]:
    """``qemu-img info --backing-chain`` of ``top``, top first; [] if it fails (a backing
    file missing, a loop, ...): the image-by-image walk then says where and why.
    """
    try:
        status, out, _err = run(chain_argv(top))
        found = json.loads(out) if status == 0 else []
    except (OSError, ValueError):
        return []
    return found if isinstance(found, list) and len(found) <= MAX_CHAIN else []


def chain(run: Runner, job: str, top: str) -> list[Record]:
    """The images of the chain under ``top``, top first: each ``{'path', 'info', 'backing',
    'problem'}``; the walk stops at an image whose backing file is missing (its ``problem``
    says so).

    :raise InvalidArgument: an image cannot be read, or the chain loops.
    """
    images: list[Record] = []
    known = _whole_chain(run, os.path.abspath(top))  # one qemu-img for a sound chain
    path: str | None = os.path.abspath(top)
    while path is not None:
        if len(images) >= MAX_CHAIN or path in [image['path'] for image in images]:
            raise InvalidArgument(f"job '{job}': the backing chain of {top} loops at {path}", job)
        found = known.pop(0) if known else info(run, job, path)
        backing = found.get('backing-filename')
        following = _verify.backing_path(path, backing) if backing else None
        exists = following is not None and os.path.exists(following)
        images.append({'path': path, 'info': found, 'backing': backing,
                       'problem': _verify.link_problem(path, backing, exists)})
        path = following if exists else None
    return images
