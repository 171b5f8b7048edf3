"""The vmjobs.qemu.test_vm role: throwaway VMs booted, found again, torn down exactly.

Bare QEMU VMs (a chain with known data, an image of the user's under an overlay, a
running migration source and its incoming destination on one shared image) and a
libvirt domain on a private libvirtd. Each case asserts ``changed``, then idempotency.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    QMPConnection,
    assert_ok,
    has_pattern,
    make_image,
    recap_changed,
    write_pattern,
)
from harness.libvirt import LibvirtHost

PLAY = '''
- name: Throwaway VMs
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The role
      ansible.builtin.include_role:
        name: vmjobs.qemu.test_vm
      vars:
        test_vm_dir: "{{ vms_dir }}"
        test_vm_state: "{{ vms_state | default('present') }}"
        test_vm_vms: "{{ vms | default([]) }}"
        test_vm_libvirt_uri: "{{ vms_uri | default('qemu:///system') }}"
        test_vm_add_hosts: "{{ vms_add_hosts | default(false) }}"

    - name: Show the result
      ansible.builtin.copy:
        content: "{{ test_vm_result | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      changed_when: false
      when: not ansible_check_mode
'''

ADDED_HOSTS_PLAY = '''
- name: The VMs as inventory hosts
  hosts: test_vms
  gather_facts: false
  tasks:
    - name: Ask each VM for its jobs through the variables the role set
      vmjobs.qemu.job_info:
        socket: "{{ vm_socket or omit }}"
        domain: "{{ vm_domain or omit }}"
        uri: "{{ vm_libvirt_uri or omit }}"
        ledger_dir: "{{ vm_ledger_dir }}"
      register: listed

    - name: Check the answer
      ansible.builtin.assert:
        that: listed.jobs == [] and test_vm.name == inventory_hostname
'''


def qemu_vms(user_image: Path) -> list[dict[str, Any]]:
    return [
        {'name': 'src', 'running': True, 'memory': 96, 'disks': [
            {'id': 'disk0', 'size': '8M', 'images': [
                {'file': 'shared-base.qcow2', 'writes': ['0x11 0 8M']},
                {'file': 'shared-top.qcow2', 'writes': ['0x22 2M 1M']}]}]},
        {'name': 'dst', 'incoming': True, 'memory': 96, 'disks': [
            {'id': 'disk0', 'images': [{'file': 'shared-base.qcow2'}, {'file': 'shared-top.qcow2'}]}]},
        {'name': 'mine', 'disks': [
            {'id': 'disk0', 'images': [{'path': str(user_image)},
                                       {'file': 'mine-top.qcow2', 'writes': ['0x33 0 1M']}]},
            {'id': 'disk1', 'size': '4M', 'images': [{'file': 'mine-disk1.qcow2'}]}]},
    ]


class Role:
    """Runs the role in one directory and reads what it returned."""

    def __init__(self, workdir: Path, run_playbook: Callable[..., subprocess.CompletedProcess[str]],
                 name: str = 'vms', **extra: Any) -> None:
        self.dir = workdir / name
        self.result_file = workdir / f'{name}-result.json'
        self.run_playbook = run_playbook
        self.extra = extra

    def run(self, *args: str, play: str = PLAY, **extra: Any) -> subprocess.CompletedProcess[str]:
        extra_vars = {'vms_dir': str(self.dir), 'result_file': str(self.result_file),
                      **self.extra, **extra}
        return self.run_playbook(play, extra_vars, *args)

    def ok(self, *args: str, **extra: Any) -> int:
        """Run; fail on failure; the number of changed tasks."""
        done = self.run(*args, **extra)
        assert_ok(done)
        return recap_changed(done.stdout)['localhost']

    @property
    def result(self) -> dict[str, Any]:
        return json.loads(self.result_file.read_text())


def pid_of(pidfile: str) -> int:
    return int(Path(pidfile).read_text())


def alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != 'Z'


def run_state(socket: str) -> str:
    with QMPConnection(socket) as conn:
        return str(conn.cmd('query-status')['status'])


def test_bare_qemu_vms(workdir: Path, run_playbook: Callable[..., Any]) -> None:
    user_image = make_image(workdir / 'golden.qcow2', '4M')
    write_pattern(user_image, 0x44, 0, '4M')
    before = user_image.read_bytes()
    role = Role(workdir, run_playbook, vms=qemu_vms(user_image))

    # check mode on a new directory: it would make and start things, and does nothing
    assert role.ok('--check') > 0
    assert not role.dir.exists()

    assert role.ok() > 0
    vms = role.result['vms']
    assert sorted(vms) == ['dst', 'mine', 'src']
    assert role.result['ledger_dir'] == f'{role.dir}/ledger'
    assert os.stat(role.dir).st_mode & 0o777 == 0o700
    assert vms['src']['disks']['disk0'] == [f'{role.dir}/shared-base.qcow2', f'{role.dir}/shared-top.qcow2']
    assert vms['mine']['disks']['disk0'] == [str(user_image), f'{role.dir}/mine-top.qcow2']
    assert run_state(vms['src']['socket']) == 'running'
    assert run_state(vms['dst']['socket']) == 'inmigrate'
    assert run_state(vms['mine']['socket']) == 'prelaunch'
    assert has_pattern(f'{role.dir}/shared-top.qcow2', 0x11, 0, '2M')
    assert has_pattern(f'{role.dir}/shared-top.qcow2', 0x22, '2M', '1M')
    assert has_pattern(f'{role.dir}/mine-top.qcow2', 0x33, 0, '1M')
    assert has_pattern(f'{role.dir}/mine-top.qcow2', 0x44, '1M', '3M')
    assert json.loads((role.dir / 'test_vm.json').read_text())['test_vm_result'] == role.result
    pids = {name: pid_of(vm['pidfile']) for name, vm in vms.items()}

    # again: nothing changes, the same processes run
    assert role.ok() == 0
    assert {name: pid_of(vm['pidfile']) for name, vm in vms.items()} == pids

    # a VM that is gone is started again, and only that one
    os.kill(pids['mine'], signal.SIGKILL)
    assert role.ok() > 0
    assert pid_of(vms['mine']['pidfile']) != pids['mine']
    assert alive(pid_of(vms['mine']['pidfile'])) and alive(pids['src']) and alive(pids['dst'])
    pids['mine'] = pid_of(vms['mine']['pidfile'])

    # teardown: check mode stops nothing; then exactly these processes go, and the directory
    assert role.ok('--check', vms_state='absent') > 0
    assert all(alive(pid) for pid in pids.values())
    assert role.ok(vms_state='absent') > 0
    assert not any(alive(pid) for pid in pids.values())
    assert not role.dir.exists()
    assert user_image.read_bytes() == before, "the user's image is left as it was"
    assert role.ok(vms_state='absent') == 0


def test_refuses_what_is_not_its_own(workdir: Path, run_playbook: Callable[..., Any]) -> None:
    foreign = workdir / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine\n')
    role = Role(workdir, run_playbook, name='foreign',
                vms=[{'name': 'vm', 'disks': [{'id': 'disk0', 'images': [{'file': 'a.qcow2'}]}]}])
    done = role.run()
    assert done.returncode != 0 and 'holds files but no record of this role' in done.stdout
    assert sorted(p.name for p in foreign.iterdir()) == ['notes.txt']
    assert role.ok(vms_state='absent') == 0, 'no record: absent removes nothing'
    assert (foreign / 'notes.txt').exists()

    bad = Role(workdir, run_playbook, name='bad', vms=[
        {'name': 'a', 'disks': [{'id': 'disk0', 'images': [{'file': 'x.qcow2'}, {'path': '/srv/y.qcow2'}]}]},
        {'name': 'a', 'kind': 'libvirt', 'incoming': True}])
    done = bad.run()
    assert done.returncode != 0
    for message in ('VM a is named more than once', 'incoming is for kind=qemu only',
                    'only the bottom of a chain may be a path'):
        assert message in done.stdout, done.stdout
    assert not bad.dir.exists()


@pytest.fixture(scope='module')
def host(libvirt_host: LibvirtHost) -> LibvirtHost:
    """The module's private libvirtd (conftest's ``libvirt_host``)."""
    return libvirt_host


def test_libvirt_vm(workdir: Path, run_playbook: Callable[..., Any], host: LibvirtHost) -> None:
    vms = [{'name': 'lv1', 'kind': 'libvirt', 'domain': f'vjtest-{workdir.name}', 'disks': [
        {'id': 'vda', 'size': '8M', 'images': [{'file': 'lv1-vda.qcow2', 'writes': ['0x55 0 8M']}]}]}]
    role = Role(workdir, run_playbook, vms=vms, vms_uri=host.uri, vms_add_hosts=True)
    domain = vms[0]['domain']

    # a domain of that name that the role did not start is refused, and left alone
    (workdir / 'other.xml').write_text(
        f"<domain type='qemu'><name>{domain}</name><memory unit='MiB'>64</memory>"
        "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
        "<controller type='usb' model='none'/><memballoon model='none'/></devices></domain>")
    host.virsh('create', str(workdir / 'other.xml'), '--paused')
    done = role.run()
    assert done.returncode != 0 and 'were not started by this' in done.stdout, done.stdout
    assert role.ok(vms_state='absent') > 0, 'its directory and record go'
    assert host.virsh('domstate', domain).stdout.strip() == 'paused', 'the other domain stays'
    host.virsh('destroy', domain)

    assert role.ok('--check') > 0
    assert domain not in host.virsh('list', '--all', '--name').stdout and not role.dir.exists()

    assert role.ok(play=PLAY + ADDED_HOSTS_PLAY) > 0
    lv1 = role.result['vms']['lv1']
    assert (lv1['kind'], lv1['domain'], lv1['uri'], lv1['socket']) == ('libvirt', domain, host.uri, '')
    assert host.virsh('domstate', domain).stdout.strip() == 'paused'
    assert f'vmjobs.qemu.test_vm {role.dir}' in host.virsh('desc', domain).stdout
    assert has_pattern(f'{role.dir}/lv1-vda.qcow2', 0x55, 0, '8M')
    assert role.ok() == 0

    assert role.ok(vms_state='absent') > 0
    assert domain not in host.virsh('list', '--all', '--name').stdout
    assert not role.dir.exists()
