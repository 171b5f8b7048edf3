# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake VM that migrates: QEMU's one, id-less migration, scripted step by step.

``MigratingVM.script`` lists the ``query-migrate`` replies a started migration goes
through, one per ``step`` (taken when a waiter blocks), as QEMU 7.2 reports them
(see ``qemu-7.2-migrate.json``), each taking :data:`STEP` seconds. ``gone`` makes every connection fail as when the
source QEMU has exited; ``witnessed`` is what the destination would say then.
"""

from __future__ import annotations

import contextlib
import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    BackendError,
    TransportError,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    migration as _migration,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import (
    migrate as _qmp_migrate,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    FakeSession,
    FakeVM,
)

Record = dict[str, t.Any]
Note = t.Callable[..., None]
TOTAL = 67641344


#: Seconds each scripted step takes.
STEP = 0.5


def reply(status: str, remaining: int = 0, passes: int = 1, postcopy_bytes: int = 0,
          **extra: t.Any) -> Record:
    """A ``query-migrate`` reply in QEMU 7.2's shape."""
    return {'status': status, 'total-time': 100, 'setup-time': 1,
            'ram': {'total': TOTAL, 'remaining': remaining, 'transferred': TOTAL - remaining,
                    'mbps': 80.0, 'dirty-sync-count': passes, 'dirty-pages-rate': 0,
                    'postcopy-bytes': postcopy_bytes}, **extra}


class MigratingVM(FakeVM):
    """A :class:`FakeVM` whose ``query-migrate`` follows :attr:`script` once started."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.migrate: Record = {}
        self.script: list[Record] = [reply('active', TOTAL // 2), reply('completed', downtime=40)]
        self.gone = False
        self.witnessed: Record | None = None
        self.finished: list[str] = []
        self.paused = False

    @contextlib.contextmanager
    def session(self) -> t.Iterator[FakeSession]:
        if self.gone:
            raise TransportError(f'no QMP socket at {self.scope}: is the VM running?')
        with super().session() as session:
            yield session

    def start(self, name: str, params: dict[str, t.Any], note: Note) -> None:
        if params['type'] != 'migration':
            super().start(name, params, note)
            return
        if self.migrate.get('status') in _qmp_migrate.UNDER_WAY:
            raise BackendError('migrate', 'GenericError', 'There is a migration process already running')
        note(prior=_qmp_migrate.fingerprint(self.migrate),
             dest_uri=params.get('dest_uri') or 'tcp:127.0.0.1:4444', source_running=True)
        self.migrate = reply('setup', TOTAL)
        self.emit('MIGRATION', status='setup')

    def step(self) -> None:
        super().step()
        if self.migrate.get('status') in _qmp_migrate.UNDER_WAY and self.script:
            self.clock.advance(STEP)
            self.migrate = self.script.pop(0)
            self.emit('MIGRATION', status=self.migrate['status'])

    def migration(self, entry: Record) -> Record | None:
        if entry.get('prior') is None or _qmp_migrate.fingerprint(self.migrate) == entry['prior']:
            return None
        return _migration.record_from_migrate(self.migrate, entry['name'])

    def migration_verb(self, name: str, verb: str, arguments: dict[str, t.Any]) -> None:
        if verb == 'cancel':
            self.migrate = reply('cancelled', TOTAL // 2)
            self.emit('MIGRATION', status='cancelled')
        elif verb == 'postcopy':
            self.script = [reply('postcopy-active', TOTAL // 4, postcopy_bytes=1 << 20),
                           reply('completed', postcopy_bytes=TOTAL // 4, downtime=5)]
        elif verb == 'pause':
            self.paused = True

    def witness(self, entry: Record) -> Record | None:
        return self.witnessed

    def finish(self, entry: Record) -> bool:
        self.finished.append(entry['name'])
        return True
