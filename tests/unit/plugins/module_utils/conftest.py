# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the job client and job driver tests: a fake VM, clock, ledger, client."""

from __future__ import annotations

import pathlib

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.control import (
    JobDriver,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._client.jobs import JobClient
from ansible_collections.vmjobs.qemu.plugins.module_utils._waiter import Waiter
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    CheckedLedger,
    FakeClock,
    FakeVM,
)

#: Where the fake clock starts: a plausible wall-clock time (the ledger stamps records with it).
START = 1_763_700_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def vm(clock: FakeClock) -> FakeVM:
    return FakeVM(clock)


@pytest.fixture
def ledger(tmp_path: pathlib.Path, vm: FakeVM, clock: FakeClock) -> CheckedLedger:
    return CheckedLedger(str(tmp_path / 'ledger'), vm.scope, clock=clock)


@pytest.fixture
def waiter(clock: FakeClock) -> Waiter:
    return Waiter(clock=clock, sleep=clock.sleep)


@pytest.fixture
def client(vm: FakeVM, ledger: CheckedLedger, waiter: Waiter) -> JobClient:
    return JobClient(vm, ledger, waiter)


@pytest.fixture
def check_client(vm: FakeVM, ledger: CheckedLedger, waiter: Waiter) -> JobClient:
    """The same VM and ledger, in check mode."""
    return JobClient(vm, ledger, waiter, check_mode=True)


@pytest.fixture
def driver(client: JobClient) -> JobDriver:
    return JobDriver(client, wait=True, wait_timeout=60.0)


@pytest.fixture
def check_driver(check_client: JobClient) -> JobDriver:
    return JobDriver(check_client, wait=True, wait_timeout=60.0)
