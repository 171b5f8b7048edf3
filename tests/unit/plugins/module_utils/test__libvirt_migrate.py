# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_libvirt_migrate.py: flags and typed parameters."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils import (
    _libvirt,
    _libvirt_migrate,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._migration_args import (
    MIGRATION,
    migration_params,
)

MIB = 1 << 20


def options(**values: t.Any) -> dict[str, t.Any]:
    result = {key: spec.get('default') for key, spec in MIGRATION.items()}
    result.update({'name': 'm1', 'domain': 'vm1'}, **values)
    return result


def test_plain_live_peer_to_peer() -> None:
    params = migration_params(options(dest_uri='qemu+tcp://hv2/system'))
    assert params['dest_uri'] == 'qemu+tcp://hv2/system'
    assert _libvirt_migrate.flags(params, False) == _libvirt.MIGRATE_LIVE | \
        _libvirt.MIGRATE_PEER2PEER
    assert _libvirt_migrate.flags(params, True) & _libvirt.MIGRATE_PERSIST_DEST
    assert _libvirt_migrate.flags(params, True) & _libvirt.MIGRATE_UNDEFINE_SOURCE
    assert _libvirt_migrate.typed_params(params) == {}


def test_options_map_to_flags_and_typed_parameters() -> None:
    params = migration_params(options(
        dest_uri='qemu+tcp://hv2/system', bandwidth=100 * MIB + 1, auto_converge=True,
        postcopy=True, multifd_channels=4, xbzrle_cache_size=64 * MIB, tls_creds='tls0',
        tls_hostname='hv2.example', unsafe=True))
    value = _libvirt_migrate.flags(params, False)
    for flag in (_libvirt.MIGRATE_AUTO_CONVERGE, _libvirt.MIGRATE_POSTCOPY,
                 _libvirt.MIGRATE_PARALLEL, _libvirt.MIGRATE_COMPRESSED, _libvirt.MIGRATE_TLS,
                 _libvirt.MIGRATE_UNSAFE):
        assert value & flag, flag
    assert _libvirt_migrate.typed_params(params) == {
        'bandwidth': 101, 'parallel.connections': 4, 'compression': 'xbzrle',
        'compression.xbzrle.cache': 64 * MIB, 'tls.destination': 'hv2.example'}


@pytest.mark.parametrize('values', [
    {'dest_uri': 'tcp:10.0.0.2:4444'},
    {'dest_socket': '/run/vm1-new/qmp.sock'},
    {'dest_uri': 'qemu+tcp://hv2/system', 'dest_socket': '/run/x.sock'},
])
def test_a_domain_needs_a_libvirt_destination(values: dict[str, t.Any]) -> None:
    with pytest.raises(InvalidArgument, match='give dest_uri as its libvirt URI'):
        migration_params(options(**values))


def test_unsafe_is_for_libvirt_only() -> None:
    with pytest.raises(InvalidArgument, match='unsafe is for libvirt domains'):
        migration_params(options(domain=None, dest_uri='tcp:10.0.0.2:4444', unsafe=True))
    assert migration_params(options(domain=None, dest_uri='tcp:10.0.0.2:4444'))['unsafe'] is None
