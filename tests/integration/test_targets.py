"""Target files: private modes whatever the umask, ``mode``, links and unsafe directories refused.

Real qemu-storage-daemon, real ansible runs (several module calls per playbook), and one
private libvirtd for the modes libvirt leaves its targets with.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import assert_ok, has_pattern
from harness.ansible import play_steps
from harness.libvirt import create_domain
from harness.nodes import blockdev_args, image_nodes, monitor_args
from harness.procs import start_daemon

Play = Callable[..., list[dict[str, Any]]]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    """Run ansible (and so the modules) with this umask."""
    before = os.umask(value)
    try:
        yield
    finally:
        os.umask(before)


@pytest.fixture
def play(workdir: Path, run_playbook: Callable[..., Any]) -> Play:
    """``play(connection, (module, args), ...)``: one playbook, every step's result.

    A failing step does not stop the play; its result says ``failed``.
    """
    plays = iter(range(1, 1000))

    def run(connection: dict[str, Any], *steps: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return play_steps(workdir, connection, steps, workdir / f'targets-play{next(plays)}.json')
    return run


@pytest.fixture
def disk0(make_image: Callable[..., Path]) -> Path:
    return make_image('disk0.qcow2', '16M', pattern=0x5A)


@pytest.fixture
def private(workdir: Path) -> Path:
    place = workdir / 't'
    place.mkdir(mode=0o700)
    return place


def connection(daemon: Any, workdir: Path) -> dict[str, str]:
    return {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}


def compare(image: Path, copy: Path) -> None:
    proc = subprocess.run(['qemu-img', 'compare', '-U', str(image), str(copy)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def assert_one_line(result: dict[str, Any], *words: str) -> None:
    assert result['failed'], result
    message = result.get('msg', '')
    assert '\n' not in message and 'Traceback' not in message, message
    for word in words:
        assert word in message, message


def ledger_names(workdir: Path) -> set[str]:
    return {path.stem for path in (workdir / 'ledger').rglob('*.json')}


# -- modes ----------------------------------------------------------------------------------------

def test_targets_are_private_whatever_the_umask(workdir, disk0, private, qsd, play):
    daemon = qsd(disks={'disk0': disk0})
    (private / 'grp').mkdir()
    (private / 'grp640').mkdir()
    with umask(0):
        results = play(
            connection(daemon, workdir),
            ('block_job', {'name': 'bk', 'type': 'backup', 'device': 'disk0',
                           'target': str(private / 'backup.qcow2'), 'wait': 'concluded'}),
            ('block_job', {'name': 'bk640', 'type': 'backup', 'device': 'disk0',
                           'target': str(private / 'backup640.raw'), 'target_format': 'raw',
                           'mode': '0640', 'wait': 'concluded'}),
            ('block_job', {'name': 'mk', 'type': 'create', 'target': str(private / 'new.qcow2'),
                           'size': '1M', 'wait': 'concluded'}),
            ('block_job', {'name': 'mk-raw', 'type': 'create', 'target_format': 'raw',
                           'target': str(private / 'new.raw'), 'size': '1M',
                           'wait': 'concluded'}),
            ('block_job', {'name': 'mk644', 'type': 'create', 'target': str(private / 'new644.qcow2'),
                           'size': '1M', 'mode': 0o644, 'wait': 'concluded'}),
            ('backup', {'name': 'grp', 'target_dir': str(private / 'grp'),
                        'disks': [{'device': 'disk0'}], 'wait': 'concluded'}),
            ('backup', {'name': 'grp640', 'target_dir': str(private / 'grp640'),
                        'disks': [{'device': 'disk0'}], 'target_mode': '0640',
                        'wait': 'concluded'}),
            ('block_job', {'name': 'mv', 'type': 'mirror', 'device': 'disk0',
                           'target': str(private / 'mirror.qcow2'), 'wait': 'ready'}),
            ('block_job', {'name': 'bk', 'type': 'backup', 'device': 'disk0',
                           'target': str(private / 'backup.qcow2'), 'mode': '0644'}))
    for result in results:
        assert not result['failed'], result
    assert not results[-1]['changed'], 'another mode is the same job: nothing happens again'
    assert [r['job']['outcome'] for r in results[:7]] == ['succeeded'] * 7
    assert results[7]['job']['status'] == 'ready'
    expected = {'backup.qcow2': 0o600, 'backup640.raw': 0o640, 'new.qcow2': 0o600,
                'new.raw': 0o600, 'new644.qcow2': 0o644, 'grp/disk0.qcow2': 0o600,
                'grp640/disk0.qcow2': 0o640, 'mirror.qcow2': 0o600}
    assert {name: mode_of(private / name) for name in expected} == expected
    daemon.stop()  # QEMU flushes and closes the targets
    for name in ('backup.qcow2', 'backup640.raw', 'grp/disk0.qcow2', 'grp640/disk0.qcow2'):
        compare(disk0, private / name)
    assert has_pattern(private / 'backup.qcow2', 0x5A, 0, '16M')


@pytest.mark.skipif(os.geteuid() != 0, reason='the modules must run as root')
def test_root_gives_new_targets_to_qemus_user(workdir, make_image, play):
    """QEMU runs as nobody; the target's directory is root's, where QEMU could not create a
    file. The module makes the file, gives it to QEMU's user, and QEMU writes it."""
    nobody = pwd.getpwnam('nobody')
    owner = (nobody.pw_uid, nobody.pw_gid)
    workdir.chmod(0o711)
    home = workdir / 'q'
    home.mkdir(mode=0o700)
    disk = make_image('q/disk0.qcow2', '16M', pattern=0x21)
    for path in (home, disk):
        os.chown(path, *owner)
    targets = workdir / 'targets'
    targets.mkdir(mode=0o755)
    argv = ['setpriv', f'--reuid={owner[0]}', f'--regid={owner[1]}', '--clear-groups',
            'qemu-storage-daemon', *blockdev_args('--blockdev', image_nodes('disk0', disk)),
            *monitor_args(home, 'qsd', '--monitor', None)]
    daemon = start_daemon('qsd', argv, home)
    try:
        (done,) = play(connection(daemon, workdir),
                       ('block_job', {'name': 'bk', 'type': 'backup', 'device': 'disk0',
                                      'target': str(targets / 'bk.qcow2'), 'wait': 'concluded'}))
        assert done['job']['outcome'] == 'succeeded', done
    finally:
        daemon.stop()
    seen = os.stat(targets / 'bk.qcow2')
    assert (seen.st_uid, seen.st_gid, stat.S_IMODE(seen.st_mode)) == (*owner, 0o600)
    compare(disk, targets / 'bk.qcow2')


# -- links and directories ------------------------------------------------------------------------

KINDS = {
    'backup': ('block_job', {'type': 'backup', 'device': 'disk0', 'wait': 'concluded'}),
    'mirror': ('block_job', {'type': 'mirror', 'device': 'disk0', 'wait': 'ready'}),
    'create': ('block_job', {'type': 'create', 'size': '1M', 'wait': 'concluded'}),
    'create-raw': ('block_job', {'type': 'create', 'size': '1M', 'target_format': 'raw',
                                 'wait': 'concluded'}),
}


def start(kind: str, name: str, target: Path, **extra: Any) -> tuple[str, dict[str, Any]]:
    if kind == 'backup-module':
        return 'backup', dict({'name': name, 'disks': [{'device': 'disk0', 'target': str(target)}],
                               'wait': 'concluded'}, **extra)
    module, args = KINDS[kind]
    return module, dict(args, name=name, target=str(target), **extra)


@pytest.mark.parametrize('kind', [*KINDS, 'backup-module'])
def test_a_dangling_link_is_refused_and_nothing_is_created(kind, workdir, disk0, private, qsd,
                                                           qmp_observer, play):
    daemon = qsd(disks={'disk0': disk0})
    elsewhere = workdir / 'elsewhere'
    elsewhere.mkdir()
    link = private / 'link.qcow2'
    link.symlink_to(elsewhere / 'made-by-root.qcow2')
    refused, again, good = play(connection(daemon, workdir),
                                start(kind, 'j1', link), start(kind, 'j1', link),
                                start(kind, 'j1', private / 'good.qcow2'))
    for result in (refused, again):
        assert_one_line(result, "job 'j1'", f'target {link} is a symbolic link',
                        'which does not exist')
    assert not any(elsewhere.iterdir()), 'nothing was created where the link points'
    assert link.is_symlink() and sorted(p.name for p in private.iterdir()) == [
        'good.qcow2', 'link.qcow2']
    assert not good['failed'] and good['changed'], good
    assert good['job']['status'] in ('concluded', 'ready'), good
    assert mode_of(private / 'good.qcow2') == 0o600
    obs = qmp_observer(daemon.obs_sock)
    jobs = [job['id'] for job in obs.cmd('query-jobs')]
    assert all(job == 'j1' or job.startswith('j1.') for job in jobs), jobs


def test_refusals_leave_no_trace(workdir, disk0, private, qsd, qmp_observer, play):
    """A link to an existing file, an unsafe directory and bad modes: one line each, and the
    jobs, the attached nodes, the ledger and the files are as they were."""
    daemon = qsd(disks={'disk0': disk0})
    real = private / 'real.qcow2'
    shutil.copy(disk0, real)
    real.chmod(0o640)
    before = real.read_bytes()
    (private / 'to-real.qcow2').symlink_to(real)
    shared = workdir / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    grouped = workdir / 'grouped'
    grouped.mkdir()
    grouped.chmod(0o770)
    results = play(
        connection(daemon, workdir),
        start('backup', 'r1', private / 'to-real.qcow2', reuse_target=True),
        start('mirror', 'r2', private / 'to-real.qcow2', reuse_target=True),
        start('backup-module', 'r3', private / 'to-real.qcow2'),
        start('backup', 'r4', shared / 'b.qcow2'),
        start('create', 'r5', grouped / 'c.qcow2'),
        start('backup-module', 'r6', shared / 'b.qcow2'),
        start('backup', 'r7', private / 'm.qcow2', mode='rw'),
        start('backup', 'r8', private / 'm.qcow2', mode='0400'),
        start('backup-module', 'r9', private / 'm.qcow2', target_mode=640),
        ('block_job', {'name': 'r10', 'type': 'stream', 'device': 'disk0', 'mode': '0600'}),
        start('backup', 'r11', private / 'no-such-dir' / 'b.qcow2'),
        ('job_info', {'include_dismissed': True}))
    link, link_mirror, link_group, shared_bk, grouped_mk, shared_group, bad, owner, decimal, \
        stream, nodir, listed = results
    for result, words in (
            (link, ("job 'r1'", 'to-real.qcow2 is a symbolic link (to ', 'real.qcow2)')),
            (link_mirror, ("job 'r2'", 'is a symbolic link')),
            (link_group, ("job 'r3'", 'is a symbolic link')),
            (shared_bk, ("job 'r4'", f'directory {shared} is writable by other users',
                         '(mode 0777) and not sticky', f'chmod g-w,o-w {shared}', 'chmod +t')),
            (grouped_mk, ("job 'r5'", f'directory {grouped} is writable', '(mode 0770)')),
            (shared_group, ("job 'r6'", f'directory {shared} is writable')),
            (bad, ("job 'r7'", "mode 'rw' is not a file mode", "'0640'")),
            (owner, ("job 'r8'", 'leaves the owner without read and write')),
            (decimal, ("job 'r9'", 'target_mode 640 is not a file mode')),
            (stream, ("job 'r10'", 'type stream does not take mode')),
            (nodir, ("job 'r11'", 'no-such-dir of target', 'does not exist'))):
        assert_one_line(result, *words)
    assert listed['jobs'] == [], 'refused starts leave nothing in the ledger'
    assert ledger_names(workdir) == set()
    assert real.read_bytes() == before and mode_of(real) == 0o640
    assert not any(shared.iterdir()) and not any(grouped.iterdir())
    assert sorted(p.name for p in private.iterdir()) == ['real.qcow2', 'to-real.qcow2']
    obs = qmp_observer(daemon.obs_sock)
    assert obs.cmd('query-jobs') == []
    assert [n['node-name'] for n in obs.cmd('query-named-block-nodes', flat=True)
            if n['node-name'].startswith('vj')] == []
    shared.chmod(0o1777)  # sticky, as /tmp: nobody can swap another user's file
    (sticky,) = play(connection(daemon, workdir), start('backup', 'r4', shared / 'b.qcow2'))
    assert sticky['changed'] and sticky['job']['outcome'] == 'succeeded', sticky
    assert mode_of(shared / 'b.qcow2') == 0o600


def test_reuse_target_keeps_the_files_mode(workdir, disk0, private, qsd, play):
    daemon = qsd(disks={'disk0': disk0})
    mine = private / 'mine.qcow2'
    shutil.copy(disk0, mine)
    mine.chmod(0o644)
    (reused,) = play(connection(daemon, workdir),
                     start('backup', 'b1', mine, reuse_target=True, mode='0600'))
    assert reused['job']['outcome'] == 'succeeded', reused
    assert mode_of(mine) == 0o644


# -- the roles --------------------------------------------------------------------------------------

def test_the_backup_roles_directories_are_private(workdir, disk0, qsd, run_playbook):
    daemon = qsd(disks={'disk0': disk0})
    backups = workdir / 'backups'

    def role(stamp: str, **extra: Any) -> None:
        with umask(0):
            assert_ok(run_playbook(json.dumps([{
                'hosts': 'localhost', 'gather_facts': False,
                'roles': [{'role': 'vmjobs.qemu.backup', 'vars': dict({
                    'backup_socket': str(daemon.sock), 'backup_dir': str(backups),
                    'backup_ledger_dir': str(workdir / 'ledger'), 'backup_vm_name': 'vm1',
                    'backup_stamp': stamp, 'backup_disks': ['disk0']}, **extra)}]}]) + '\n'))

    role('2026-11-21')
    chain = backups / 'vm1' / 'chain-2026-11-21'
    run = chain / '2026-11-21-full'
    made = (backups, backups / 'vm1', chain, run, run / 'disk0.qcow2')
    assert {str(p.relative_to(workdir)): mode_of(p) for p in made} == {
        'backups': 0o700, 'backups/vm1': 0o700, 'backups/vm1/chain-2026-11-21': 0o700,
        'backups/vm1/chain-2026-11-21/2026-11-21-full': 0o700,
        'backups/vm1/chain-2026-11-21/2026-11-21-full/disk0.qcow2': 0o600}
    role('2026-11-22', backup_mode='incremental', backup_dir_mode='0750',
         backup_target_mode='0640')
    inc = chain / '2026-11-22-incremental'
    assert (mode_of(backups / 'vm1'), mode_of(chain), mode_of(inc)) == (0o750, 0o750, 0o750)
    assert mode_of(inc / 'disk0.qcow2') == 0o640


def test_the_disk_move_role_passes_its_mode(workdir, disk0, qsd, run_playbook):
    daemon = qsd(disks={'disk0': disk0})
    target = workdir / 'moved.qcow2'
    with umask(0):
        assert_ok(run_playbook(json.dumps([{
            'hosts': 'localhost', 'gather_facts': False,
            'roles': [{'role': 'vmjobs.qemu.disk_move', 'vars': {
                'disk_move_socket': str(daemon.sock), 'disk_move_device': 'disk0',
                'disk_move_target': str(target), 'disk_move_target_mode': '0640',
                'disk_move_ledger_dir': str(workdir / 'ledger')}}]}]) + '\n'))
    assert mode_of(target) == 0o640


# -- libvirt ----------------------------------------------------------------------------------------

def test_libvirt_targets_are_private(libvirt_host, workdir, make_image, private, play):
    disk = make_image('vda.qcow2', '16M', pattern=0x3C)
    name = create_domain(libvirt_host, workdir, f'{workdir.name}-t', {'vda': disk},
                         persistent=True)
    conn = {'domain': name, 'uri': libvirt_host.uri, 'ledger_dir': str(workdir / 'ledger')}
    (private / 'grp').mkdir()
    link = private / 'link.qcow2'
    link.symlink_to(workdir / 'made-by-libvirt.qcow2')
    try:
        with umask(0):
            results = play(
                conn,
                ('block_job', {'name': 'bk', 'type': 'backup', 'device': 'vda',
                               'target': str(private / 'bk.qcow2'), 'wait': 'concluded'}),
                ('backup', {'name': 'grp', 'target_dir': str(private / 'grp'),
                            'target_mode': '0640', 'wait': 'concluded'}),
                ('block_job', {'name': 'raw', 'type': 'backup', 'device': 'vda',
                               'target_format': 'raw', 'target': str(private / 'bk.raw'),
                               'wait': 'concluded'}),
                ('block_job', {'name': 'cp', 'type': 'mirror', 'device': 'vda',
                               'target': str(private / 'copy.qcow2'), 'wait': 'ready'}),
                ('block_job', {'name': 'cp-link', 'type': 'mirror', 'device': 'vda',
                               'target': str(link)}))
        bk, grp, raw, cp, refused = results
        for result in (bk, grp, raw):
            assert result['job']['outcome'] == 'succeeded', result
        assert cp['job']['status'] == 'ready', cp
        assert_one_line(refused, "job 'cp-link'", 'is a symbolic link')
        assert not (workdir / 'made-by-libvirt.qcow2').exists()
        modes = {path: mode_of(private / path) for path in
                 ('bk.qcow2', 'grp/vda.qcow2', 'bk.raw', 'copy.qcow2')}
        assert modes == {'bk.qcow2': 0o600, 'grp/vda.qcow2': 0o640, 'bk.raw': 0o600,
                         'copy.qcow2': 0o600}
        (done,) = play(conn, ('job', {'name': 'cp', 'state': 'completed'}))
        assert done['job']['outcome'] == 'succeeded', done
        libvirt_host.virsh('destroy', name, '--graceful')
        for path in ('bk.qcow2', 'grp/vda.qcow2', 'bk.raw', 'copy.qcow2'):
            compare(disk, private / path)
        assert mode_of(private / 'copy.qcow2') == 0o600, 'libvirt left the mode alone'
    finally:
        libvirt_host.virsh('destroy', name, check=False)
        libvirt_host.virsh('undefine', name, '--checkpoints-metadata', check=False)


@pytest.mark.parametrize('kind', ['backup', 'create'])
def test_check_mode_refuses_a_link_target_as_the_run_would(kind, workdir, disk0, private, qsd,
                                                           run_module):
    daemon = qsd(disks={'disk0': disk0})
    link = private / 'link.qcow2'
    link.symlink_to(workdir / 'nowhere.qcow2')
    module, args = start(kind, 'j1', link)
    predicted = run_module(module, dict(connection(daemon, workdir), **args), check=True)
    assert_one_line(predicted, "job 'j1'", f'target {link} is a symbolic link')
    assert not predicted['changed']
