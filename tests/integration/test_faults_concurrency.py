"""Ten concurrent starts of one name: exactly one job, nine ``changed: false``, none failed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from harness.faults import created_counts, ledger_records
from harness.migration import start_destination, start_source
from harness.qmp import QMPConnection

STARTS = 10


def start_all(run_module, module, args):
    with ThreadPoolExecutor(max_workers=STARTS) as pool:
        results = list(pool.map(lambda _: run_module(module, args), range(STARTS)))
    assert [r['failed'] for r in results] == [False] * STARTS, [r.get('msg') for r in results]
    assert sum(r['changed'] for r in results) == 1, [r['changed'] for r in results]
    return results


def test_ten_concurrent_block_job_starts(workdir, make_image, vm, qmp_observer, run_module):
    daemon = vm(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    obs = qmp_observer(daemon.obs_sock)
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger'),
            'name': 'once', 'type': 'mirror', 'device': 'disk0',
            'target': str(workdir / 'once.qcow2'), 'speed': 4 << 20, 'connect_timeout': 60}
    results = start_all(run_module, 'block_job', args)
    assert {r['job']['name'] for r in results} == {'once'}
    assert [j['id'] for j in obs.cmd('query-jobs')] == ['once']
    assert created_counts(obs)['once'] == 1
    assert list(ledger_records(workdir / 'ledger')) == ['once']


def test_ten_concurrent_migration_starts(workdir, run_module):
    source = start_source(workdir, ram_mb=32)
    dest = start_destination(workdir)
    try:
        with QMPConnection(source.obs_sock) as obs:
            args = {'socket': str(source.sock), 'ledger_dir': str(workdir / 'ledger'),
                    'name': 'move-once', 'dest_socket': str(dest.sock), 'bandwidth': 8 << 20,
                    'connect_timeout': 60}
            results = start_all(run_module, 'migration', args)
            assert {r['job']['name'] for r in results} == {'move-once'}
            obs.cmd('query-version')
            setups = [e for e in obs.events
                      if e['event'] == 'MIGRATION' and e['data']['status'] == 'setup']
            assert len(setups) == 1, 'one migration started'
            assert list(ledger_records(workdir / 'ledger')) == ['move-once']
            done = run_module('job_wait', {'socket': str(source.sock), 'name': ['move-once'],
                                           'ledger_dir': str(workdir / 'ledger'),
                                           'timeout': 60})
            assert not done['failed'] and done['jobs'][0]['outcome'] == 'succeeded', done
    finally:
        dest.stop()
        source.stop()
