# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup chains: the history of their backups, and the marks that track their changes.

This is a private module: its API may change between any two releases.
Nothing here does I/O, except that the caller passes ``exists`` to test paths.

A *chain* belongs to one dirty bitmap name.  Its history is a list of
*attempts*, oldest first, one per backup started with that bitmap, each::

    {'job': name, 'mode': 'full' | 'incremental' | 'differential',
     'identity': the job's parameters as the ledger keeps them,
     'state': 'starting' | 'started' | 'not-started' | 'gone',
     'outcome': None | 'succeeded' | 'failed' | 'canceled',
     'reset': True once a full backup is about to clear its bitmaps,
     'delivery': 'pull' for a pull backup (absent for a push backup),
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

A pull backup changes no bitmap until its reader acknowledges the read: it adds
``B.pull`` at its start instant, and only a ``succeeded`` verdict makes that the
chain's ``B`` (and, for a full, ``B.full``). A pull backup that failed, was canceled
or never got a verdict has changed nothing, so the chain goes on from the backup before.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import typing as t

MODES = ('full', 'incremental', 'differential')
#: ``auto``: per disk, an incremental when the chain is sound, else a full backup.
CHOICES = (*MODES, 'auto')
#: What a backup's result and ledger entry say of each disk.
DISK_KEYS = ('device', 'target', 'format', 'backing', 'mode', 'reason')
#: Suffix of the companion bitmap that counts changes since the last full backup.
COMPANION_SUFFIX = '.full'
#: Suffix of the bitmap a pull backup adds at its start instant: what changes while its
#: reader reads. It becomes the chain's bitmap(s) when the reader acknowledges the read.
PULL_SUFFIX = '.pull'
#: What a pull backup's result and ledger entry say of each disk besides ``DISK_KEYS``.
PULL_KEYS = ('export', 'uri', 'meta_context')
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


def pull_mark(bitmap: str) -> str:
    """The name of the bitmap a pull backup of chain ``bitmap`` adds at its start."""
    return bitmap + PULL_SUFFIX


def meta_context(bitmap: str) -> str:
    """The NBD meta context that lists the extents dirty in ``bitmap`` of an export."""
    return 'qemu:dirty-bitmap:' + bitmap


def is_pull(entry: Record | None) -> bool:
    """Whether a ledger entry or chain attempt is a pull backup's."""
    if not entry:
        return False
    return bool((entry.get('params') or entry).get('delivery') == 'pull')


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
    seen, are kept.  A pull backup the VM lost before its reader's verdict counts as
    canceled: it changed no bitmap.

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
        elif record.get('lost') and is_pull(attempt) and not t.cast(Record, entry).get('verdict'):
            # QEMU lost a pull backup before any verdict: it changed no bitmap.
            attempt['outcome'] = 'canceled'
    return learned


def disk_mode(attempt: Attempt, device: str) -> str:
    """The mode ``attempt`` backed up ``device`` with (an ``auto`` backup chose per disk)."""
    return t.cast(str, attempt['disks'][device].get('mode') or attempt['mode'])


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
