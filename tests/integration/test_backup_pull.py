"""Pull backups over QMP: a reader copies each disk's NBD export while the guest writes on.

Every read is compared with a copy of the disk taken at the backup's start instant (a
reference that took the same writes; see harness/chains.py); writes made after the
start must not show. The reader's verdict decides whether the chain moves on; whatever
it is, nothing of the backup stays in QEMU's graph.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.chains import Disks
from harness.nbd import (
    compare_raw,
    dirty_extents,
    free_port,
    make_tls_dir,
    plain_refused,
    read_extents,
    read_full,
    read_full_async,
    read_tls,
    writes_while,
)

DEVICES = ('disk0', 'disk1')


def pull(run_module, machine: Disks, ledger: Path, name: str, mode: str,
         **options: Any) -> dict[str, Any]:
    args = {'socket': str(machine.daemon.sock), 'ledger_dir': str(ledger), 'name': name,
            'mode': mode, 'bitmap': 'nightly', 'delivery': 'pull'}
    return run_module('backup', dict(args, **options))


def end(run_module, machine: Disks, ledger: Path, name: str, **options: Any) -> dict[str, Any]:
    args = {'socket': str(machine.daemon.sock), 'ledger_dir': str(ledger), 'name': name,
            'state': 'absent'}
    return run_module('job', dict(args, **options))


def exports(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {disk['device']: disk for disk in result['backup']['disks']}


def assert_clean(machine: Disks) -> None:
    """Nothing of a pull backup left: no export, job, overlay node or start-instant bitmap."""
    assert machine.obs.cmd('query-block-exports') == []
    assert machine.obs.cmd('query-jobs') == []
    assert machine.attached_by_collection() == []
    for device in DEVICES:
        assert not [b for b in machine.bitmaps(device) if b.endswith('.pull')]
    assert [n['node-name'] for n in machine.obs.cmd('query-named-block-nodes', flat=True)] \
        == ['disk1-fmt', 'disk1-file', 'disk0-fmt', 'disk0-file']


def overlays(result: dict[str, Any]) -> list[str]:
    socket = exports(result)['disk0']['uri'].split('socket=')[1]
    return [name for name in os.listdir(os.path.dirname(socket)) if name.endswith('.qcow2')]


def first_full(run_module, machine: Disks, ledger: Path, workdir: Path) -> None:
    """Full pull backup ``p1``, read whole into ``p1-<device>.raw``, acknowledged."""
    full = pull(run_module, machine, ledger, 'p1', 'full')
    for dev in DEVICES:
        read_full(exports(full)[dev]['uri'], workdir / f'p1-{dev}.raw')
    end(run_module, machine, ledger, 'p1', verdict='succeeded')


def read_changes(result: dict[str, Any], workdir: Path, name: str,
                 expected: dict[str, Path]) -> None:
    """Read an incremental's dirty extents onto the full read of ``p1``; each disk must
    then equal ``expected``."""
    for dev in DEVICES:
        uri = exports(result)[dev]['uri']
        read_extents(uri, dirty_extents(uri, 'qemu:dirty-bitmap:nightly'),
                     workdir / f'p1-{dev}.raw', workdir / f'{name}-{dev}.raw')
        compare_raw(workdir / f'{name}-{dev}.raw', expected[dev])


def guest_writes_while(machine: Disks, writes: list[tuple[str, int, str, str]],
                       reads: list[Any]) -> None:
    """Run the guest's ``writes`` while the reader's processes ``reads`` run; wait for both."""
    writes_while(machine.write, writes, reads)


def test_full_then_incremental_read_while_the_guest_writes(disks, run_module, ledger_dir,
                                                           workdir):
    disks.write('disk0', 0x31, '0', '1M')
    at_full = disks.remember('f1')
    full = pull(run_module, disks, ledger_dir, 'p1', 'full')
    assert full['changed'] and full['job']['status'] == 'running', full
    assert full['backup']['delivery'] == 'pull'
    found = exports(full)
    assert {d: (e['export'], e['meta_context'], e['target']) for d, e in found.items()} == {
        'disk0': ('p1.disk0', None, None), 'disk1': ('p1.disk1', None, None)}
    assert found['disk0']['uri'].startswith('nbd+unix:///p1.disk0?socket=/')
    assert not pull(run_module, disks, ledger_dir, 'p1', 'full')['changed']
    assert set(disks.bitmaps('disk0')) == {'nightly.pull'}, 'no chain bitmap before the verdict'

    # The guest writes before and while the reader reads: none of it may show.
    disks.write('disk0', 0x33, '1M', '1M')
    reads = [read_full_async(found[dev]['uri'], workdir / f'p1-{dev}.raw') for dev in DEVICES]
    guest_writes_while(disks, [('disk1', 0x44, '3M', '512K'), ('disk0', 0x35, '6M', '1M'),
                               ('disk1', None, '0', '64K')], reads)
    for dev in DEVICES:
        compare_raw(workdir / f'p1-{dev}.raw', at_full[dev])

    done = end(run_module, disks, ledger_dir, 'p1', verdict='succeeded')
    assert done['changed'] and done['job']['outcome'] == 'succeeded', done
    assert done['job']['dismissed'] and done['job']['error'] is None
    assert_clean(disks)
    assert overlays(full) == []
    counts = {dev: {n: b['count'] for n, b in disks.bitmaps(dev).items()} for dev in DEVICES}
    assert counts == {'disk0': {'nightly': 2 * 2**20, 'nightly.full': 2 * 2**20},
                      'disk1': {'nightly': 576 * 2**10, 'nightly.full': 576 * 2**10}}, \
        'the chain counts from the start instant of the acknowledged backup'
    assert not end(run_module, disks, ledger_dir, 'p1', verdict='succeeded')['changed']

    at_inc = disks.remember('i1')
    inc = pull(run_module, disks, ledger_dir, 'p2', 'incremental')
    assert inc['changed'], inc
    assert [(d['device'], d['mode'], d['meta_context']) for d in inc['backup']['disks']] == [
        ('disk0', 'incremental', 'qemu:dirty-bitmap:nightly'),
        ('disk1', 'incremental', 'qemu:dirty-bitmap:nightly')]
    disks.write('disk0', 0x36, '1M', '4M')  # over what changed and what did not
    read = 0
    for dev in DEVICES:
        uri = exports(inc)[dev]['uri']
        extents = dirty_extents(uri, 'qemu:dirty-bitmap:nightly')
        disks.write(dev, 0x37, '7M', '64K')
        read += read_extents(uri, extents, workdir / f'p1-{dev}.raw', workdir / f'p2-{dev}.raw')
        compare_raw(workdir / f'p2-{dev}.raw', at_inc[dev])
    assert read == 2 * 2**20 + 576 * 2**10, 'only the dirty extents are read'
    assert end(run_module, disks, ledger_dir, 'p2', verdict='succeeded')['job'][
        'outcome'] == 'succeeded'
    assert_clean(disks)


def test_a_failed_read_leaves_the_chain_as_it_was(disks, run_module, ledger_dir, workdir):
    first_full(run_module, disks, ledger_dir, workdir)

    disks.write('disk0', 0x51, '2M', '1M')
    failed = pull(run_module, disks, ledger_dir, 'p2', 'incremental')
    disks.write('disk1', 0x52, '4M', '1M')
    ended = end(run_module, disks, ledger_dir, 'p2', verdict='failed')
    assert ended['changed'] and ended['job']['outcome'] == 'failed', ended
    assert 'reader' in ended['job']['error']
    assert_clean(disks)
    assert {dev: disks.bitmaps(dev)['nightly']['count'] for dev in DEVICES} == {
        'disk0': 2**20, 'disk1': 2**20}, 'the bitmaps still count from the last good backup'
    assert overlays(failed) == []

    # Canceled, and ended without a verdict (forgotten): neither moves the chain on.
    canceled = pull(run_module, disks, ledger_dir, 'p3', 'incremental')
    stopped = run_module('job', {'socket': str(disks.daemon.sock),
                                 'ledger_dir': str(ledger_dir), 'name': 'p3',
                                 'state': 'canceled'})
    assert stopped['changed'] and stopped['job']['outcome'] == 'canceled', stopped
    assert disks.obs.cmd('query-block-exports') == []
    assert end(run_module, disks, ledger_dir, 'p3')['job']['outcome'] == 'canceled'
    assert_clean(disks)
    assert overlays(canceled) == []
    pull(run_module, disks, ledger_dir, 'p4', 'full')
    gone = end(run_module, disks, ledger_dir, 'p4', cancel=True, forget=True)
    assert gone['changed'] and gone['job']['outcome'] == 'canceled', gone
    assert_clean(disks)

    at_inc = disks.remember('i3')
    inc = pull(run_module, disks, ledger_dir, 'p5', 'incremental')
    assert [d['mode'] for d in inc['backup']['disks']] == ['incremental', 'incremental']
    read_changes(inc, workdir, 'p5', at_inc)
    end(run_module, disks, ledger_dir, 'p5', verdict='succeeded')
    assert_clean(disks)


def test_refusals_change_nothing(disks, run_module, ledger_dir, workdir):
    given = pull(run_module, disks, ledger_dir, 'p1', 'full', target_dir=str(workdir))
    assert given['failed'] and given['msg'] == (
        "job 'p1': delivery: pull writes no image; remove target_dir"), given
    waited = pull(run_module, disks, ledger_dir, 'p1', 'full', wait='concluded')
    assert waited['failed'] and 'use wait: none' in waited['msg'], waited
    inc = pull(run_module, disks, ledger_dir, 'p1', 'incremental')
    assert inc['failed'] and 'there is no full backup' in inc['msg'], inc
    assert_clean(disks)

    predicted = run_module('backup', {'socket': str(disks.daemon.sock),
                                      'ledger_dir': str(ledger_dir), 'name': 'p2',
                                      'mode': 'full', 'bitmap': 'nightly',
                                      'delivery': 'pull'}, True)
    assert predicted['changed'] and not predicted['failed'], predicted
    assert_clean(disks)
    started = pull(run_module, disks, ledger_dir, 'p2', 'full')
    assert started['changed'], started
    ending = run_module('job', {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir),
                                'name': 'p2', 'state': 'absent', 'verdict': 'succeeded'}, True)
    assert ending['changed'] and not ending['failed'], ending
    assert len(disks.obs.cmd('query-block-exports')) == 2, 'check mode ends nothing'
    bare = end(run_module, disks, ledger_dir, 'p2')
    assert bare['failed'] and "give verdict: succeeded or failed" in bare['msg'], bare
    assert '\n' not in bare['msg'] and 'Traceback' not in bare.get('module_stderr', '')
    assert disks.obs.cmd('query-block-exports') != [], 'a refused end changes nothing'
    end(run_module, disks, ledger_dir, 'p2', verdict='failed')
    assert_clean(disks)

    push = run_module('backup', {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir),
                                 'name': 'b1', 'mode': 'full', 'target_dir': str(workdir),
                                 'wait': 'concluded'})
    assert push['job']['outcome'] == 'succeeded', push
    wrong = end(run_module, disks, ledger_dir, 'b1', verdict='succeeded')
    assert wrong['failed'] and 'verdict is the reader' in wrong['msg'], wrong


def test_a_pull_qemu_lost_leaves_the_chain_as_it_was(disks, run_module, ledger_dir, workdir):
    first_full(run_module, disks, ledger_dir, workdir)
    disks.write('disk0', 0x61, '3M', '1M')
    lost = pull(run_module, disks, ledger_dir, 'p2', 'incremental')
    disks.restart()  # QEMU stops cleanly before any verdict: the exports go with it
    disks.write('disk1', 0x62, '5M', '1M')

    at_inc = disks.remember('p3')
    inc = pull(run_module, disks, ledger_dir, 'p3', 'incremental')
    assert [d['mode'] for d in inc['backup']['disks']] == ['incremental'] * 2, inc
    read_changes(inc, workdir, 'p3', at_inc)
    end(run_module, disks, ledger_dir, 'p3', verdict='succeeded')
    assert_clean(disks)

    gone = end(run_module, disks, ledger_dir, 'p2', forget=True)
    assert gone['changed'], gone
    assert overlays(lost) == [], 'the lost backup\'s overlays go with its record'


def test_exports_over_tcp_with_tls(disks, run_module, ledger_dir, workdir):
    tls = make_tls_dir(workdir / 'tls')
    port = free_port()
    half = pull(run_module, disks, ledger_dir, 'p1', 'full', nbd_address=f'127.0.0.1:{port}')
    assert half['failed'] and half['msg'] == (
        "job 'p1': exports over TCP need TLS: give nbd_address and nbd_tls_dir together"), half

    at_full = disks.remember('f1')
    full = pull(run_module, disks, ledger_dir, 'p1', 'full', nbd_address=f'127.0.0.1:{port}',
                nbd_tls_dir=str(tls))
    assert full['changed'], full
    assert exports(full)['disk0']['uri'] == f'nbds://127.0.0.1:{port}/p1.disk0'
    disks.write('disk0', 0x71, '0', '1M')
    assert plain_refused('127.0.0.1', port, 'p1.disk0'), 'a reader without TLS is turned away'
    for dev in DEVICES:
        read = read_tls('127.0.0.1', port, f'p1.{dev}', tls, workdir / f'p1-{dev}.raw')
        assert read.returncode == 0, read.stderr
        compare_raw(workdir / f'p1-{dev}.raw', at_full[dev])
    end(run_module, disks, ledger_dir, 'p1', verdict='succeeded')
    assert_clean(disks)
    objects = [o['name'] for o in disks.obs.cmd('qom-list', path='/objects')]
    assert 'vmjobs-nbd-tls' not in objects, 'the TLS credentials go with the server'
