"""block_job type amend: a qcow2's LUKS key slots changed as a named job, on a real QEMU."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

#: QEMU sizes a LUKS key's PBKDF by the thread's CPU time; on a busy machine that reading
#: can come back empty, and QEMU gives up with this text. It is a glitch of QEMU's
#: measurement, not of the step, which is then tried again (up to ATTEMPTS times).
CPU_GLITCH = 'Unable to get accurate CPU usage'
ATTEMPTS = 5


def luks_image(path: Path, secret: str) -> Path:
    for _attempt in range(ATTEMPTS):
        run = subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '--object',
                              f'secret,id=s0,data={secret}', '-o',
                              'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10',
                              str(path), '16M'], capture_output=True, text=True, check=False)
        if run.returncode == 0:
            return path
        assert CPU_GLITCH in run.stderr, run.stderr
    raise AssertionError(f'qemu-img create failed {ATTEMPTS} times: {CPU_GLITCH}')


def opens_with(path: Path, secret: str) -> bool:
    """Whether another process opens the image with ``secret`` (QEMU has gone by then)."""
    run = subprocess.run(['qemu-io', '--object', f'secret,id=k,data={secret}', '--image-opts',
                          f'driver=qcow2,file.filename={path},encrypt.key-secret=k',
                          '-c', 'read 0 64k'], capture_output=True, text=True, check=False)
    return run.returncode == 0 and 'read 65536/65536' in run.stdout


def active_slots(path: Path) -> list[int]:
    info = json.loads(subprocess.run(['qemu-img', 'info', '-U', '--output=json', str(path)],
                                     capture_output=True, text=True, check=True).stdout)
    slots = info['format-specific']['data']['encrypt']['slots']
    return [i for i, slot in enumerate(slots) if slot['active']]


def test_a_key_slot_added_by_name(workdir: Path, qsd, qmp_observer, run_module):
    image = luks_image(workdir / 'secret.qcow2', 'first')
    daemon = qsd(extra_args=['--object', 'secret,id=s0,data=first',
                             '--object', 'secret,id=s1,data=second'])
    obs = qmp_observer(daemon.obs_sock)  # the secrets exist first: attach the image now
    obs.cmd('blockdev-add', driver='file', filename=str(image), **{'node-name': 'disk0-file'})
    obs.cmd('blockdev-add', driver='qcow2', file='disk0-file', encrypt={
        'format': 'luks', 'key-secret': 's0'}, **{'node-name': 'disk0'})
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    for attempt in range(ATTEMPTS):
        task = dict(args, name=f'add-key-{attempt}', type='amend', device='disk0',
                    wait='concluded', amend={'encrypt': {
                        'format': 'luks', 'state': 'active', 'new-secret': 's1', 'keyslot': 1,
                        'iter-time': 10}})
        added = run_module('block_job', task)
        if not (added['failed'] and CPU_GLITCH in added['msg']):
            break
    assert not added['failed'] and added['changed'], added
    assert (added['job']['type'], added['job']['outcome']) == ('amend', 'succeeded'), added
    again = run_module('block_job', task)
    assert not again['failed'] and not again['changed'], again

    refused = run_module('block_job', dict(task, name='bad-key', amend={
        'encrypt': {'format': 'luks', 'state': 'active', 'new-secret': 'nosuch',
                    'keyslot': 2}}))
    assert refused['failed'] and "job 'bad-key'" in refused['msg'], refused
    assert 'nosuch' in refused['msg'] and '\n' not in refused['msg'], refused['msg']
    odd = run_module('block_job', dict(task, name='no-disk', device='disk9'))
    assert odd['failed'] and "no block node or device named 'disk9'" in odd['msg'], odd

    obs.close()
    daemon.stop()
    assert active_slots(image) == [0, 1]
    assert opens_with(image, 'second') and opens_with(image, 'first')
    assert not opens_with(image, 'third')
