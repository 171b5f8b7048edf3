# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_client/dry.py: check mode reads and changes nothing."""

from __future__ import annotations

import pathlib

from ansible_collections.vmjobs.qemu.plugins.module_utils._client.dry import (
    DryBackend,
    DryLedger,
    upkeep,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    MINIMAL,
    CheckedLedger,
    FakeClock,
    FakeVM,
    block_job_params,
)


def test_a_check_mode_client_holds_a_dry_backend_and_ledger(vm: FakeVM,
                                                            ledger: CheckedLedger) -> None:
    client = JobClient(vm, ledger, check_mode=True)
    assert isinstance(client.backend, DryBackend) and isinstance(client.ledger, DryLedger)
    assert client.backend.scope == vm.scope
    plain = JobClient(vm, ledger)
    assert plain.backend is vm and plain.ledger is ledger


def test_the_dry_ledger_reads_and_writes_nothing(tmp_path: pathlib.Path, clock: FakeClock,
                                                 vm: FakeVM) -> None:
    real = CheckedLedger(str(tmp_path / 'ledger'), vm.scope, clock=clock)
    real.put({'name': 'b1', 'type': 'backup', 'state': 'started'})
    dry = DryLedger(real)
    assert dry.get('b1') == real.get('b1') and dry.all() == real.all()
    assert dry.update('b1', state='dismissed')['state'] == 'dismissed'
    dry.put({'name': 'b2', 'type': 'backup'})
    assert dry.delete('b1') is True and dry.prune() == []
    assert real.get('b1')['state'] == 'started' and real.get('b2') is None


def test_the_dry_session_starts_and_steers_nothing(vm: FakeVM) -> None:
    backend = DryBackend(vm)
    with backend.session() as session:
        session.start('b1', block_job_params('b1', 'backup', **MINIMAL['backup']),
                      lambda **_: None)
        session.verb('b1', 'cancel')
        assert session.cleanup({'attached': ['n1']}, discard=True) == []
        assert session.records() == []
    assert not [call for call in vm.calls if call[0] in ('start', 'verb', 'cleanup')]
    assert backend.finish({'name': 'm'}) is False


def test_upkeep_reaches_behind_the_dry_wrappers_only(vm: FakeVM, ledger: CheckedLedger) -> None:
    assert upkeep(DryLedger(ledger)) is ledger and upkeep(ledger) is ledger
    with DryBackend(vm).session() as dry:
        real = dry.inner
        assert upkeep(dry) is real and upkeep(real) is real
