# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the job client tests share: parameters, starts, ledger files, tombstones."""

from __future__ import annotations

import os
import typing as t

from ansible_collections.vmjobs.qemu.plugins.module_utils._client import (
    starter as _starter,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.reads import Result
from ansible_collections.vmjobs.qemu.plugins.module_utils._model.shapes import (
    ledger_entry,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    MINIMAL,
    CheckedLedger,
    FakeVM,
    block_job_params,
)

Record = dict[str, t.Any]
DAY = 86400.0


def params(name: str = 'b1', kind: str = 'backup', **options: t.Any) -> dict[str, t.Any]:
    """What the block_job module passes to ``JobClient.start``."""
    return block_job_params(name, kind, **dict(MINIMAL[kind], **options))


def start(client: JobClient, name: str = 'b1', kind: str = 'backup', wait: str | None = None,
          **options: t.Any) -> Result:
    return client.start(name, params(name, kind, **options), wait, 60.0)


def starts(vm: FakeVM) -> list[str]:
    return [call[1] for call in vm.calls if call[0] == 'start']


def cleanups(vm: FakeVM) -> list[Record]:
    return [call[1] for call in vm.calls if call[0] == 'cleanup']


def ledger_files(ledger: CheckedLedger) -> list[str]:
    if not os.path.isdir(ledger.directory):
        return []
    return sorted(f for f in os.listdir(ledger.directory) if f != '.lock')


def tombstone(ledger: CheckedLedger, name: str, kind: str = 'backup', outcome: str = 'succeeded',
              error: str | None = None, **options: t.Any) -> Record:
    """The ledger record ``job state=absent`` leaves behind."""
    return ledger.put(ledger_entry(
        name, kind, _starter.identity(params(name, kind, **options)), 0.0, state='dismissed',
        attached=[], kept_nodes=[],
        last={'status': 'concluded', 'outcome': outcome, 'error': error,
              'progress': {'current': 64, 'total': 64, 'percent': 100.0}, 'speed': 0}))
