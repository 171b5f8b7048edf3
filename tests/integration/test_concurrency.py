"""Concurrent tasks: starts of one name are serialised by the ledger lock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def test_concurrent_starts_make_one_job(workdir, make_image, qsd, qmp_observer, run_module):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A)})
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger'),
            'name': 'once', 'type': 'backup', 'device': 'disk0',
            'target': str(workdir / 'once.qcow2'), 'speed': 1 << 20, 'connect_timeout': 30}
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: run_module('block_job', args), range(6)))
    assert [r['failed'] for r in results] == [False] * 6, [r.get('msg') for r in results]
    assert sum(r['changed'] for r in results) == 1
    jobs = qmp_observer(daemon.obs_sock).cmd('query-jobs')
    assert [j['id'] for j in jobs] == ['once']
