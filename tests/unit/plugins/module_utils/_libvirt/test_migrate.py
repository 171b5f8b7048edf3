# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_libvirt/migrate.py: flags and typed parameters."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.migration import (
    MIGRATION,
    migration_params,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    binding as _libvirt,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._libvirt import (
    migrate as _libvirt_migrate,
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


class StatsDomain:
    """Answers ``jobStats``: ``now`` without flags, ``kept`` with the completed flags."""

    def __init__(self, now: dict[str, t.Any], kept: dict[str, t.Any] | None = None,
                 active: bool = True) -> None:
        self.now = now
        self.kept = kept or {'type': 0}
        self.active = active

    def call(self, command: str, *args: int) -> t.Any:
        if command == 'isActive':
            return int(self.active)
        assert command == 'jobStats'
        return dict(self.kept if args[0] else self.now)


ENTRY = {'name': 'm1', 'type': 'migration', 'dest_uri': 'qemu+tcp://hv2/system',
         'last': {'progress': {'current': 5 * MIB, 'total': 64 * MIB, 'percent': 7.8}}}
OUT = 5  # VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT


def test_a_migration_moving_memory_is_active() -> None:
    stats = {'type': 2, 'operation': OUT, 'memory_total': 64 * MIB}
    found = _libvirt_migrate.record(StatsDomain(stats), ENTRY, [])
    assert found is not None and (found['status'], found['raw_status']) == ('running', 'active')


def test_a_migration_before_qemu_moves_memory_is_in_setup() -> None:
    found = _libvirt_migrate.record(StatsDomain({'type': 2, 'operation': OUT}), ENTRY, [])
    assert found is not None and (found['status'], found['raw_status']) == ('running', 'setup')


def test_completed_statistics_give_the_outcome_and_the_figures() -> None:
    kept = {'type': 3, 'operation': OUT, 'data_total': 64 * MIB, 'data_processed': 64 * MIB}
    found = _libvirt_migrate.record(StatsDomain({'type': 0}, kept), ENTRY, [])
    assert found is not None and found['outcome'] == 'succeeded'
    assert found['raw_status'] == 'completed' and found['progress']['percent'] == 100.0


def test_an_abort_shows_for_a_moment_without_statistics() -> None:
    found = _libvirt_migrate.record(StatsDomain({'type': 5, 'operation': OUT, 'data_total': 0}),
                                    ENTRY, [])
    assert found is not None and (found['outcome'], found['raw_status']) == ('canceled', 'cancelled')
    assert found['progress']['current'] == 5 * MIB, 'the last progress seen is kept'


@pytest.mark.parametrize('asked', [{'cancel_requested': True}, {'applied': ['cancel']}])
def test_a_cancel_the_collection_asked_for_is_the_witness(asked: dict[str, t.Any]) -> None:
    found = _libvirt_migrate.record(StatsDomain({'type': 0}), dict(ENTRY, **asked), [])
    assert found is not None and found['outcome'] == 'canceled' and found['error'] is None


def test_a_cancel_asked_for_does_not_explain_a_domain_that_left() -> None:
    """A persistent domain whose migration ended before the cancel, seen after a libvirtd
    restart (which drops the statistics): inactive here, so not canceled."""
    gone = StatsDomain({'type': 0}, active=False)
    assert _libvirt_migrate.record(gone, dict(ENTRY, cancel_requested=True), []) is None


def test_an_end_nobody_saw_or_asked_for_is_unknown() -> None:
    assert _libvirt_migrate.record(StatsDomain({'type': 0}), ENTRY, []) is None
    assert _libvirt_migrate.record(StatsDomain({'type': 0}), dict(ENTRY, applied=['pause']), []) is None


@pytest.mark.parametrize('source', ['now', 'kept'])
def test_a_cancel_asked_for_that_libvirt_ends_as_failed_without_a_reason(source: str) -> None:
    """Cancelling a migration whose stream is stuck can end in libvirt's failed state (the
    stream broke as QEMU dropped it); asked for by the collection, it was a cancel. A
    failure with libvirt's own reason stays a failure."""
    failed = {'type': 4, 'operation': OUT}
    domain = StatsDomain(failed if source == 'now' else {'type': 0},
                         None if source == 'now' else failed)
    found = _libvirt_migrate.record(domain, dict(ENTRY, applied=['cancel']), [])
    assert found is not None and (found['outcome'], found['error']) == ('canceled', None)
    unasked = _libvirt_migrate.record(domain, ENTRY, [])
    assert unasked is not None and unasked['outcome'] == 'failed'
    reason = dict(failed, errmsg='unable to connect to server: Connection refused')
    explained = _libvirt_migrate.record(StatsDomain(reason), dict(ENTRY, applied=['cancel']), [])
    assert explained is not None and explained['outcome'] == 'failed'
    assert explained['error'] == 'unable to connect to server: Connection refused'
