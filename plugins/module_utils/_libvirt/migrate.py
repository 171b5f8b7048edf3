# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live migration of a libvirt domain: ``migrateToURI3`` with typed parameters.

This is a private module: its API may change between any two releases.

The migration is peer to peer: the source libvirtd talks to the destination
libvirtd (``dest_uri``) and drives every phase itself.  ``migrateToURI3``
returns only when the migration has ended, so the module calls it from a
thread of its own and returns once libvirt reports the migration job (or the
call failed).  The daemon carries on after the module has exited.

While the domain is here, its job statistics say how far the migration is and,
once it ended, how (libvirt keeps the completed statistics until it restarts).
When it has left, the destination is the witness: the domain runs there.
"""

from __future__ import annotations

import threading
import time
import typing as t

from .._errors import BackendError, JobConflict, TransportError, VmjobsError, naming
from .._model.session import Note, Record
from .._waiter import Waiter
from . import binding as _libvirt
from . import jobs as _libvirt_jobs
from . import verbs as _verbs
from .connection import Connection, Domain
from .verbs import MIB

#: Longest wait for libvirt to report a migration it accepted.
START_SECONDS = 10.0


def flags(params: dict[str, t.Any], persistent: bool) -> int:
    """``virDomainMigrateFlags`` for the migration ``params`` ask for."""
    value = _libvirt.MIGRATE_LIVE | _libvirt.MIGRATE_PEER2PEER
    if persistent:
        value |= _libvirt.MIGRATE_PERSIST_DEST | _libvirt.MIGRATE_UNDEFINE_SOURCE
    if params.get('auto_converge'):
        value |= _libvirt.MIGRATE_AUTO_CONVERGE
    if params.get('postcopy'):
        value |= _libvirt.MIGRATE_POSTCOPY
    if params.get('multifd_channels'):
        value |= _libvirt.MIGRATE_PARALLEL
    if params.get('xbzrle_cache_size') is not None:
        value |= _libvirt.MIGRATE_COMPRESSED
    if params.get('tls_creds'):
        value |= _libvirt.MIGRATE_TLS
    if params.get('unsafe'):
        value |= _libvirt.MIGRATE_UNSAFE
    if params.get('storage') == 'copy':  # libvirt copies the disks (NBD and mirrors) itself
        value |= _libvirt.MIGRATE_NON_SHARED_DISK
    return value


def typed_params(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The typed parameters of ``migrateToURI3`` (libvirt's names).

    libvirt takes the bandwidth in MiB/s: bytes per second are rounded up.
    ``tls_creds`` only switches TLS on (libvirt uses its own certificates);
    ``tls_hostname`` is the name the destination's certificate must carry. With
    ``storage: copy``, ``disks`` are the disks libvirt copies (all writable ones if not given).
    """
    typed: dict[str, t.Any] = {}
    if params.get('bandwidth'):
        typed['bandwidth'] = -(-params['bandwidth'] // MIB)
    if params.get('multifd_channels'):
        typed['parallel.connections'] = params['multifd_channels']
    if params.get('xbzrle_cache_size') is not None:
        typed['compression'] = 'xbzrle'
        typed['compression.xbzrle.cache'] = params['xbzrle_cache_size']
    if params.get('tls_hostname'):
        typed['tls.destination'] = params['tls_hostname']
    if params.get('storage') == 'copy' and params.get('disks'):
        typed['migrate_disks'] = list(params['disks'])
    return typed


def start(conn: Connection, domain: Domain, waiter: Waiter, name: str,
          params: dict[str, t.Any], note: Note) -> None:
    """Start the outgoing migration ``name`` and return once libvirt runs it.

    :raise JobConflict: the domain already runs a domain job.
    :raise BackendError: libvirt refused (its code name and text kept).
    :raise TransportError: the destination cannot be reached.
    """
    stats = domain.call('jobStats', 0)
    if stats.get('type') in _libvirt_jobs.RUNNING_JOB_TYPES:
        operation = _libvirt.DOMAIN_JOB_OPERATIONS.get(stats.get('operation', 0), 'unknown')
        raise JobConflict(f"job '{name}': the domain already runs a {operation} job and libvirt "
                          'runs one domain job at a time', name)
    persistent = domain.persistent()
    dest_uri = params['dest_uri']
    note(dest_uri=dest_uri, started_at=time.time(), persistent=persistent,
         source_running=domain.call('isActive') == 1 and domain.call('state', 0)[0] == 1)
    outcome: list[BackendError | TransportError | None] = []
    typed, value = typed_params(params), flags(params, persistent)
    if params.get('downtime_limit') is not None:
        with naming(name):
            domain.call('migrateSetMaxDowntime', params['downtime_limit'], 0)

    def migrate() -> None:
        # A connection of its own: libvirt would queue this session's queries behind
        # the long migrateToURI3 call on a shared one (seconds each).
        try:
            with Connection(conn.uri, conn.domain_name, events=False) as own:
                own.open_domain().call('migrateToURI3', dest_uri, typed, value)
            outcome.append(None)
        except (BackendError, TransportError) as err:
            outcome.append(err)

    worker = threading.Thread(target=migrate, name=f'migrate-{name}', daemon=True)
    worker.start()

    def under_way(left: float) -> bool | None:
        if outcome:
            return False
        if domain.call('jobStats', 0).get('type') in _libvirt_jobs.RUNNING_JOB_TYPES:
            return True
        worker.join(min(left, 0.05))
        return None

    if waiter.until(under_way, START_SECONDS):
        return
    failure = outcome[0] if outcome else None
    if isinstance(failure, BackendError):  # raised in the worker thread: name it here
        raise failure.for_job(name) from failure
    if failure is not None:
        raise VmjobsError(f"job '{name}': {failure}", name) from failure


def record(domain: Domain, entry: Record, completed: list[Record]) -> Record | None:
    """The record of the domain's migration if ``entry`` started it, else None."""
    if entry.get('dest_uri') is None:
        return None  # the start never got as far as asking libvirt
    stats = domain.call('jobStats', 0)
    operation = _libvirt_jobs.DOMAIN_OPERATIONS.get(stats.get('operation', 0))
    if stats.get('type') in _libvirt_jobs.RUNNING_JOB_TYPES and operation == 'migration':
        found = _libvirt_jobs.domain_record(entry['name'], stats)
        # libvirt's job runs before QEMU's migration does (and while libvirt copies the
        # disks); QEMU reports the memory to move only once its migration has started
        moving = bool(stats.get('memory_total'))
        found.update(raw_status='active' if moving else 'setup', dest_uri=entry['dest_uri'])
        return found
    asked = entry.get('cancel_requested') or 'cancel' in (entry.get('applied') or [])
    flags_ = _libvirt.JOB_STATS_COMPLETED | _libvirt.JOB_STATS_KEEP_COMPLETED
    for done in [*completed, domain.call('jobStats', flags_)]:
        ended = _finished(done, asked)
        if ended is not None:
            return _concluded(entry, *ended, detail=done)
    # libvirt keeps completed-job statistics of successful migrations only; the end of
    # an aborted or failed one shows for a moment, without statistics. After that, a
    # cancel the collection asked for is the witness, while the domain still runs here.
    ended = _finished(stats, asked)
    if ended is not None:
        return _concluded(entry, *ended)
    if asked and domain.call('isActive') == 1:
        return _concluded(entry, 'canceled', None)
    return None


def _finished(stats: Record, asked: bool) -> tuple[str, str | None] | None:
    """How a migration ended by libvirt's statistics. A cancel the collection asked for
    that libvirt ends as failed without a reason (the stream broke as QEMU dropped it)
    was a cancel."""
    ended = _libvirt_jobs.finished_stats(stats, 'migration')
    if ended is not None and asked and ended[0] == 'failed' and not stats.get('errmsg'):
        return 'canceled', None
    return ended


def _concluded(entry: Record, result: str, error: str | None, detail: Record | None = None) -> Record:
    found = _libvirt_jobs.concluded(dict(entry, type='migration'), result, error)
    if detail is not None:
        found.update(_libvirt_jobs.migration_detail(detail))
    found['raw_status'] = {'succeeded': 'completed', 'failed': 'failed',
                           'canceled': 'cancelled'}[result]
    return found


def apply_verb(domain: Domain, name: str, verb: str, **arguments: t.Any) -> None:
    """Apply a verb (cancel, set-speed) or a completion action (postcopy, pause)."""
    call = _verbs.migration_call(verb, arguments)
    if call is not None:
        with naming(name):
            domain.call(call[0], *call[1])


def witness(entry: Record, domain_name: str) -> Record | None:
    """Ask the destination how a migration ended once the domain has left.

    :return: ``{'outcome', 'error', 'running'}`` or None if the destination cannot tell.
    """
    dest_uri = entry.get('dest_uri') or (entry.get('params') or {}).get('dest_uri')
    if not dest_uri:
        return None
    try:
        with Connection(dest_uri, domain_name, events=False) as conn:
            state = conn.open_domain().call('state', 0)[0]
    except (TransportError, VmjobsError):
        return None
    if state not in (1, 3):  # running or paused: it arrived
        return None
    return {'outcome': 'succeeded', 'error': None, 'running': state == 1}
