# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_targets.py: the pure rules, then files under tmp_path."""

from __future__ import annotations

import os
import pathlib
import stat
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _targets
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._targets import Targets

# -- modes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize('value, mode', [
    (None, None), ('0600', 0o600), ('640', 0o640), ('0o644', 0o644), (' 0600 ', 0o600),
    (0o640, 0o640), (0o777, 0o777),
])
def test_modes_are_octal_strings_or_ints(value: t.Any, mode: int | None) -> None:
    assert _targets.parse_mode(value, 'j1') == mode


@pytest.mark.parametrize('value', ['abc', '0999', 'u=rw,g=r', '06400', '', 640, -1, True, 1.5,
                                   ['0600']])
def test_bad_modes_are_refused_in_one_line(value: t.Any) -> None:
    with pytest.raises(InvalidArgument, match=r"^job 'j1': mode .* is not a file mode: give "
                                              r"octal permission bits .*'0640'$") as err:
        _targets.parse_mode(value, 'j1')
    assert '\n' not in str(err.value) and err.value.job == 'j1'


@pytest.mark.parametrize('value', ['0400', '0200', '0044', 0o070])
def test_modes_must_let_the_owner_read_and_write(value: t.Any) -> None:
    with pytest.raises(InvalidArgument, match="leaves the owner without read and write"):
        _targets.parse_mode(value, 'j1', 'target_mode')


# -- directories ----------------------------------------------------------------------------------

DIR = stat.S_IFDIR


@pytest.mark.parametrize('mode, uid, euid', [
    (DIR | 0o755, 0, 0), (DIR | 0o700, 1000, 1000), (DIR | 0o755, 0, 1000),
    (DIR | 0o1777, 0, 0), (DIR | 0o1770, 0, 0), (DIR | 0o2755, 0, 0),
])
def test_safe_directories(mode: int, uid: int, euid: int) -> None:
    assert _targets.directory_problem('/d', mode, uid, euid) is None


@pytest.mark.parametrize('mode, uid, euid, words', [
    (DIR | 0o777, 0, 0, ('writable by other users (mode 0777) and not sticky, so they could '
                         'swap the file; run chmod g-w,o-w /d (or chmod +t /d)')),
    (DIR | 0o775, 0, 0, 'mode 0775'),
    (DIR | 0o757, 0, 0, 'mode 0757'),
    (DIR | 0o755, 1000, 0, 'owned by uid 1000, neither root nor this user (uid 0)'),
    (DIR | 0o700, 1000, 1001, 'owned by uid 1000'),
    (stat.S_IFREG | 0o644, 0, 0, '/d is not a directory'),
])
def test_unsafe_directories(mode: int, uid: int, euid: int, words: str) -> None:
    problem = _targets.directory_problem('/d', mode, uid, euid)
    assert problem is not None and words in problem


def test_ancestors_up_to_the_root() -> None:
    assert _targets.ancestors('/a/b/c') == ['/a/b/c', '/a/b', '/a', '/']
    assert _targets.ancestors('/') == ['/']


@pytest.mark.parametrize('euid, qemu, owner', [
    (0, (107, 108), (107, 108)), (0, (0, 0), None), (0, None, None), (1000, (107, 108), None),
])
def test_root_gives_new_files_to_qemus_user(
        euid: int, qemu: tuple[int, int] | None, owner: tuple[int, int] | None) -> None:
    assert _targets.owner_for(euid, qemu) == owner


def test_qemu_img_command() -> None:
    assert _targets.qemu_img_create('/t/a.raw', 'raw', 512) == [
        'qemu-img', 'create', '-q', '-f', 'raw', '/t/a.raw', '512']
    assert _targets.qemu_img_create('/t/a.qcow2', 'qcow2', 1024, ('/i/b.qcow2', 'qcow2')) == [
        'qemu-img', 'create', '-q', '-f', 'qcow2', '-b', '/i/b.qcow2', '-F', 'qcow2', '-u',
        '/t/a.qcow2', '1024']


# -- checks on the file system --------------------------------------------------------------------

@pytest.fixture
def private(tmp_path: pathlib.Path) -> pathlib.Path:
    """A 0700 directory of the test's user."""
    place = tmp_path / 'private'
    place.mkdir(mode=0o700)
    return place


def test_a_new_target_in_a_private_directory(private: pathlib.Path) -> None:
    checked = Targets().check('j1', str(private / 'new.qcow2'))
    assert checked == _targets.Target(os.path.realpath(private) + '/new.qcow2', False)


def test_an_existing_file_is_reported(private: pathlib.Path) -> None:
    (private / 'old.qcow2').write_text('mine')
    assert Targets().check('j1', str(private / 'old.qcow2')).exists


def test_the_directory_is_resolved(private: pathlib.Path, tmp_path: pathlib.Path) -> None:
    (tmp_path / 'via').symlink_to(private)
    checked = Targets().check('j1', str(tmp_path / 'via' / 'new.qcow2'))
    assert checked.path == str(private / 'new.qcow2')


@pytest.mark.parametrize('points_to', ['elsewhere/made-by-root', 'file'])
def test_symbolic_links_are_refused(private: pathlib.Path, points_to: str) -> None:
    (private / 'file').write_text('mine')
    (private / 'link.qcow2').symlink_to(private / points_to)
    with pytest.raises(InvalidArgument, match=r"^job 'j1': target .*/link.qcow2 is a symbolic "
                                              r'link \(to .*\); give the path of the file itself'):
        Targets().check('j1', str(private / 'link.qcow2'))
    assert not (private / 'elsewhere').exists()
    assert (private / 'file').read_text() == 'mine'


def test_a_dangling_link_says_so(private: pathlib.Path) -> None:
    (private / 'link.qcow2').symlink_to('/nonexistent/x')
    with pytest.raises(InvalidArgument, match=r'\(to /nonexistent/x, which does not exist\)'):
        Targets().check('j1', str(private / 'link.qcow2'))


def test_a_missing_directory(private: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument, match=r"^job 'j1': the directory .*/private/nope of "
                                              r'target .*/nope/a.qcow2 does not exist$'):
        Targets().check('j1', str(private / 'nope' / 'a.qcow2'))


def test_a_world_writable_directory_is_refused_unless_sticky(private: pathlib.Path) -> None:
    shared = private / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(InvalidArgument, match=r'is refused: directory .*/shared is writable by '
                                              r'other users \(mode 0777\) and not sticky'):
        Targets().check('j1', str(shared / 'a.qcow2'))
    shared.chmod(0o1777)
    assert not Targets().check('j1', str(shared / 'a.qcow2')).exists


def test_a_directory_above_counts_too(private: pathlib.Path) -> None:
    (private / 'deep').mkdir()
    private.chmod(0o777)
    try:
        with pytest.raises(InvalidArgument, match=r'directory .*/private is writable'):
            Targets().check('j1', str(private / 'deep' / 'a.qcow2'))
    finally:
        private.chmod(0o700)


def test_a_directory_of_another_user_is_refused(private: pathlib.Path) -> None:
    me = os.geteuid()
    owner, user = (4242, 0) if me == 0 else (me, me + 4242)
    if me == 0:
        os.chown(private, owner, -1)
    with pytest.raises(InvalidArgument, match=rf'directory .*/private is owned by uid {owner}, '
                                              rf'neither root nor this user \(uid {user}\)'):
        Targets(euid=user).check('j1', str(private / 'a.qcow2'))


# -- creating -------------------------------------------------------------------------------------

@pytest.fixture
def open_umask() -> t.Iterator[None]:
    before = os.umask(0)
    yield
    os.umask(before)


@pytest.mark.usefixtures('open_umask')
@pytest.mark.parametrize('mode, expected', [(None, 0o600), (0o640, 0o640), (0o644, 0o644)])
def test_new_files_get_their_mode_whatever_the_umask(private: pathlib.Path, mode: int | None,
                                                     expected: int) -> None:
    path = private / 'new.qcow2'
    Targets().create('j1', str(path), mode)
    assert stat.S_IMODE(path.stat().st_mode) == expected and path.stat().st_size == 0


def test_a_file_that_appeared_is_left_alone(private: pathlib.Path) -> None:
    path = private / 'raced.qcow2'
    path.write_text('theirs')
    with pytest.raises(_targets.TargetRace, match='appeared while it was being created'):
        Targets().create('j1', str(path))
    assert path.read_text() == 'theirs'


def test_a_link_that_appeared_is_not_followed(private: pathlib.Path) -> None:
    (private / 'link.qcow2').symlink_to(private / 'where-it-points')
    with pytest.raises(_targets.TargetRace):
        Targets().create('j1', str(private / 'link.qcow2'))
    assert not (private / 'where-it-points').exists()


def test_creation_errors_are_one_line(private: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument, match=r"^job 'j1': cannot create target .*: No such file"):
        Targets().create('j1', str(private / 'gone' / 'a.qcow2'))


@pytest.mark.skipif(os.geteuid() != 0, reason='only root gives files away')
def test_root_gives_the_file_to_qemus_user(private: pathlib.Path) -> None:
    path = private / 'theirs.qcow2'
    Targets().create('j1', str(path), None, (4242, 4343))
    seen = path.stat()
    assert (seen.st_uid, seen.st_gid, stat.S_IMODE(seen.st_mode)) == (4242, 4343, 0o600)


def test_format_runs_qemu_img_through_the_runner_it_was_given() -> None:
    ran: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        ran.append(argv)
        return 0, '', ''

    _targets.Targets(run=run).format('j1', '/t/a.qcow2', 'qcow2', 1024)
    assert ran == [_targets.qemu_img_create('/t/a.qcow2', 'qcow2', 1024)]


@pytest.mark.parametrize('runner, message', [
    (lambda argv: (1, '', "qemu-img: /t/a.qcow2: Permission denied\n"),
     ("job 'j1': qemu-img create of target /t/a.qcow2 failed: qemu-img: /t/a.qcow2: "
      'Permission denied')),
    (lambda argv: (2, '', ''), "job 'j1': qemu-img create of target /t/a.qcow2 failed: exit 2"),
    (None, "job 'j1': cannot format target /t/a.qcow2: no way to run qemu-img here"),
])
def test_format_failures_are_one_line(runner: t.Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _targets.Targets(run=runner).format('j1', '/t/a.qcow2', 'qcow2', 1024)
    assert str(err.value) == message
