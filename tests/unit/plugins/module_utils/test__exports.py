# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_exports.py: NBD URIs and the pull backups' paths."""

from __future__ import annotations

import os
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import _exports
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument


def test_uri_and_paths() -> None:
    assert _exports.nbd_uri('/tmp/d/nbd.sock', 'p1.disk0') == \
        'nbd+unix:///p1.disk0?socket=/tmp/d/nbd.sock'
    directory = _exports.pull_dir('qmp:/run/vm1.sock', '/tmp')
    assert directory == _exports.pull_dir('qmp:/run/vm1.sock', '/tmp')
    assert directory != _exports.pull_dir('qmp:/run/vm2.sock', '/tmp')
    assert directory.startswith('/tmp/vmjobs-pull-')
    assert len(directory) == len('/tmp/vmjobs-pull-') + 12
    assert _exports.scratch_path('/tmp/d', 'p1.disk0') == '/tmp/d/p1.disk0.fleece.qcow2'


def test_private_dir(tmp_path: t.Any) -> None:
    made = str(tmp_path / 'p')
    _exports.private_dir('p1', made)
    assert os.stat(made).st_mode & 0o777 == 0o700
    _exports.private_dir('p1', made)  # again: it is ours
    os.chmod(made, 0o755)
    with pytest.raises(InvalidArgument, match=r"job 'p1': .* is not a private directory"):
        _exports.private_dir('p1', made)
    os.symlink(made, str(tmp_path / 'link'))
    with pytest.raises(InvalidArgument):
        _exports.private_dir('p1', str(tmp_path / 'link'))


@pytest.mark.parametrize('address, parsed', [
    ('127.0.0.1:10809', ('127.0.0.1', 10809)), ('[::1]:1', ('::1', 1)),
    ('backup.example:65535', ('backup.example', 65535))])
def test_parse_address(address: str, parsed: tuple[str, int]) -> None:
    assert _exports.parse_address('p1', address) == parsed


@pytest.mark.parametrize('address', ['10809', ':10809', 'host:', 'host:0', 'host:65536',
                                     'host:port'])
def test_parse_address_refusals(address: str) -> None:
    with pytest.raises(InvalidArgument, match=r"job 'p1': nbd_address .* is not HOST:PORT"):
        _exports.parse_address('p1', address)


def test_servers_and_their_uris() -> None:
    unix = _exports.server_of({}, '/tmp/d')
    assert unix == {'socket': '/tmp/d/nbd.sock', 'dir': '/tmp/d'}
    assert _exports.export_uri(unix, 'p1.vda') == 'nbd+unix:///p1.vda?socket=/tmp/d/nbd.sock'
    assert _exports.server_of({'nbd_socket': '/run/n.sock'}, '/tmp/d')['socket'] == '/run/n.sock'
    tcp = _exports.server_of({'nbd_address': '[::1]:10809', 'nbd_tls_dir': '/etc/pki/q'},
                             '/tmp/d')
    assert tcp == {'host': '::1', 'port': 10809, 'tls_dir': '/etc/pki/q', 'dir': '/tmp/d'}
    assert _exports.export_uri(tcp, 'p1.vda') == 'nbds://[::1]:10809/p1.vda'
