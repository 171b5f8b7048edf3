"""Fixtures for integration tests: real QEMU, real ansible. See README.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from harness import ansible, images, mounts
from harness.chains import Disks
from harness.domain import Domain
from harness.libvirt import LibvirtHost, create_domain, running
from harness.paths import COLLECTIONS_PATH
from harness.procs import Daemon, stop_strays
from harness.qmp import QMPConnection
from harness.qsd import start_qsd
from harness.vm import start_vm

# test_qmp_monitor imports the collection's QMP monitor directly.
sys.path.insert(0, str(COLLECTIONS_PATH))

#: Test files whose tests run for more than about half a minute.
SLOW = ('test_faults_', 'test_tutorial', 'test_roles', 'test_backup_role', 'test_concurrency',
        'test_howto_molecule', 'test_ansible_runner', 'test_test_vm_role')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test ``qemu``; those with their own libvirtd ``libvirt``; long ones ``slow``.

    Select with ``-m``, e.g. ``pytest tests/integration -m 'not slow and not libvirt'``.
    """
    for item in items:
        if not item.nodeid.startswith('tests/integration/'):
            continue
        filename = item.path.name
        item.add_marker(pytest.mark.qemu)
        if 'libvirt' in filename or 'host' in getattr(item, 'fixturenames', ()):
            item.add_marker(pytest.mark.libvirt)
        if filename.startswith(SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test failed, so ``workdir`` can be kept for a post-mortem."""
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh short directory (/tmp/vj-XXXX: UNIX socket paths must stay < 108 bytes).

    Removed afterwards unless the test failed or VJ_KEEP_WORKDIR is set; a qemu-storage-daemon
    the collection started under it and left running (a failed restore test's) is stopped first.
    """
    path = Path(tempfile.mkdtemp(prefix='vj-', dir='/tmp'))
    yield path
    for stray in stop_strays(path):  # the daemon of a job the test left running
        print(f'stopped: {stray}')
    if request.node.stash.get(_FAILED, False) or os.environ.get('VJ_KEEP_WORKDIR'):
        print(f'workdir kept: {path}')
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_image(workdir: Path) -> Callable[..., Path]:
    """``make_image(path, size='64M', fmt='qcow2', backing=None, pattern=None)``; relative paths are in workdir."""
    def make(path: str | Path, size: str | int = '64M', fmt: str = 'qcow2',
             backing: str | Path | None = None, pattern: int | None = None) -> Path:
        return images.make_image(workdir / path, size, fmt, backing, pattern)
    return make


def _daemons(starter: Callable[..., Daemon], workdir: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(*args: Any, **kwargs: Any) -> Daemon:
        daemon = starter(workdir, *args, **kwargs)
        started.append(daemon)
        return daemon
    yield start
    for daemon in reversed(started):
        daemon.stop()
        if log := daemon.log_text().strip():
            print(f'--- {daemon.name}.log ---\n{log}')


@pytest.fixture
def qsd(workdir: Path) -> Iterator[Callable[..., Daemon]]:
    """``qsd(disks={'disk0': image}, blockdevs=[...], name='qsd', extra_args=())`` -> Daemon.

    Node ``disk0`` (qcow2) over ``disk0-file``; monitors ``<name>.sock`` and
    ``<name>-obs.sock`` in workdir. Stopped (TERM, then KILL) at teardown.
    """
    yield from _daemons(start_qsd, workdir)


@pytest.fixture
def vm(workdir: Path) -> Iterator[Callable[..., Daemon]]:
    """``vm(disks={'disk0': image}, name='vm', fmt='qcow2', extra_args=())`` -> Daemon.

    Device ``disk0`` on node ``disk0-fmt`` over ``disk0-file``; monitors like ``qsd``.
    """
    yield from _daemons(start_vm, workdir)


@pytest.fixture(scope='module')
def libvirt_host() -> Iterator[LibvirtHost]:
    """One private libvirtd (its own mount namespace) for a test module's tests."""
    with running(LibvirtHost()) as daemon:
        yield daemon


@pytest.fixture
def domain(libvirt_host: LibvirtHost, workdir: Path,
           run_module: Callable[..., dict[str, Any]]) -> Iterator[Callable[..., Domain]]:
    """``domain(disks={'vda': image}, persistent=False)`` -> Domain on the module's libvirtd;
    destroyed (and undefined) afterwards."""
    made: list[Domain] = []

    def make(disks: dict[str, Path], persistent: bool = False, running: bool = False,
             name: str | None = None) -> Domain:
        name = name or f'{workdir.name}-{len(made)}'
        create_domain(libvirt_host, workdir, name, disks, persistent, running)
        made.append(Domain(libvirt_host, workdir, run_module, name))
        return made[-1]
    yield make
    for dom in made:
        if not dom.stopped:
            dom.assert_untainted()
        libvirt_host.virsh('destroy', dom.name, check=False)
        libvirt_host.virsh('undefine', dom.name, '--checkpoints-metadata', check=False)


@pytest.fixture
def disks(vm: Callable[..., Daemon], make_image: Callable[..., Path],
          workdir: Path) -> Iterator[Disks]:
    """A VM with disks ``disk0`` and ``disk1`` and a reference copy of each (harness.chains)."""
    made = Disks(vm, make_image, workdir)
    yield made
    made.close()


@pytest.fixture
def qmp_observer() -> Iterator[Callable[[str | Path], QMPConnection]]:
    """``qmp_observer(daemon.obs_sock).cmd('query-jobs')``; connections closed at teardown."""
    conns: list[QMPConnection] = []

    def connect(socket: str | Path) -> QMPConnection:
        conn = QMPConnection(socket).connect()
        conns.append(conn)
        return conn
    yield connect
    for conn in conns:
        conn.close()


@pytest.fixture
def busy_socket() -> Callable[[str | Path], AbstractContextManager[QMPConnection]]:
    """``with busy_socket(daemon.sock):`` holds a negotiated client on that monitor."""
    @contextmanager
    def hold(socket: str | Path) -> Iterator[QMPConnection]:
        with QMPConnection(socket) as conn:
            yield conn
    return hold


@pytest.fixture
def small_fs(workdir: Path) -> Iterator[Callable[..., Path]]:
    """``small_fs(size='16M', name='small')`` -> a mounted tmpfs under workdir (unmounted after)."""
    with ExitStack() as stack:
        def mount(size: str = '16M', name: str = 'small') -> Path:
            return stack.enter_context(mounts.tmpfs(workdir / name, size))
        yield mount


@pytest.fixture
def run_playbook(workdir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_playbook(path_or_yaml_text, extra_vars=None, *ansible_playbook_args)``."""
    def run(playbook: str | Path, extra_vars: dict[str, Any] | None = None,
            *args: str) -> subprocess.CompletedProcess[str]:
        return ansible.run_playbook(workdir, playbook, extra_vars, *args)
    return run


@pytest.fixture
def run_module(workdir: Path) -> Callable[..., dict[str, Any]]:
    """``run_module('job_info', {'socket': ...}, check=False)`` -> result dict (+ rc, raw)."""
    def run(module: str, args: dict[str, Any], check: bool = False) -> dict[str, Any]:
        return ansible.run_module(workdir, module, args, check)
    return run


@pytest.fixture
def ledger_dir(workdir: Path) -> Path:
    """Pass as the modules' ``ledger_dir`` so tests never touch /var/lib/vmjobs."""
    return workdir / 'ledger'
