# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-memory stand-ins for unit tests: a VM's job table, a clock, a ledger that flags nested locks.

:class:`FakeVM` implements the ``Backend`` protocol of ``_model/session.py`` and hands
out :class:`FakeSession` objects implementing ``Session``.  It keeps its jobs in
QEMU's own reply shapes (``query-jobs`` and ``query-block-jobs`` entries, as in
the recorded fixtures) and turns them into records with ``_model.records_from_qmp``
exactly like the QMP backend does.  Verbs are checked against QEMU's verb table
(:data:`QEMU_VERB_TABLE`, copied from QEMU 7.2's ``job.c``, not from the code under
test) and change the state as QEMU does; refusals carry QEMU's recorded texts.
Jobs move along their normal path only when someone blocks in ``wait_event``:
one status step per job per call, so tests are deterministic and never sleep.

Like a real QMP socket the fake serves one client at a time: opening a session
while another is open raises ``MonitorBusy`` (after ``connect_timeout`` of fake time);
and a new session sees only the events emitted after it opened.
"""

from __future__ import annotations

import contextlib
import copy
import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils import _targets
from ansible_collections.vmjobs.qemu.plugins.module_utils._args import common as _args
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    BackendError,
    MonitorBusy,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._exports import TlsSource
from ansible_collections.vmjobs.qemu.plugins.module_utils._ledger.files import Ledger
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    records as _model,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    vocabulary as _vocabulary,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.chains import MarkKind
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import nodes as _nodes

Record = dict[str, t.Any]
Note = t.Callable[..., None]

#: QEMU's JobStatus order in job.c's tables: U, C, R, P, Y, S, W, D, X, E, N.
QEMU_STATUSES = ('undefined', 'created', 'running', 'paused', 'ready', 'standby', 'waiting',
                 'pending', 'aborting', 'concluded', 'null')
#: QEMU 7.2 job.c ``JobVerbTable``, row by row (1 = the verb is accepted in that status).
_JOB_VERB_TABLE = """
              U C R P Y S W D X E N
    cancel    0 1 1 1 1 1 1 1 0 0 0
    pause     0 1 1 1 1 1 0 0 0 0 0
    resume    0 1 1 1 1 1 0 0 0 0 0
    set-speed 0 1 1 1 1 1 0 0 0 0 0
    complete  0 0 0 0 1 1 0 0 0 0 0
    finalize  0 0 0 0 0 0 0 1 0 0 0
    dismiss   0 0 0 0 0 0 0 0 0 1 0
"""
QEMU_VERB_TABLE: dict[str, tuple[int, ...]] = {
    row.split()[0]: tuple(int(cell) for cell in row.split()[1:])
    for row in _JOB_VERB_TABLE.strip().splitlines()[1:]
}
SCOPE = 'qmp:/run/vm1/qmp.sock'
#: Size of every job the fake starts (the recorded jobs copy 64 MiB too).
SIZE = 67108864
CANCELED = 'Operation canceled'


def qemu_accepts(verb: str, status: str) -> bool:
    """Whether QEMU 7.2 accepts ``verb`` for a job in ``status``."""
    return bool(QEMU_VERB_TABLE[verb][QEMU_STATUSES.index(status)])


class FakeClock:
    """A monotonic clock whose ``sleep`` advances it (and records what was asked)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CheckedLedger(Ledger):
    """A real ledger whose ``lock`` fails loudly instead of deadlocking when nested.

    ``flock`` locks belong to an open file description: a second ``open`` + ``LOCK_EX``
    of the same ``.lock`` file in the same process blocks forever.
    """

    held = False

    @contextlib.contextmanager
    def lock(self) -> t.Iterator[None]:
        if self.held:
            raise AssertionError('nested Ledger.lock(): a real flock would block forever here')
        with super().lock():
            self.held = True
            try:
                yield
            finally:
                self.held = False


class FakeVM:
    """A VM (or qemu-storage-daemon) with a job table; implements ``Backend``.

    :ivar calls: what the client did: ``('start', name, params)``, ``('verb', name, verb,
        arguments)``, ``('cleanup', entry, discard)``, ``('session',)``.
    :ivar fail: job name -> the error text the job concludes with once it runs.
    :ivar frozen: names of jobs that never move on their own.
    :ivar start_error: raised by ``start`` after the start noted what it attached.
    :ivar kept: what ``cleanup`` reports as kept (nodes a device still uses).
    :ivar busy: how many coming session openings find the monitor busy.
    """

    change_marks: MarkKind = 'bitmap'
    nbd_tls: TlsSource = 'dir'

    def __init__(self, clock: FakeClock, scope: str = SCOPE, connect_timeout: float = 5.0) -> None:
        self.clock = clock
        self.scope = scope
        self.targets = _targets.Targets(run=None)
        self.connect_timeout = connect_timeout
        self.jobs: dict[str, Record] = {}
        self.block_jobs: dict[str, Record] = {}
        self.state: dict[str, dict[str, t.Any]] = {}
        self.events: list[Record] = []
        self.calls: list[tuple[t.Any, ...]] = []
        self.fail: dict[str, str] = {}
        self.frozen: set[str] = set()
        self.start_error: BackendError | None = None
        self.kept: list[str] = []
        self.busy = 0
        self.is_open = False

    # -- setting up -------------------------------------------------------------------------

    def load(self, reply: dict[str, list[Record]],
             ready_types: t.Collection[str] = ('mirror', 'commit')) -> FakeVM:
        """Add the jobs of a recorded ``{'query-jobs': ..., 'query-block-jobs': ...}`` pair."""
        block_jobs = {bj['device']: bj for bj in reply['query-block-jobs']}
        for job in reply['query-jobs']:
            name = job['id']
            self.jobs[name] = copy.deepcopy(job)
            bj = block_jobs.get(name)
            if bj is not None:
                self.block_jobs[name] = copy.deepcopy(bj)
            self.state[name] = {
                'ready_type': job['type'] in ready_types,
                'auto_finalize': bj.get('auto-finalize', True) if bj else True,
                'auto_dismiss': bj.get('auto-dismiss', False) if bj else False,
                'user_paused': job['status'] in ('paused', 'standby'),
                'complete': False,
                'abort_error': None,
            }
        return self

    def status(self, name: str) -> str:
        """The job's QEMU status, or ``absent`` if QEMU does not have it."""
        return t.cast(str, self.jobs[name]['status']) if name in self.jobs else _vocabulary.ABSENT

    def verbs(self) -> list[tuple[str, str]]:
        """(name, verb) of every verb applied so far."""
        return [(call[1], call[2]) for call in self.calls if call[0] == 'verb']

    # -- Backend ------------------------------------------------------------------------------

    def backup_sources(self, name: str, devices: t.Sequence[str] | None) -> list[Record]:
        raise NotImplementedError('this fake VM has no disks to back up (see GroupVM)')

    def remove_marks(self, marks: dict[str, list[str]]) -> None:
        raise NotImplementedError('this fake VM has no bitmaps (see GroupVM)')

    def start_backup(self, name: str, params: dict[str, t.Any], plan: list[Record], note: Note,
                     before_reset: t.Callable[[], None]) -> None:
        raise NotImplementedError('this fake VM starts no backup groups (see GroupVM)')

    @contextlib.contextmanager
    def session(self) -> t.Iterator[FakeSession]:
        if self.is_open or self.busy:
            self.busy = max(0, self.busy - 1)
            self.clock.advance(self.connect_timeout)
            raise MonitorBusy(f'QMP monitor {self.scope} sent no greeting within {self.connect_timeout:.1f}s: another client '
                              'holds it')
        self.is_open = True
        self.calls.append(('session',))
        # QMP delivers only the events emitted while the client is connected.
        self.events.clear()
        try:
            yield FakeSession(self)
        finally:
            self.is_open = False

    def witness(self, entry: Record) -> Record | None:
        """No destination to ask (see fake_migration.MigratingVM)."""
        return None

    def finish(self, entry: Record) -> bool:
        return False

    def migration(self, entry: Record) -> Record | None:
        """This VM never migrates (see fake_migration.MigratingVM)."""
        return None

    def migration_verb(self, name: str, verb: str, arguments: dict[str, t.Any]) -> None:
        raise AssertionError(f'no migration to {verb}')

    # -- QEMU's behaviour -----------------------------------------------------------------------

    def emit(self, event: str, **data: t.Any) -> None:
        self.events.append({'event': event, 'data': data,
                            'timestamp': {'seconds': int(self.clock()), 'microseconds': 0}})

    def set_status(self, name: str, status: str) -> None:
        self.jobs[name]['status'] = status
        bj = self.block_jobs.get(name)
        if bj is not None:
            bj['status'] = status
            bj['ready'] = status in ('ready', 'standby')
            bj['paused'] = status in ('paused', 'standby')
            bj['busy'] = status in ('running', 'ready')
        self.emit('JOB_STATUS_CHANGE', status=status, id=name)

    def _block_event(self, event: str, name: str, error: str | None = None) -> None:
        bj = self.block_jobs.get(name)
        if bj is None:
            return
        data = {'device': name, 'len': bj['len'], 'offset': bj['offset'], 'speed': bj['speed'],
                'type': bj['type']}
        if error is not None:
            data['error'] = error
        self.emit(event, **data)

    def conclude(self, name: str, error: str | None) -> None:
        if error is not None:
            self.jobs[name]['error'] = error
            if name in self.block_jobs:
                self.block_jobs[name]['error'] = error
        self._block_event('BLOCK_JOB_CANCELLED' if error == CANCELED else 'BLOCK_JOB_COMPLETED',
                          name, None if error == CANCELED else error)
        self.set_status(name, 'concluded')
        if self.state[name]['auto_dismiss']:
            # QEMU dismisses at once: no query ever sees such a job concluded.
            self.remove(name)

    def remove(self, name: str) -> None:
        self.set_status(name, 'null')
        del self.jobs[name]
        self.block_jobs.pop(name, None)
        del self.state[name]

    def step(self) -> None:
        """Let every job take one step on its normal path, as QEMU's coroutines would."""
        for name in list(self.jobs):
            if name in self.frozen:
                continue
            state = self.state[name]
            status = self.jobs[name]['status']
            if status == 'created':
                self.set_status(name, 'running')
            elif status == 'running':
                if name in self.fail:
                    state['abort_error'] = self.fail[name]
                    self.set_status(name, 'aborting')
                    continue
                self.jobs[name]['current-progress'] = self.jobs[name]['total-progress']
                if name in self.block_jobs:
                    self.block_jobs[name]['offset'] = self.block_jobs[name]['len']
                if state['ready_type']:
                    self.set_status(name, 'ready')
                    self._block_event('BLOCK_JOB_READY', name)
                else:
                    self.set_status(name, 'waiting')
            elif status == 'ready' and state['complete']:
                self.set_status(name, 'waiting')
            elif status == 'waiting':
                # An auto-finalized job passes PENDING at once: no query ever sees it there.
                self.set_status(name, 'pending')
                if state['auto_finalize']:
                    self.conclude(name, None)
                elif name in self.block_jobs:
                    self.emit('BLOCK_JOB_PENDING', type=self.jobs[name]['type'], id=name)
            elif status == 'aborting':
                self.conclude(name, state['abort_error'] or CANCELED)

    def refuse(self, command: str, desc: str, name: str,
               error_class: str = 'GenericError') -> BackendError:
        """QEMU's answer to a command it refuses, as the QMP backend reports it."""
        return BackendError(command, error_class, desc, name)

    def apply(self, name: str, verb: str, arguments: dict[str, t.Any]) -> None:
        if verb == 'change':  # QEMU 8.2's block-job-change: the statuses set-speed takes
            if name not in self.jobs or not qemu_accepts('set-speed', self.jobs[name]['status']):
                raise self.refuse('block-job-change', f"Block job '{name}' not found", name,
                                  'DeviceNotActive')
            self.block_jobs[name]['copy-mode'] = arguments['copy_mode']
            return
        if verb == 'set-speed':
            if name not in self.block_jobs:
                raise self.refuse('block-job-set-speed', f"Block job '{name}' not found", name,
                                  'DeviceNotActive')
            command = 'block-job-set-speed'
        else:
            command = 'job-' + verb
            if name not in self.jobs:
                raise self.refuse(command, 'Job not found', name)
        status = self.jobs[name]['status']
        if not qemu_accepts(verb, status):
            raise self.refuse(command, f"Job '{name}' in state '{status}' cannot accept command verb '{verb}'", name)
        state = self.state[name]
        if verb == 'set-speed':
            self.block_jobs[name]['speed'] = arguments['speed']
        elif verb == 'cancel' and arguments.get('keep_copy') and status == 'ready':
            state['complete'] = 'no-pivot'  # block-job-cancel: ends without an error
        elif verb == 'cancel':
            state['abort_error'] = CANCELED
            self.set_status(name, 'aborting')
        elif verb == 'pause':
            state['user_paused'] = True
            if status in ('created', 'running'):
                self.set_status(name, 'paused')
            elif status == 'ready':
                self.set_status(name, 'standby')
        elif verb == 'resume':
            if not state['user_paused']:
                raise self.refuse(command, "Can't resume a job that was not paused", name)
            state['user_paused'] = False
            self.set_status(name, 'ready' if status == 'standby' else 'running')
        elif verb == 'complete':
            state['complete'] = True
        elif verb == 'finalize':
            self.conclude(name, None)
        elif verb == 'dismiss':
            self.remove(name)

    def start(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        kind = params['type']
        if kind in ('mirror', 'backup'):
            fmt_node, file_node = _nodes.target_node_names(name)
            note(created_files=[params['target']], attached=[file_node])
            note(attached=[fmt_node, file_node])
        elif kind == 'create':
            note(created_files=[params['target']])
        elif kind == 'commit':
            note(active=not params.get('top'))
        if self.start_error is not None:
            raise self.start_error
        command = {'create': 'blockdev-create', 'mirror': 'blockdev-mirror',
                   'backup': 'blockdev-backup'}.get(kind, 'block-' + kind)
        if name in self.jobs:
            raise BackendError(command, 'GenericError', f"Job ID '{name}' already in use")
        self.jobs[name] = {'current-progress': 0, 'status': 'created', 'total-progress': SIZE,
                           'type': kind, 'id': name}
        if kind == 'create':
            # blockdev-create jobs are no block jobs: JOB_DEFAULT | JOB_MANUAL_DISMISS.
            auto_finalize, auto_dismiss = True, False
        else:
            auto_finalize, auto_dismiss = params['auto_finalize'], params['auto_dismiss']
            self.block_jobs[name] = {
                'auto-finalize': auto_finalize, 'io-status': 'ok', 'device': name,
                'auto-dismiss': auto_dismiss, 'busy': False, 'len': SIZE, 'offset': 0,
                'status': 'created', 'paused': False, 'speed': params.get('speed') or 0,
                'ready': False, 'type': kind}
        self.state[name] = {
            'ready_type': kind == 'mirror' or (kind == 'commit' and not params.get('top')),
            'auto_finalize': auto_finalize, 'auto_dismiss': auto_dismiss,
            'user_paused': False, 'complete': False, 'abort_error': None}
        self.emit('JOB_STATUS_CHANGE', status='created', id=name)
        self.set_status(name, 'running')


#: The options each block job type needs at least, as a task gives them.
MINIMAL: dict[str, dict[str, t.Any]] = {
    'stream': {'device': 'disk0'},
    'commit': {'device': 'disk0'},
    'mirror': {'device': 'disk0', 'target': '/srv/vm1/m.qcow2'},
    'backup': {'device': 'disk0', 'target': '/srv/vm1/b.qcow2'},
    'create': {'target': '/srv/vm1/c.qcow2', 'size': '64M'},
    'amend': {'device': 'disk0', 'amend': {'encrypt': {'state': 'active', 'new-secret': 's1'}}},
}


def block_job_params(name: str, kind: str, **options: t.Any) -> dict[str, t.Any]:
    """The parameters ``block_job`` would pass to ``JobClient.start`` (argspec defaults)."""
    values = {key: spec.get('default') for key, spec in _args.BLOCK_JOB.items()}
    values.update(options, name=name, type=kind)
    return _args.block_job_params(values)


class FakeSession:
    """One open connection to a :class:`FakeVM`; implements ``Session``."""

    def __init__(self, vm: FakeVM) -> None:
        self.vm = vm

    def know(self, entries: t.Sequence[Record]) -> None:
        pass

    def backup_sources(self, name: str, devices: t.Sequence[str] | None) -> list[Record]:
        return self.vm.backup_sources(name, devices)

    def remove_marks(self, marks: dict[str, list[str]]) -> None:
        self.vm.calls.append(('remove_marks', copy.deepcopy(marks)))
        self.vm.remove_marks(marks)

    def start_backup(self, name: str, params: dict[str, t.Any], plan: list[Record], note: Note,
                     before_reset: t.Callable[[], None]) -> None:
        self.vm.calls.append(('start', name, copy.deepcopy(dict(params, plan=plan))))
        self.vm.start_backup(name, params, plan, note, before_reset)

    def ended(self) -> list[Record]:
        return []

    def adoption(self, name: str) -> Record | None:
        return None

    def records(self) -> list[Record]:
        return _model.records_from_qmp(copy.deepcopy(list(self.vm.jobs.values())),
                                       copy.deepcopy(list(self.vm.block_jobs.values())))

    def start(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        self.vm.calls.append(('start', name, copy.deepcopy(params)))
        self.vm.start(name, params, note)

    def verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        self.vm.calls.append(('verb', name, verb, arguments))
        self.vm.apply(name, verb, arguments)

    def cleanup(self, entry: Record, discard: bool = False) -> list[str]:
        self.vm.calls.append(('cleanup', copy.deepcopy(entry), discard))
        return list(self.vm.kept)

    def migration(self, entry: Record) -> Record | None:
        return self.vm.migration(entry)

    def migration_verb(self, name: str, verb: str, **arguments: t.Any) -> None:
        self.vm.calls.append(('migration_verb', name, verb, arguments))
        self.vm.migration_verb(name, verb, arguments)

    def wait_event(self, timeout: float) -> Record | None:
        if not self.vm.events:
            self.vm.step()
        if not self.vm.events:
            self.vm.clock.advance(timeout)
            return None
        self.vm.clock.advance(min(timeout, 0.001))
        return self.vm.events.pop(0)

    def events(self) -> list[Record]:
        """The events received so far, without waiting (QMP's queue, drained)."""
        events, self.vm.events = self.vm.events, []
        return events
