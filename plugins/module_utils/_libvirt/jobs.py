# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure model of a libvirt domain's jobs: records, names, outcomes, events.

This is a private module: its API may change between any two releases.
Nothing here does I/O; every function takes libvirt's replies as plain data
(``blockJobInfo`` dicts, ``jobStats`` dicts, disks from ``_libvirt_xml.disks``,
events from ``_libvirt.Connection``) and ledger entries.

libvirt keeps one block job per disk and one domain job, gives them no names and
forgets them when they end.  The ledger (the domain's metadata) names them: a
running job belongs to the newest started entry of its disk (or, for the domain
job, of its type) that has no outcome yet.  A job libvirt no longer has is
concluded; its outcome comes from an event seen, from libvirt's completed-job
statistics, or from the disk itself (a copy that pivoted, a chain that shrank).
"""

from __future__ import annotations

import typing as t

from .._model.shapes import job_record, progress
from .binding import BLOCK_JOB_TYPES

Record = dict[str, t.Any]

#: The collection's job type for each libvirt block job type.
TYPES = {'pull': 'stream', 'copy': 'mirror', 'commit': 'commit', 'active-commit': 'commit',
         'backup': 'backup'}
#: Block jobs that become ready and wait for a pivot.
PIVOTING = ('copy', 'active-commit')
#: Prefix of the names given to jobs started outside the collection.
GENERATED = 'libvirt-'
#: Domain job operations and the collection's type for them.
DOMAIN_OPERATIONS = {9: 'backup', 5: 'migration'}
#: jobStats ``type`` (virDomainJobType) of a running domain job (bounded, unbounded),
#: and of a finished one (completed, failed, canceled).
RUNNING_JOB_TYPES = (1, 2)
FINISHED = {3: 'succeeded', 4: 'failed', 5: 'canceled'}
#: What a block job event's status says about the outcome.
EVENT_OUTCOMES = {'completed': 'succeeded', 'failed': 'failed', 'canceled': 'canceled'}


def generated_name(disk: str | None, libvirt_type: str) -> str:
    """The name of a job started outside the collection: ``libvirt-vda-copy``."""
    return f'{GENERATED}{disk}-{libvirt_type}' if disk else f'{GENERATED}domain-{libvirt_type}'


def parse_generated(name: str) -> tuple[str | None, str] | None:
    """(disk or None for the domain job, libvirt type) of a generated name, else None."""
    if not name.startswith(GENERATED):
        return None
    rest = name[len(GENERATED):]
    for kind in sorted(set(TYPES) | set(DOMAIN_OPERATIONS.values()), key=len, reverse=True):
        if rest.endswith('-' + kind):
            disk = rest[:-len(kind) - 1]
            return (None if disk == 'domain' else disk), kind
    return None


def _base(name: str, job_type: str, status: str, raw: str) -> Record:
    return job_record(name, job_type, status, raw_status=raw, ready=status == 'ready',
                      auto_finalize=True, auto_dismiss=False, busy=status == 'running')


def block_record(name: str, disk: Record, info: Record) -> Record:
    """The record of the block job ``blockJobInfo`` reports on ``disk``.

    A copy or active commit is ``ready`` once libvirt marks its ``<mirror>``
    ``ready='yes'`` (after QEMU's ready event).
    """
    kind = BLOCK_JOB_TYPES.get(info.get('type', 0), 'unknown')
    mirror = disk.get('mirror') or {}
    ready = kind in PIVOTING and mirror.get('ready') in ('yes', 'pivot')
    status = 'ready' if ready else 'running'
    if mirror.get('ready') == 'abort':
        status = 'aborting'
    raw = {'yes': 'ready', 'abort': 'aborting', 'pivot': 'pivoting'}.get(mirror.get('ready') or '', 'running')
    record = _base(name, TYPES.get(kind, kind), status, raw)
    current, total = info.get('cur'), info.get('end')
    record['progress'] = progress(current, total)
    record['speed'] = info.get('bandwidth')
    record.update(device=disk['target'], libvirt_type=kind)
    if mirror.get('path'):
        record['target'] = mirror['path']
    return record


def domain_record(name: str, stats: Record) -> Record:
    """The record of the running domain job in ``jobStats``."""
    operation = DOMAIN_OPERATIONS.get(stats.get('operation', 0), 'unknown')
    record = _base(name, operation, 'running', 'active')
    record.update(_stats_detail(stats))
    record['libvirt_type'] = operation
    return record


def _stats_detail(stats: Record) -> Record:
    """Progress and statistics from ``jobStats`` (disk for a backup, data for a migration)."""
    prefix = 'disk' if DOMAIN_OPERATIONS.get(stats.get('operation', 0)) == 'backup' else 'data'
    current, total = stats.get(f'{prefix}_processed'), stats.get(f'{prefix}_total')
    detail: Record = {'progress': progress(current, total,
                                           remaining=stats.get(f'{prefix}_remaining'))}
    if prefix == 'data':
        detail['progress']['rate'] = stats.get('memory_bps')
        detail.update(downtime=stats.get('downtime'), total_time=stats.get('time_elapsed'),
                      setup_time=stats.get('setup_time'), passes=stats.get('memory_iteration'),
                      transferred=stats.get('memory_processed'),
                      dirty_page_rate=stats.get('memory_dirty_rate'),
                      expected_downtime=stats.get('downtime') if stats.get('type') in
                      RUNNING_JOB_TYPES else None)
        if stats.get('disk_total'):  # libvirt copies the disks too (storage: copy)
            detail.update(storage='copy', disks_progress=progress(stats.get('disk_processed'),
                                                                  stats['disk_total']))
    else:
        detail['total_time'] = stats.get('time_elapsed')
    return detail


def migration_detail(stats: Record) -> Record:
    """Progress and statistics of a migration from its ``jobStats``."""
    return _stats_detail(dict(stats, operation=5))


def concluded(entry: Record, result: str, error: str | None,
              progress: Record | None = None) -> Record:
    """The record of a named job libvirt no longer has, with its outcome."""
    record = _base(entry['name'], t.cast(str, entry['type']), 'concluded', 'concluded')
    record.update(outcome=result, error=error, busy=False)
    last = entry.get('last') or {}
    record['progress'] = progress or last.get('progress') or record['progress']
    if result == 'succeeded':
        done = record['progress']
        total = done.get('total')
        if total:
            record['progress'] = dict(done, current=total, percent=100.0)
    record['speed'] = last.get('speed')
    return record


def finished_stats(stats: Record, job_type: str) -> tuple[str, str | None] | None:
    """(outcome, error) from completed-job statistics of ``job_type``, or None."""
    if DOMAIN_OPERATIONS.get(stats.get('operation', 0)) != job_type:
        return None
    result = FINISHED.get(stats.get('type', 0))
    if result is None:
        return None
    if result == 'succeeded' and stats.get('success') is False:
        result = 'failed'
    error = stats.get('errmsg') if result == 'failed' else None
    if result == 'failed' and not error:
        error = f'libvirt reports that the {job_type} failed'
    return result, error


def block_outcome(entry: Record, disk: Record | None, event: str | None) -> tuple[str, str | None]:
    """How a named block job that libvirt no longer has ended.

    :param entry: its ledger entry (``disk``, ``libvirt_type``, ``expect_source``,
        ``expect_chain``, ``cancel_requested``).
    :param disk: the disk now (from the domain XML), or None if it is gone.
    :param event: the status of the last block job event seen for the disk, if any.
    """
    kind = entry.get('libvirt_type')
    target = entry.get('disk')
    if event in EVENT_OUTCOMES:
        result = EVENT_OUTCOMES[event]
        if entry.get('cancel_requested') and result != 'failed':
            result = 'canceled'
        error = (f'libvirt reports that the {kind} job on disk {target} failed (libvirt keeps '
                 "no reason; see libvirtd's log)") if result == 'failed' else None
        return result, error
    if disk is not None and changed_as_expected(entry, disk):
        return 'succeeded', None
    if entry.get('cancel_requested'):
        return 'canceled', None
    what = 'pivoting to' if kind in PIVOTING else 'changing the backing chain as'
    return 'failed', (f'the {kind} job on disk {target} ended without {what} expected '
                      "(libvirt keeps no reason; see libvirtd's log)")


def changed_as_expected(entry: Record, disk: Record) -> bool:
    """Whether the disk shows what the job was to achieve (new source, shorter chain)."""
    source = entry.get('expect_source')
    if source is not None:
        return bool(disk['source'] == source)
    chain = entry.get('expect_chain')
    if chain is not None:
        return bool([image['path'] for image in disk['chain'] if image['path']] == chain)
    return False


def expected_chain(chain: list[str], kind: str, top: str | None, base: str | None) -> list[str]:
    """The chain a pull or an intermediate commit leaves behind (paths, top first)."""
    if kind == 'pull':
        return [chain[0]] + (chain[chain.index(base):] if base else [])
    upper = chain.index(top) if top else 0
    lower = chain.index(base) if base else len(chain) - 1
    return chain[:upper] + chain[lower:]


def owner(entries: t.Iterable[Record], disk: str | None, job_type: str) -> Record | None:
    """The entry a running job belongs to: the newest started one of its disk (or of its
    type, for the domain job) whose outcome is not known yet."""
    chosen = None
    for entry in entries:
        if entry.get('state') not in ('starting', 'started'):
            continue
        if (entry.get('last') or {}).get('outcome'):
            continue
        if disk is not None and disk not in (entry.get('backup_disks') or [entry.get('disk')]):
            continue
        if entry.get('type') != job_type:
            continue
        if chosen is None or entry.get('started_at', 0) >= chosen.get('started_at', 0):
            chosen = entry
    return chosen


def client_event(event: Record, name: str | None) -> Record:
    """A libvirt event in the shape the job client reads (QEMU's event names).

    A block job event that ends a named job becomes ``BLOCK_JOB_COMPLETED`` (with
    an ``error`` when it failed) or ``BLOCK_JOB_CANCELLED``.
    """
    if event.get('event') != 'block-job' or name is None:
        return {'event': 'LIBVIRT_' + str(event.get('event', 'event')).upper().replace('-', '_'),
                'data': event}
    status = event.get('status')
    if status == 'canceled':
        return {'event': 'BLOCK_JOB_CANCELLED', 'data': {'device': name}}
    if status in ('completed', 'failed'):
        data: Record = {'device': name}
        if status == 'failed':
            data['error'] = (f"libvirt reports that the {event.get('type')} job on disk "
                             f"{event.get('disk')} failed (libvirt keeps no reason; see "
                             "libvirtd's log)")
        return {'event': 'BLOCK_JOB_COMPLETED', 'data': data}
    return {'event': 'BLOCK_JOB_' + str(status).upper(), 'data': {'device': name}}
