"""The verify module against real images: a good chain passes; a truncated image, a missing
backing file and a corrupted cluster each fail with one line naming the image.

The chains are made with qemu-img (relative backing links, as the backup module writes
them); the last test verifies a VM's backup by its name.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness.chains import Disks
from harness.daemons import no_daemon, refused
from harness.images import corrupt_cluster, write_pattern


def make_chain(folder: Path) -> list[Path]:
    """full <- inc1 <- inc2 in one directory, with relative backing names; top last."""
    folder.mkdir()
    images = []
    for index, name in enumerate(['full', 'inc1', 'inc2']):
        argv = ['qemu-img', 'create', '-q', '-f', 'qcow2']
        if images:
            argv += ['-b', images[-1].name, '-F', 'qcow2']
        path = folder / f'{name}.qcow2'
        subprocess.run([*argv, str(path), '8M'], check=True, cwd=folder)
        write_pattern(path, 0x10 + index, index * 2**20, '2M')
        images.append(path)
    return images


def verify(run_module, ledger_dir: Path, name: str, **options: Any) -> dict[str, Any]:
    return run_module('verify', dict({'ledger_dir': str(ledger_dir), 'name': name,
                                      'wait_timeout': 60}, **options))


def test_a_good_chain_passes_once(run_module, ledger_dir, workdir):
    full, inc1, inc2 = make_chain(workdir / 'chain')
    result = verify(run_module, ledger_dir, 'v1', image=str(inc2))
    assert result['changed'] and not result.get('failed'), result
    assert result['images'] == [{'path': str(p), 'ok': True, 'problem': None}
                                for p in (inc2, inc1, full)]
    job = result['job']
    assert (job['type'], job['outcome'], job['progress']['total']) == ('verify', 'succeeded', 8 << 20)
    no_daemon(ledger_dir)
    again = verify(run_module, ledger_dir, 'v1', image=str(inc2))
    assert not again['changed'] and again['images'] == result['images'], again
    listed = run_module('job_info', {'socket': result['socket'], 'ledger_dir': str(ledger_dir),
                                     'include_dismissed': True})
    assert [(j['name'], j['type'], j['outcome']) for j in listed['jobs']] == [
        ('v1', 'verify', 'succeeded')], listed


def test_a_truncated_image_is_named(run_module, ledger_dir, workdir):
    _full, inc1, inc2 = make_chain(workdir / 'chain')
    os.truncate(inc1, 256 * 1024)
    result = verify(run_module, ledger_dir, 'v2', image=str(inc2))
    refused(result, "job 'v2'", f'image {inc1}:', 'truncated')
    assert [i['ok'] for i in result['images']] == [True, False, True], result['images']
    no_daemon(ledger_dir)


def test_a_missing_backing_file_is_named(run_module, ledger_dir, workdir):
    full, inc1, inc2 = make_chain(workdir / 'chain')
    full.unlink()
    result = verify(run_module, ledger_dir, 'v3', image=str(inc2))
    refused(result, "job 'v3'", f'image {inc1}:', f'backing file full.qcow2 ({full}) is missing')
    assert [i['ok'] for i in result['images']] == [True, False], result['images']
    no_daemon(ledger_dir)


def test_a_corrupted_cluster_is_named(run_module, ledger_dir, workdir):
    full, _inc1, inc2 = make_chain(workdir / 'chain')
    corrupt_cluster(full, 0)
    result = verify(run_module, ledger_dir, 'v4', image=str(inc2))
    refused(result, "job 'v4'", f'image {full}:', 'corruption', 'not properly aligned')
    assert [i['ok'] for i in result['images']] == [True, True, False], result['images']
    no_daemon(ledger_dir)


def test_an_absolute_backing_link_is_named(run_module, ledger_dir, workdir):
    _full, inc1, inc2 = make_chain(workdir / 'chain')
    subprocess.run(['qemu-img', 'rebase', '-u', '-b', str(inc1), '-F', 'qcow2', str(inc2)],
                   check=True)
    result = verify(run_module, ledger_dir, 'v5', image=str(inc2))
    refused(result, "job 'v5'", f'image {inc2}:', 'absolute path')


@pytest.fixture
def disks(vm, make_image, workdir):
    made = Disks(vm, make_image, workdir)
    yield made
    made.close()


def test_a_backup_by_name_and_a_restore_verified(disks, run_module, ledger_dir, workdir):
    for name, mode in (('f1', 'full'), ('i1', 'incremental')):
        disks.write('disk0', 0x5a, '1M', '1M')
        (workdir / name).mkdir()
        done = run_module('backup', {
            'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir), 'name': name,
            'mode': mode, 'bitmap': 'nightly', 'target_dir': str(workdir / name),
            'wait': 'concluded', 'wait_timeout': 30})
        assert done['job']['outcome'] == 'succeeded', done
    result = run_module('verify', {'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir),
                                   'name': 'v-i1', 'backup': 'i1', 'device': 'disk1'})
    assert not result.get('failed') and [i['path'] for i in result['images']] == [
        str(workdir / 'i1' / 'disk1.qcow2'), str(workdir / 'f1' / 'disk1.qcow2')], result
    restored = run_module('restore', {
        'socket': str(disks.daemon.sock), 'ledger_dir': str(ledger_dir), 'name': 'r-i1',
        'backup': 'i1', 'device': 'disk0', 'target': str(workdir / 'r.qcow2'), 'verify': True})
    assert restored['verify'] == [{'path': str(workdir / 'r.qcow2'), 'ok': True,
                                   'problem': None}], restored
