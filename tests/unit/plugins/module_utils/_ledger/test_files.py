# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_ledger/files.py (in tmp_path, with an injected clock)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pathlib
import stat
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import (
    InvalidArgument,
    LedgerError,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._ledger import (
    files as _ledger,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._ledger.files import Ledger
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    FakeClock,
)

SCOPE = 'qmp:/run/vm1/qmp.sock'
DAY = 86400.0
NOW = 1_763_700_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / 'ledger'


@pytest.fixture
def ledger(root: pathlib.Path, clock: FakeClock) -> Ledger:
    return Ledger(str(root), SCOPE, retention_days=90.0, clock=clock)


@contextlib.contextmanager
def umask(mask: int) -> t.Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: str | pathlib.Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def files(path: str | pathlib.Path) -> list[str]:
    return sorted(os.listdir(path))


def tree(path: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob('*'))


# -- where the ledger lives ------------------------------------------------------------------------

def test_default_root_for_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    monkeypatch.setenv('XDG_STATE_HOME', '/elsewhere')
    assert _ledger.default_root() == '/var/lib/vmjobs'


def test_default_root_with_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    monkeypatch.setenv('XDG_STATE_HOME', '/home/u/.state')
    assert _ledger.default_root() == '/home/u/.state/vmjobs'


@pytest.mark.parametrize('xdg', [None, ''])
def test_default_root_without_xdg_state_home(monkeypatch: pytest.MonkeyPatch,
                                             xdg: str | None) -> None:
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    monkeypatch.setenv('HOME', '/home/u')
    if xdg is None:
        monkeypatch.delenv('XDG_STATE_HOME', raising=False)
    else:
        monkeypatch.setenv('XDG_STATE_HOME', xdg)
    assert _ledger.default_root() == '/home/u/.local/state/vmjobs'


@pytest.mark.parametrize('scope, prefix', [
    ('qmp:/run/vm1/qmp.sock', 'qmp.sock'),
    ('qmp:/run/vm 1/q m p.sock', 'q_m_p.sock'),
    ('qmp:/run/vm1/', 'vm'),
    ('qmp:', 'qmp_'),
    ('libvirt:qemu:///system/vm1', 'vm1'),
    ('qmp:/run/' + 'x' * 60 + '.sock', 'x' * 35 + '.sock'),
    ('qmp:/run/..', '..'),
])
def test_scope_dirname(scope: str, prefix: str) -> None:
    name = _ledger.scope_dirname(scope)
    head, _dash, digest = name.rpartition('-')
    assert head == prefix
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert '/' not in name
    assert _ledger.scope_dirname(scope) == name


def test_scope_dirname_tells_same_basenames_apart() -> None:
    assert (_ledger.scope_dirname('qmp:/run/vm1/qmp.sock')
            != _ledger.scope_dirname('qmp:/run/vm2/qmp.sock'))


def test_constructor_does_no_io(root: pathlib.Path) -> None:
    ledger = Ledger(str(root), SCOPE)
    assert ledger.directory == os.path.join(str(root), _ledger.scope_dirname(SCOPE))
    assert ledger.retention_days == _ledger.DEFAULT_RETENTION_DAYS
    assert not root.exists()


def test_reading_an_empty_ledger_creates_nothing(ledger: Ledger, root: pathlib.Path) -> None:
    assert ledger.all() == []
    assert ledger.get('nothing') is None
    assert ledger.delete('nothing') is False
    assert ledger.update('nothing', state='x') is None
    assert ledger.prune() == []
    assert not root.exists()


# -- writing ---------------------------------------------------------------------------------------

def test_put_and_get(ledger: Ledger, clock: FakeClock) -> None:
    written = ledger.put({'name': 'b1', 'type': 'backup', 'params': {'device': 'disk0'}})
    assert written == {'name': 'b1', 'type': 'backup', 'params': {'device': 'disk0'},
                       'scope': SCOPE, 'updated': NOW, 'created': NOW, 'schema': 3}
    assert ledger.get('b1') == written
    clock.advance(60)
    again = ledger.put(dict(written, state='started'))
    assert (again['created'], again['updated']) == (NOW, NOW + 60)


def test_put_does_not_change_its_argument(ledger: Ledger) -> None:
    record = {'name': 'b1'}
    ledger.put(record)
    assert record == {'name': 'b1'}


def test_records_are_plain_json(ledger: Ledger) -> None:
    ledger.put({'name': 'b1', 'last': {'outcome': 'failed', 'error': 'No space left on device'}})
    path = os.path.join(ledger.directory, 'b1.json')
    with open(path, encoding='utf-8') as handle:
        assert json.load(handle)['last']['error'] == 'No space left on device'


@pytest.mark.parametrize('mask', [0o022, 0o000, 0o077])
def test_modes(ledger: Ledger, root: pathlib.Path, mask: int) -> None:
    with umask(mask):
        ledger.put({'name': 'b1'})
        with ledger.lock():
            pass
    assert mode(root) == 0o700
    assert mode(ledger.directory) == 0o700
    assert mode(os.path.join(ledger.directory, 'b1.json')) == 0o600
    assert mode(os.path.join(ledger.directory, '.lock')) == 0o600


def test_an_open_scope_directory_is_made_private(ledger: Ledger) -> None:
    os.makedirs(ledger.directory)
    os.chmod(ledger.directory, 0o755)
    ledger.put({'name': 'b1'})
    assert mode(ledger.directory) == 0o700


def test_an_existing_root_keeps_its_mode(ledger: Ledger, root: pathlib.Path) -> None:
    root.mkdir()
    os.chmod(root, 0o1777)
    ledger.put({'name': 'b1'})
    assert mode(root) == 0o1777


def test_atomic_write_leaves_no_temporary_file(ledger: Ledger) -> None:
    for n in range(3):
        ledger.put({'name': 'b1', 'n': n})
    ledger.put({'name': 'b2'})
    assert files(ledger.directory) == ['b1.json', 'b2.json']
    assert ledger.get('b1')['n'] == 2


def test_a_failed_write_keeps_the_old_record(ledger: Ledger,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ledger.put({'name': 'b1', 'n': 1})

    def rename(src: str, dst: str) -> None:
        raise OSError(errno.EIO, 'Input/output error')

    monkeypatch.setattr(os, 'rename', rename)
    with pytest.raises(LedgerError) as err:
        ledger.put({'name': 'b1', 'n': 2})
    assert 'cannot write ledger record' in str(err.value)
    assert 'Input/output error' in str(err.value)
    assert err.value.job == 'b1'
    assert isinstance(err.value.__cause__, OSError)
    assert files(ledger.directory) == ['b1.json']
    assert ledger.get('b1')['n'] == 1


def test_a_root_that_is_a_file_is_a_ledger_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / 'file').write_text('')
    ledger = Ledger(str(tmp_path / 'file'), SCOPE)
    with pytest.raises(LedgerError, match='cannot create ledger directory'):
        ledger.put({'name': 'b1'})
    with pytest.raises(LedgerError, match='cannot create ledger directory'), ledger.lock():
        pass


# -- reading -------------------------------------------------------------------------------------------

def test_get_a_damaged_record(ledger: Ledger) -> None:
    ledger.put({'name': 'b1'})
    pathlib.Path(ledger.directory, 'b1.json').write_text('{"name": "b1", ')
    with pytest.raises(LedgerError, match='is damaged') as err:
        ledger.get('b1')
    assert err.value.job == 'b1'


def test_get_an_unreadable_record(ledger: Ledger) -> None:
    os.makedirs(os.path.join(ledger.directory, 'b1.json'))
    with pytest.raises(LedgerError, match='cannot read ledger record'):
        ledger.get('b1')


def test_all_is_sorted_and_skips_other_files(ledger: Ledger) -> None:
    for name in ('c', 'a', 'b'):
        ledger.put({'name': name})
    pathlib.Path(ledger.directory, 'a.json.123.tmp').write_text('{')
    pathlib.Path(ledger.directory, 'notes.txt').write_text('x')
    with ledger.lock():
        assert [r['name'] for r in ledger.all()] == ['a', 'b', 'c']


def test_all_of_an_unlistable_directory(ledger: Ledger, root: pathlib.Path) -> None:
    root.mkdir()
    pathlib.Path(ledger.directory).write_text('not a directory')
    with pytest.raises(LedgerError, match='cannot list ledger'):
        ledger.all()


def test_update_merges(ledger: Ledger, clock: FakeClock) -> None:
    ledger.put({'name': 'b1', 'state': 'starting', 'attached': []})
    clock.advance(5)
    updated = ledger.update('b1', state='started', attached=['vjf'])
    assert updated is not None
    assert (updated['state'], updated['attached'], updated['updated']) == (
        'started', ['vjf'], NOW + 5)
    assert ledger.get('b1') == updated


def test_delete(ledger: Ledger) -> None:
    ledger.put({'name': 'b1'})
    assert ledger.delete('b1') is True
    assert ledger.get('b1') is None
    assert ledger.delete('b1') is False


def test_scopes_are_separate(root: pathlib.Path, clock: FakeClock) -> None:
    one = Ledger(str(root), 'qmp:/run/vm1/qmp.sock', clock=clock)
    two = Ledger(str(root), 'qmp:/run/vm2/qmp.sock', clock=clock)
    one.put({'name': 'b1'})
    assert two.get('b1') is None
    assert two.all() == []


# -- names ---------------------------------------------------------------------------------------------

BAD_NAMES = ['../x', 'a/b', '.x', '', '/etc/passwd', '..', '.', 'x/../../y', 'a\x00b', '.lock',
             'x' * 129, '-x', 'a b']


@pytest.mark.parametrize('name', BAD_NAMES)
@pytest.mark.parametrize('operation', ['get', 'put', 'update', 'delete'])
def test_invalid_names_are_rejected(ledger: Ledger, tmp_path: pathlib.Path, name: str,
                                    operation: str) -> None:
    calls: dict[str, t.Callable[[], object]] = {
        'get': lambda: ledger.get(name),
        'put': lambda: ledger.put({'name': name}),
        'update': lambda: ledger.update(name, state='x'),
        'delete': lambda: ledger.delete(name),
    }
    with pytest.raises(InvalidArgument, match='invalid job name'):
        calls[operation]()
    assert tree(tmp_path) == []


def test_an_invalid_name_cannot_escape_an_existing_ledger(ledger: Ledger,
                                                          tmp_path: pathlib.Path) -> None:
    ledger.put({'name': 'b1'})
    before = tree(tmp_path)
    for name in BAD_NAMES:
        with pytest.raises(InvalidArgument):
            ledger.put({'name': name})
    assert tree(tmp_path) == before


# -- lock ----------------------------------------------------------------------------------------------

def try_lock(path: str) -> bool:
    """Whether another open file description gets the flock right now."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_lock_is_exclusive_while_held(ledger: Ledger) -> None:
    lock_file = os.path.join(ledger.directory, '.lock')
    with ledger.lock():
        assert os.path.exists(lock_file)
        assert try_lock(lock_file) is False
        ledger.put({'name': 'b1'})
    assert try_lock(lock_file) is True


def test_lock_is_released_on_error(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError), ledger.lock():
        raise RuntimeError('boom')
    assert try_lock(os.path.join(ledger.directory, '.lock')) is True


def test_lock_files_are_not_records(ledger: Ledger) -> None:
    with ledger.lock():
        pass
    assert ledger.all() == []


def test_lock_that_cannot_be_opened(ledger: Ledger) -> None:
    os.makedirs(os.path.join(ledger.directory, '.lock'))
    with pytest.raises(LedgerError, match='cannot open ledger lock'), ledger.lock():
        pass


# -- prune ---------------------------------------------------------------------------------------------

def test_prune_deletes_old_tombstones_only(ledger: Ledger, clock: FakeClock) -> None:
    ledger.put({'name': 'old-tomb', 'state': 'dismissed'})
    ledger.put({'name': 'old-live', 'state': 'started'})
    clock.advance(30 * DAY)
    ledger.put({'name': 'young-tomb', 'state': 'dismissed'})
    clock.advance(61 * DAY)
    assert ledger.prune() == ['old-tomb']
    assert [r['name'] for r in ledger.all()] == ['old-live', 'young-tomb']
    clock.advance(30 * DAY)
    assert ledger.prune() == ['young-tomb']
    assert ledger.prune() == []


@pytest.mark.parametrize('age_days, pruned', [(89.99, False), (90.0, False), (90.01, True)])
def test_prune_at_the_retention_boundary(ledger: Ledger, clock: FakeClock, age_days: float,
                                         pruned: bool) -> None:
    ledger.put({'name': 'tomb', 'state': 'dismissed'})
    clock.advance(age_days * DAY)
    assert ledger.prune() == (['tomb'] if pruned else [])


def test_prune_with_zero_retention(root: pathlib.Path, clock: FakeClock) -> None:
    ledger = Ledger(str(root), SCOPE, retention_days=0.0, clock=clock)
    ledger.put({'name': 'tomb', 'state': 'dismissed'})
    assert ledger.prune() == []
    clock.advance(0.5)
    assert ledger.prune() == ['tomb']


def test_touching_a_tombstone_restarts_its_retention(ledger: Ledger, clock: FakeClock) -> None:
    ledger.put({'name': 'tomb', 'state': 'dismissed'})
    clock.advance(80 * DAY)
    ledger.update('tomb', note='seen')
    clock.advance(20 * DAY)
    assert ledger.prune() == []
