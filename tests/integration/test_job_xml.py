"""job_info format: xml against real QEMU: one document shape for every kind of job."""

from __future__ import annotations

from pathlib import Path

from harness.paths import REPO
from lxml import etree

SCHEMA = etree.RelaxNG(etree.parse(str(REPO / 'tests/unit/fixtures/job-xml.rng')))


def test_job_xml_of_a_finished_a_held_and_a_dismissed_job(
        workdir: Path, make_image, qsd, run_module):
    daemon = qsd(disks={'disk0': make_image('disk0.qcow2', pattern=0x5A),
                        'disk1': make_image('disk1.qcow2', '64M', pattern=0x33)})
    args = {'socket': str(daemon.sock), 'ledger_dir': str(workdir / 'ledger')}
    done = run_module('block_job', dict(args, name='copy0', type='backup', device='disk0',
                                        target=str(workdir / 'b0.qcow2'), wait='concluded'))
    assert done['job']['outcome'] == 'succeeded', done
    held = run_module('block_job', dict(args, name='slow1', type='backup', device='disk1',
                                        target=str(workdir / 'b1.qcow2'), speed=1))
    assert not held['failed'], held
    gone = run_module('block_job', dict(args, name='gone', type='create',
                                        target=str(workdir / 'new.qcow2'), size='1M',
                                        wait='concluded'))
    assert not run_module('job', dict(args, name='gone', state='absent'))['failed']

    info = run_module('job_info', dict(args, format='xml', include_dismissed=True))
    assert not info['failed'], info
    root = etree.fromstring(info['jobs_xml'].encode())
    SCHEMA.assertValid(root)
    jobs = {job.get('name'): job for job in root}
    assert [job['name'] for job in info['jobs']] == sorted(jobs)
    assert (jobs['copy0'].get('state'), jobs['copy0'].get('outcome')) == ('concluded', 'succeeded')
    assert jobs['copy0'].findtext('stats/current') == jobs['copy0'].findtext('stats/end') != ''
    assert jobs['copy0'].findtext('config/device') == 'disk0'
    assert jobs['slow1'].get('state') == 'running' and jobs['slow1'].findtext('config/speed') == '1'
    assert (jobs['gone'].get('type'), jobs['gone'].get('state')) == ('create', 'concluded')
    assert gone['job']['outcome'] == 'succeeded'

    plain = run_module('job_info', args)
    assert 'jobs_xml' not in plain
    wrong = run_module('job_info', dict(args, format='json'))
    assert wrong['failed'] and 'format' in wrong['msg'] and 'Traceback' not in wrong['raw']
