# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_args/backup.py: the backup module's option checks."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args import (
    backup as _backup_args,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument

Record = dict[str, t.Any]


def options(**given: t.Any) -> Record:
    """Module options with the argspec's defaults, as AnsibleModule hands them over."""
    values = {key: spec.get('default') for key, spec in _backup_args.BACKUP.items()}
    values.update(name='b1', disks=[{'device': 'disk0', 'target': '/b/d0.qcow2', 'format': 'qcow2'}])
    values.update(given)
    return values


def refused(**given: t.Any) -> str:
    with pytest.raises(InvalidArgument) as caught:
        _backup_args.backup_params(options(**given))
    return str(caught.value)


def test_params_of_a_full_backup() -> None:
    assert _backup_args.backup_params(options(bitmap='nightly', speed=0)) == {
        'type': 'backup', 'mode': 'full', 'bitmap': 'nightly',
        'disks': [{'device': 'disk0', 'target': '/b/d0.qcow2', 'format': 'qcow2'}],
        'target_dir': None, 'compress': False, 'speed': 0, 'perf': None}


def test_params_make_paths_absolute_and_keep_unset_targets_unset(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: t.Any) -> None:
    monkeypatch.chdir(tmp_path)
    params = _backup_args.backup_params(options(
        target_dir='out', disks=[{'device': 'disk0', 'target': None, 'format': 'raw'},
                                 {'device': 'disk1', 'target': 'd1.qcow2', 'format': 'qcow2'}],
        perf={'max_workers': 4, 'max_chunk': None, 'use_copy_range': None}))
    assert params['target_dir'] == str(tmp_path / 'out')
    assert params['disks'] == [{'device': 'disk0', 'target': None, 'format': 'raw'},
                               {'device': 'disk1', 'target': str(tmp_path / 'd1.qcow2'),
                                'format': 'qcow2'}]
    assert params['perf'] == {'max_workers': 4}


def test_all_disks_need_a_target_dir() -> None:
    assert refused(disks=[]) == "job 'b1': give disks, or target_dir to back up every disk of " \
                                'the VM'
    assert _backup_args.backup_params(options(disks=[], target_dir='/b'))['disks'] == []


@pytest.mark.parametrize('given, message', [
    ({'mode': 'incremental'}, "job 'b1': an incremental backup needs a bitmap"),
    ({'mode': 'differential'}, "job 'b1': a differential backup needs a bitmap"),
    ({'bitmap': 'nightly.full'}, ("job 'b1': bitmap names ending in '.full' are kept for the "
                                  'companion bitmap of each chain (here nightly.full)')),
    ({'bitmap': 'night ly'}, ("job 'b1': invalid bitmap name 'night ly': use 1-128 characters, "
                              "a letter first, then letters, digits, '.', '_' or '-'")),
    ({'speed': -1}, "job 'b1': speed must not be negative (got -1)"),
    ({'perf': {'max_workers': 0}}, "job 'b1': perf.max_workers must be positive (got 0)"),
    ({'perf': {'max_chunk': -1}}, "job 'b1': perf.max_chunk must be positive (got -1)"),
    ({'disks': [{'device': 'disk0', 'target': None, 'format': 'qcow2'}]},
     "job 'b1': disk 'disk0' needs a target, or give target_dir"),
    ({'disks': [{'device': 'disk0', 'target': '/b/a', 'format': 'qcow2'},
                {'device': 'disk0', 'target': '/b/b', 'format': 'qcow2'}]},
     "job 'b1': disk 'disk0' is listed twice"),
    ({'disks': [{'device': 'disk0', 'target': '/b/a', 'format': 'qcow2'},
                {'device': 'disk1', 'target': '/b/a', 'format': 'qcow2'}]},
     "job 'b1': target /b/a is given for two disks"),
    ({'disks': [{'device': 'disk0', 'target': '/b/a', 'format': 'raw'}], 'mode': 'incremental',
      'bitmap': 'nightly'},
     ("job 'b1': disk 'disk0': an incremental backup needs a qcow2 target, which records its "
      'backing file')),
    ({'disks': [{'device': 'disk0', 'target': '/b/a', 'format': 'raw'}], 'compress': True},
     "job 'b1': disk 'disk0': compress needs a qcow2 target"),
    ({'name': '1st'}, ("invalid job name '1st': use 1-128 characters, a letter first, then "
                       "letters, digits, '.', '_' or '-'")),
])
def test_refusals(given: Record, message: str) -> None:
    assert refused(**given) == message


def test_resolve_disks_lists_every_vm_disk_under_target_dir() -> None:
    params = _backup_args.backup_params(options(disks=[], target_dir='/b/run'))
    assert _backup_args.resolve_disks('b1', params, ['disk0', 'disk1']) == [
        {'device': 'disk0', 'target': '/b/run/disk0.qcow2', 'format': 'qcow2'},
        {'device': 'disk1', 'target': '/b/run/disk1.qcow2', 'format': 'qcow2'}]


def test_resolve_disks_keeps_the_listed_disks() -> None:
    params = _backup_args.backup_params(options(
        target_dir='/b/run', disks=[{'device': 'disk1', 'target': None, 'format': 'raw'}]))
    assert _backup_args.resolve_disks('b1', params, ['disk0', 'disk1']) == [
        {'device': 'disk1', 'target': '/b/run/disk1.raw', 'format': 'raw'}]


def test_resolve_disks_refuses_a_vm_without_disks() -> None:
    params = _backup_args.backup_params(options(disks=[], target_dir='/b/run'))
    with pytest.raises(InvalidArgument, match="^job 'b1': the VM has no writable disks; list "
                                              'them in disks$'):
        _backup_args.resolve_disks('b1', params, [])


def test_a_default_target_may_not_be_another_disks_target() -> None:
    assert refused(target_dir='/b/run', disks=[
        {'device': 'disk0', 'target': '/b/run/disk1.qcow2', 'format': 'qcow2'},
        {'device': 'disk1', 'target': None, 'format': 'qcow2'}]) == \
        "job 'b1': target /b/run/disk1.qcow2 is given for two disks"


PULL_DISKS = [{'device': 'disk0', 'target': None, 'format': 'qcow2'}]


def test_params_of_a_pull_backup() -> None:
    params = _backup_args.backup_params(options(delivery='pull', disks=PULL_DISKS,
                                                nbd_socket='/run/n.sock'))
    assert (params['delivery'], params['nbd_socket'], params['disks']) == (
        'pull', '/run/n.sock', PULL_DISKS)
    assert 'delivery' not in _backup_args.backup_params(options()), \
        'a push backup compares equal to one recorded before pull existed'
    every = _backup_args.backup_params(options(delivery='pull', disks=[]))
    assert _backup_args.resolve_disks('b1', every, ['disk0']) == PULL_DISKS


@pytest.mark.parametrize('given, message', [
    ({}, "job 'b1': delivery: pull writes no image; remove disks[disk0].target"),
    ({'disks': PULL_DISKS, 'target_dir': '/b', 'compress': True, 'speed': 5},
     "job 'b1': delivery: pull writes no image; remove target_dir, speed, compress"),
    ({'disks': PULL_DISKS, 'wait': 'concluded'},
     ("job 'b1': a pull backup runs until its reader ends it (job state=absent with verdict); "
      'use wait: none')),
    ({'disks': PULL_DISKS, 'nbd_socket': '/' + 'x' * 110},
     f"job 'b1': nbd_socket /{'x' * 110} is longer than 107 bytes, the limit of a UNIX socket path"),
    ({'disks': PULL_DISKS, 'nbd_address': 'h:1'},
     "job 'b1': exports over TCP need TLS: give nbd_address and nbd_tls_dir together"),
    ({'disks': PULL_DISKS, 'nbd_address': 'h:1', 'nbd_tls_dir': '/t', 'nbd_socket': '/s'},
     "job 'b1': give nbd_socket (UNIX) or nbd_address (TCP), not both"),
    ({'disks': PULL_DISKS, 'nbd_address': 'h', 'nbd_tls_dir': '/t'},
     "job 'b1': nbd_address 'h' is not HOST:PORT (a port from 1 to 65535)"),
    ({'disks': PULL_DISKS, 'bitmap': 'nightly.pull'},
     ("job 'b1': bitmap names ending in '.pull' are kept for the bitmap a pull backup adds at "
      'its start (here nightly.pull)')),
])
def test_pull_refusals(given: Record, message: str) -> None:
    assert refused(**dict({'delivery': 'pull'}, **given)) == message


def test_nbd_options_are_for_pull() -> None:
    assert refused(nbd_socket='/run/n.sock') == "job 'b1': nbd_socket is for delivery: pull"
    assert refused(nbd_tls_dir='/t') == "job 'b1': nbd_tls_dir is for delivery: pull"


def test_params_of_a_pull_over_tls() -> None:
    params = _backup_args.backup_params(options(delivery='pull', disks=PULL_DISKS,
                                                nbd_address='[::1]:10809', nbd_tls_dir='/t'))
    assert (params['nbd_address'], params['nbd_tls_dir']) == ('[::1]:10809', '/t')


def test_under_libvirt_tcp_exports_use_the_daemons_certificates() -> None:
    pull = options(delivery='pull', disks=PULL_DISKS, nbd_address='127.0.0.1:10809')
    params = _backup_args.backup_params(pull, 'daemon')
    assert params['nbd_address'] == '127.0.0.1:10809' and 'nbd_tls_dir' not in params
    for given in ({'nbd_tls_dir': '/t'}, {'nbd_tls_dir': '/t', 'nbd_address': None}):
        with pytest.raises(InvalidArgument) as caught:
            _backup_args.backup_params(dict(pull, **given), 'daemon')
        assert str(caught.value) == (
            "job 'b1': a libvirt domain exports with libvirtd's own TLS certificates "
            '(backup_tls_x509_cert_dir in qemu.conf); remove nbd_tls_dir')
