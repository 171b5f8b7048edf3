# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup chains: what an incremental or differential backup builds on, and when not to.

This is a private module: its API may change between any two releases.
Nothing here does I/O, except that the caller passes ``exists`` to test paths.

A *chain* belongs to one dirty bitmap name.  Its history is a list of
*attempts*, oldest first, one per backup started with that bitmap, each::

    {'job': name, 'mode': 'full' | 'incremental' | 'differential',
     'identity': the job's parameters as the ledger keeps them,
     'state': 'starting' | 'started' | 'not-started' | 'gone',
     'outcome': None | 'succeeded' | 'failed' | 'canceled',
     'reset': True once a full backup is about to clear its bitmaps,
     'disks': {device: {'target': path, 'format': fmt, 'backing': path | None,
                        'mode': the disk's own mode (an ``auto`` backup chose it)}}}

Two bitmaps per disk make a chain:

- the bitmap the user names (``B``) counts the changes since the last full or
  incremental backup; incrementals use it with QEMU's ``bitmap-mode: on-success``,
  so a failed or cancelled incremental leaves it as it was;
- its companion ``B.full`` counts the changes since the last full backup;
  differentials use it with ``bitmap-mode: never``, so they change nothing.

A full backup clears (or creates) both just before it starts: QEMU does not allow
bitmap actions in a transaction with ``completion-mode: grouped``.  A full that
got that far and did not succeed therefore breaks the chain of its disks until
the next full; one whose start failed before (``reset`` never set) changed nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import typing as t

from .._errors import InvalidArgument

MODES = ('full', 'incremental', 'differential')
#: ``auto``: per disk, an incremental when the chain is sound, else a full backup.
CHOICES = (*MODES, 'auto')
#: What a backup's result and ledger entry say of each disk.
DISK_KEYS = ('device', 'target', 'format', 'backing', 'mode', 'reason')
#: The plan of a disk copied whole.
FULL_COPY: dict[str, t.Any] = {'backing': None, 'backing_format': None, 'base': None,
                               'bitmap': None, 'bitmap_mode': None, 'sync': 'full', 'reset': []}
#: Suffix of the companion bitmap that counts changes since the last full backup.
COMPANION_SUFFIX = '.full'
FINAL = ('succeeded', 'failed', 'canceled')
#: QEMU ids: a letter, then letters, digits, '.', '_' or '-'.
ID_RE = re.compile(r'[A-Za-z][A-Za-z0-9._-]*')
MAX_MEMBER_ID = 128

Attempt = dict[str, t.Any]
Record = dict[str, t.Any]
#: What a VM tracks changes with: QEMU's named dirty bitmaps (``B`` and ``B.full``,
#: cleared by a full backup), or libvirt's checkpoints (one per backup, named after it).
MarkKind = t.Literal['bitmap', 'checkpoint']


def a_mode(mode: str) -> str:
    """'a full', 'an incremental', 'a differential': for messages."""
    return ('an ' if mode[0] in 'aeiou' else 'a ') + mode


def companion(bitmap: str) -> str:
    """The name of the bitmap that counts the changes since the last full backup."""
    return bitmap + COMPANION_SUFFIX


def member_id(name: str, device: str) -> str:
    """The QEMU job id of the member of backup ``name`` that copies ``device``.

    ``<name>.<device>`` when that is a valid id of at most 128 characters, else
    the name shortened and a hash of the device.
    """
    readable = f'{name}.{device}'
    if ID_RE.fullmatch(readable) and len(readable) <= MAX_MEMBER_ID:
        return readable
    digest = hashlib.sha256(device.encode()).hexdigest()[:12]
    return f'{name[:MAX_MEMBER_ID - 13]}.{digest}'


def backing_name(target: str, backing: str) -> str:
    """The backing file name an image at ``target`` records: relative to its directory,
    so that a chain moved or copied as a whole directory keeps working."""
    return os.path.relpath(backing, os.path.dirname(target))


def normalise(value: t.Any) -> t.Any:
    """``value`` as it reads back from JSON (tuples become lists, ...)."""
    return json.loads(json.dumps(value, sort_keys=True))


def learn(attempts: list[Attempt], records: dict[str, Record], entries: dict[str, Record],
          only: str | None = None) -> list[Attempt]:
    """Fold what the job records and ledger entries say into the attempts.

    Called with the ledger locked, so no start is half-way: an attempt whose job
    has no ledger entry (with the same parameters) never started if it was still
    ``starting``, and is ``gone`` (dismissed and forgotten, or pruned) otherwise.
    A name used again later belongs to its newest attempt only.  Outcomes, once
    seen, are kept.

    :param only: look at the attempts of this job only (the others keep their state).
    :return: new attempt dicts; the input is not changed.
    """
    newest = {attempt['job']: index for index, attempt in enumerate(attempts)}
    learned = []
    for index, attempt in enumerate(attempts):
        attempt = dict(attempt)
        learned.append(attempt)
        if (attempt.get('outcome') in FINAL or attempt['state'] in ('not-started', 'gone')
                or (only is not None and attempt['job'] != only)):
            continue
        entry = entries.get(attempt['job'])
        ours = (newest[attempt['job']] == index and entry is not None
                and normalise(entry.get('params')) == normalise(attempt['identity']))
        if not ours:
            attempt['state'] = 'not-started' if attempt['state'] == 'starting' else 'gone'
            continue
        if t.cast(Record, entry).get('state') != 'starting':
            attempt['state'] = 'started'
        record = records.get(attempt['job']) or {}
        if record.get('outcome') in FINAL:
            attempt['outcome'] = record['outcome']
    return learned


def disk_mode(attempt: Attempt, device: str) -> str:
    """The mode ``attempt`` backed up ``device`` with (an ``auto`` backup chose per disk)."""
    return t.cast(str, attempt['disks'][device].get('mode') or attempt['mode'])


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


def status(attempt: Attempt, records: dict[str, Record]) -> str:
    """What is known of a learned attempt.

    :return: an outcome (``succeeded``, ``failed``, ``canceled``), ``running``,
        ``not-started`` (a full that may have cleared its bitmaps before its start
        failed), ``never-started`` (a start that failed before changing anything),
        or ``unknown`` (QEMU lost the job, or its record is gone before its outcome
        was seen).
    """
    if attempt.get('outcome') in FINAL:
        return t.cast(str, attempt['outcome'])
    if attempt['state'] == 'not-started':
        return 'not-started' if attempt.get('reset') else 'never-started'
    record = records.get(attempt['job'])
    if attempt['state'] != 'gone' and record is not None and record.get('live'):
        return 'running'
    return 'unknown'


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
    return {'backing': disk['target'], 'backing_format': disk.get('format') or 'qcow2',
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
        if not exists(disk['target']):
            raise _refuse(job, f"image {disk['target']} of {disk_mode(attempt, device)} backup "
                               f"'{attempt['job']}' (disk '{device}'), which this backup would "
                               'build on, is gone; run a full backup')
        seen.add(disk['target'])
        backing = disk.get('backing')
        attempt = by_target.get(backing) if backing and backing not in seen else None


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


def chain_marks(bitmap: str, chain: Record | None, kind: MarkKind) -> list[str]:
    """The change marks chain ``bitmap`` made on the VM's disks, newest first: its two
    bitmaps, or the checkpoint of every backup that made one (the chain record's
    ``marking``, which pruning leaves alone, and its attempts)."""
    if kind == 'bitmap':
        return [bitmap, companion(bitmap)]
    chain = chain or {}
    made = [*chain.get('marking', []),
            *(a['job'] for a in chain.get('attempts', []) if a['mode'] != 'differential')]
    return list(reversed(dict.fromkeys(made)))


def prune(attempts: list[Attempt]) -> list[Attempt]:
    """Drop attempts no backup can build on any more.

    An attempt is obsolete once every one of its disks has a newer succeeded
    full backup.
    """
    kept = []
    for index, attempt in enumerate(attempts):
        newer = [a for a in attempts[index + 1:] if a.get('outcome') == 'succeeded']
        if not all(any(device in a['disks'] and disk_mode(a, device) == 'full' for a in newer)
                   for device in attempt['disks']):
            kept.append(attempt)
    return kept
