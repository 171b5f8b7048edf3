# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning a backup in its chain: what each disk's backup builds on, and when not to.

This is a private module: its API may change between any two releases.
Nothing here does I/O, except that the caller passes ``exists`` to test paths.
The rules are the same for every backend; only how a disk's changes are marked
(dirty bitmaps or checkpoints, :data:`~.chains.MarkKind`) differs. See ``chains``
for the chain's history these functions read.
"""

from __future__ import annotations

import typing as t

from .._errors import InvalidArgument
from .chains import (
    Attempt,
    MarkKind,
    Record,
    a_mode,
    companion,
    disk_mode,
    is_pull,
    meta_context,
    pull_mark,
    status,
)

#: The plan of a disk copied whole.
FULL_COPY: dict[str, t.Any] = {'backing': None, 'backing_format': None, 'base': None,
                               'bitmap': None, 'bitmap_mode': None, 'sync': 'full', 'reset': []}


def reason(job: str, refusal: InvalidArgument) -> str:
    """Why a disk cannot have an incremental: the refusal without the job and the advice."""
    text = str(refusal).removeprefix(f"job '{job}': ")
    for advice in ('; run a full backup first', '; run a full backup'):
        text = text.removesuffix(advice)
    return text


def plan_step(job: str, device: str, mode: str, bitmap: str | None, attempts: list[Attempt],
              records: dict[str, Record], exists: t.Callable[[str], bool], source: Record,
              kind: MarkKind) -> Record:
    """The plan of one disk: :func:`plan_disk`, its change mark checked on ``source``.

    ``mode: auto`` is an incremental when the chain of the disk is sound, else a full
    backup, with the reason (a refusal of the incremental) in ``reason``.

    :return: :func:`plan_disk`'s step plus ``mode`` (``full``, ``incremental`` or
        ``differential``), ``reason`` (None unless ``auto`` fell back) and ``require``
        (the mark read, or None).
    :raise InvalidArgument: the backup cannot go on (for ``auto``: not even as a full).
    """
    if bitmap is None:
        return dict(FULL_COPY, mode='full', reason=None, require=None)
    if mode == 'auto':
        try:
            return plan_step(job, device, 'incremental', bitmap, attempts, records, exists,
                             source, kind)
        except InvalidArgument as refusal:
            step = plan_step(job, device, 'full', bitmap, attempts, records, exists, source,
                             kind)
            return dict(step, reason=reason(job, refusal))
    step = plan_disk(job, device, mode, bitmap, attempts, records, exists)
    require = mark(step, kind)
    if require:
        check_mark(job, source, require, kind)
    return dict(step, mode=mode, reason=None, require=require)


STATUS_TEXT = {
    'failed': 'failed',
    'canceled': 'was canceled',
    'not-started': 'did not start cleanly (the bitmaps may have been cleared)',
    'unknown': 'has an outcome that was never seen (its record is gone or QEMU lost the job)',
}


def _refuse(job: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"job '{job}': {message}", job)


def plan_disk(job: str, device: str, mode: str, bitmap: str, attempts: list[Attempt],
              records: dict[str, Record], exists: t.Callable[[str], bool]) -> dict[str, t.Any]:
    """Where the backup of ``device`` goes in the chain of ``bitmap``.

    An incremental builds on the newest succeeded full or incremental since the
    last full; a failed, cancelled or never started incremental is passed over
    (``on-success`` left the bitmap alone), a differential too (it never
    touches a bitmap).  A differential builds on the last full.  A backup whose
    start failed before it changed anything does not count.

    :return: ``{'backing': path | None, 'backing_format': fmt | None, 'base': job | None,
        'bitmap': name | None, 'bitmap_mode': mode | None, 'sync': sync, 'reset': [names]}``
    :raise InvalidArgument: a backup of this chain still runs, there is no succeeded full,
        an incremental's outcome is unknown, or an image of the chain is gone.
    """
    mine = [a for a in attempts if device in a['disks'] and a['job'] != job]
    for attempt in mine:
        if status(attempt, records) == 'running':
            raise _refuse(job, f"{disk_mode(attempt, device)} backup '{attempt['job']}' of "
                               f"disk '{device}' with bitmap '{bitmap}' is still running; wait for it to conclude")
    if mode == 'full':
        return dict(FULL_COPY, reset=[bitmap, companion(bitmap)])
    base: Attempt | None = None
    full: Attempt | None = None
    for attempt in reversed(mine):
        known = status(attempt, records)
        done = disk_mode(attempt, device)
        if done == 'differential' or known == 'never-started':
            continue
        if is_pull(attempt) and known in ('failed', 'canceled'):
            continue  # its reader did not acknowledge it: it changed no bitmap
        if done == 'incremental':
            if known == 'succeeded' and base is None:
                base = attempt
            elif known == 'unknown' and base is None and mode == 'incremental':
                raise _refuse(job, f"incremental backup '{attempt['job']}' of disk '{device}' "
                                   f"{STATUS_TEXT['unknown']}, so bitmap '{bitmap}' may have been "
                                   'cleared; run a full backup')
            continue
        if known != 'succeeded':
            raise _refuse(job, f"the last full backup of disk '{device}' with bitmap '{bitmap}', "
                               f"'{attempt['job']}', {STATUS_TEXT.get(known, known)}; "
                               'run a full backup')
        full = attempt
        break
    if full is None:
        raise _refuse(job, f"there is no full backup of disk '{device}' with bitmap '{bitmap}' "
                           f'to build {a_mode(mode)} backup on; run a full backup first')
    if mode == 'differential' or base is None:
        base = full
    _check_images(job, device, base, attempts, exists)
    disk = base['disks'][device]
    if mode == 'incremental':
        used, bitmap_mode = bitmap, 'on-success'
    else:
        used, bitmap_mode = companion(bitmap), 'never'
    # A pull backup's copy is the reader's: an image built on it records no backing file.
    return {'backing': disk.get('target'),
            'backing_format': (disk.get('format') or 'qcow2') if disk.get('target') else None,
            'base': base['job'], 'bitmap': used, 'bitmap_mode': bitmap_mode, 'sync': 'bitmap',
            'reset': []}


def _check_images(job: str, device: str, base: Attempt, attempts: list[Attempt],
                  exists: t.Callable[[str], bool]) -> None:
    """Every image from ``base`` down its recorded backing files must still exist."""
    by_target = {a['disks'][device]['target']: a for a in attempts
                 if device in a['disks'] and a.get('outcome') == 'succeeded'}
    seen: set[str] = set()
    attempt: Attempt | None = base
    while attempt is not None:
        disk = attempt['disks'][device]
        if disk.get('target') is None:
            return  # a pull backup: its copy is the reader's, out of the collection's sight
        if not exists(disk['target']):
            raise _refuse(job, f"image {disk['target']} of {disk_mode(attempt, device)} backup "
                               f"'{attempt['job']}' (disk '{device}'), which this backup would "
                               'build on, is gone; run a full backup')
        seen.add(disk['target'])
        backing = disk.get('backing')
        attempt = by_target.get(backing) if backing and backing not in seen else None


def pull_step(step: Record, bitmap: str | None) -> Record:
    """What a pull backup changes in a planned ``step``: no bitmap is cleared at the start
    (``reset`` empty), and no image is built on (``backing``). ``settle`` lists the bitmaps
    that become ``pull_mark`` (added at the start instant) once the reader acknowledges the
    read: both of the chain's after a full, the chain's bitmap after an incremental, none
    after a differential or without a chain. The export has the member's name; an
    incremental's or differential's carries the bitmap it reads (``meta_context``).
    """
    settle: list[str] = []
    if bitmap is not None and step['mode'] != 'differential':
        settle = [bitmap, companion(bitmap)] if step['mode'] == 'full' else [bitmap]
    return {'reset': [], 'backing': None, 'backing_format': None, 'settle': settle,
            'pull_mark': pull_mark(bitmap) if settle and bitmap else None, 'export': step['member'],
            'meta_context': meta_context(step['bitmap']) if step['bitmap'] else None}


def mark(step: Record, kind: MarkKind) -> str | None:
    """The change mark an incremental or differential ``step`` (from :func:`plan_disk`)
    reads: its bitmap, or the checkpoint its base backup created; None for a full."""
    if step['sync'] != 'bitmap':
        return None
    return t.cast(str, step['bitmap'] if kind == 'bitmap' else step['base'])


def check_mark(job: str, source: Record, name: str, kind: MarkKind) -> None:
    """The mark ``name`` must be on disk ``source`` (``{'device', 'node', 'marks'}``, each
    mark mapped to None or what is wrong with it) and usable.

    :raise InvalidArgument: it is missing, inconsistent or disabled.
    """
    problem = source['marks'].get(name, 'is missing')
    if problem is None:
        return
    what = (f"dirty bitmap '{name}' of disk '{source['device']}' (node {source['node']})"
            if kind == 'bitmap' else f"checkpoint '{name}' of disk '{source['device']}'")
    raise _refuse(job, f'{what} {problem}; run a full backup')
