# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure model of live migration as a named job: status mapping, records, policies.

This is a private module: its API may change between any two releases.
QEMU keeps one migration per VM and gives it no id; the ledger supplies the name.
Nothing here does I/O.
"""

from __future__ import annotations

import typing as t

from .shapes import job_record, progress
from .storage import all_ready

Record = dict[str, t.Any]

#: QEMU's MigrationStatus words and the job status each one maps to (``none``: no migration).
#: A unit test checks this against the enums recorded from every tested QEMU.
STATUS_MAP = {
    'setup': 'running',
    'active': 'running',
    'device': 'running',
    'wait-unplug': 'running',
    'postcopy-active': 'running',
    'postcopy-recover-setup': 'running',  # QEMU 9.1 and later
    'postcopy-recover': 'running',
    'colo': 'running',
    'pre-switchover': 'paused',
    'postcopy-paused': 'paused',
    'cancelling': 'aborting',
    'completed': 'concluded',
    'failed': 'concluded',
    'cancelled': 'concluded',
}

OUTCOMES = {'completed': 'succeeded', 'failed': 'failed', 'cancelled': 'canceled'}

#: Completion policies: what to do when a migration outlives ``completion_timeout``.
ACTIONS = ('cancel', 'postcopy', 'pause')
#: What the observer does besides the policies: start the migration proper once a
#: migration's disks are in sync (``_model/storage``). Not listed in ``actions_taken``.
MIGRATE = 'migrate'

#: Statistics kept beside the record's progress (QEMU's name -> ours).
DETAIL = {
    'expected-downtime': 'expected_downtime',
    'downtime': 'downtime',
    'setup-time': 'setup_time',
    'total-time': 'total_time',
}


def record_from_migrate(info: Record, name: str) -> Record | None:
    """The record of the migration in a ``query-migrate`` reply, or None if there is none."""
    raw = info.get('status')
    if raw is None or raw == 'none':
        return None
    status = STATUS_MAP.get(raw, 'running')
    ram = info.get('ram') or {}
    total = ram.get('total')
    remaining = ram.get('remaining')
    current = total - remaining if total is not None and remaining is not None else None
    mbps = ram.get('mbps')
    record = job_record(
        name, 'migration', status, raw_status=raw, outcome=OUTCOMES.get(raw),
        error=info.get('error-desc') if raw == 'failed' else None,
        progress_=progress(current, total,
                           rate=int(mbps * 1_000_000 / 8) if mbps is not None else None,
                           remaining=remaining),
        paused=status == 'paused', busy=status == 'running')
    record.update(transferred=ram.get('transferred'), dirty_page_rate=ram.get('dirty-pages-rate'),
                  passes=ram.get('dirty-sync-count'),
                  postcopy=raw.startswith('postcopy') or bool(ram.get('postcopy-bytes')))
    if status == 'concluded' and raw == 'completed':
        record['progress'].update(current=total, percent=100.0 if total else None)
    for qemu_key, key in DETAIL.items():
        record[key] = info.get(qemu_key)
    return record


def due_action(record: Record, params: Record, applied: t.Collection[str],
               elapsed: float) -> str | None:
    """The completion policy action to take now, if any.

    :param record: the migration's current record.
    :param params: its start parameters (``completion_timeout``,
        ``completion_action``, ``postcopy_after_passes``).
    :param applied: actions already taken.
    :param elapsed: seconds since the migration started.
    """
    if record.get('phase') == 'storage':  # the disks are being copied
        return _storage_action(record, params, applied, elapsed)
    if record['raw_status'] not in ('setup', 'active', 'device', 'pre-switchover'):
        return None
    if record.get('error') and record.get('disks'):  # a disk copy failed: stop
        return 'cancel' if 'cancel' not in applied else None
    # switching to post-copy or pausing needs QEMU's migration under way (libvirt's job
    # starts before it: QEMU refuses post-copy then, and a pause waits on libvirt's lock)
    proper = record['raw_status'] != 'setup'
    passes = params.get('postcopy_after_passes')
    if passes is not None and 'postcopy' not in applied and proper \
            and (record.get('passes') or 0) >= passes:
        return 'postcopy'
    limit = params.get('completion_timeout')
    action = params.get('completion_action') or 'cancel'
    if limit is not None and elapsed >= limit and action not in applied \
            and (proper or action == 'cancel'):
        return action
    return None


def _storage_action(record: Record, params: Record, applied: t.Collection[str],
                    elapsed: float) -> str | None:
    """While the disks are copied: ``migrate`` once they are all in sync, or the
    ``cancel`` policy (switching to post-copy or pausing needs the migration proper)."""
    if record['status'] != 'running':
        return None
    limit = params.get('completion_timeout')
    action = params.get('completion_action') or 'cancel'
    if limit is not None and elapsed >= limit and action == 'cancel' and 'cancel' not in applied:
        return 'cancel'
    if all_ready(record.get('disks') or []):
        return 'migrate'
    return None


def owner(entries: t.Iterable[Record]) -> str | None:
    """The name of the ledger's newest migration, which QEMU's ``query-migrate`` describes.

    QEMU reports only its latest migration; a dismissed entry no longer owns it.
    """
    newest = None
    for entry in entries:
        if entry.get('type') != 'migration':
            continue
        if newest is None or entry.get('started_at', 0) > newest.get('started_at', 0):
            newest = entry
    if newest is None or newest.get('state') == 'dismissed':
        return None
    return str(newest['name'])
