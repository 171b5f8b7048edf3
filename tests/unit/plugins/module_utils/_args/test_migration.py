# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_args/migration.py."""

from __future__ import annotations

import math
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args import (
    migration as _migration_args,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument

Record = dict[str, t.Any]


def options(**given: t.Any) -> Record:
    values = {key: spec.get('default') for key, spec in _migration_args.MIGRATION.items()}
    values.update(name='mig', **given)
    return values


def test_a_uri_migration() -> None:
    params = _migration_args.migration_params(options(dest_uri='tcp:10.0.0.2:4444',
                                                      bandwidth=1 << 30))
    assert params['type'] == 'migration' and params['dest_uri'] == 'tcp:10.0.0.2:4444'
    assert params['bandwidth'] == 1 << 30
    assert params['auto_converge'] is None and params['postcopy'] is None, 'off is unset'
    assert 'completion_action' not in params, 'an action without a timeout means nothing'


def test_a_destination_socket_is_made_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir('/tmp')
    params = _migration_args.migration_params(options(dest_socket='vm2.sock'))
    assert params['dest_socket'] == '/tmp/vm2.sock' and params['dest_uri'] is None


def test_a_completion_policy_is_kept() -> None:
    params = _migration_args.migration_params(options(
        dest_uri='unix:/run/m.sock', postcopy=True, completion_timeout=30.0,
        completion_action='postcopy'))
    assert (params['completion_timeout'], params['completion_action']) == (30.0, 'postcopy')
    assert params['postcopy'] is True


@pytest.mark.parametrize(('given', 'message'), [
    ({}, 'give dest_uri (where to migrate to) or dest_socket'),
    ({'dest_uri': 'file:/tmp/x'}, "dest_uri 'file:/tmp/x' must start with one of tcp:, unix:, exec:"),
    ({'dest_uri': 'exec:cat', 'dest_socket': '/d.sock'},
     'must start with one of tcp:, unix: when the destination listens on it'),
    ({'dest_uri': 'tcp:h:1', 'bandwidth': -1}, 'bandwidth must not be negative (got -1)'),
    ({'dest_uri': 'tcp:h:1', 'downtime_limit': -5}, 'downtime_limit must not be negative'),
    ({'dest_uri': 'tcp:h:1', 'xbzrle_cache_size': -1}, 'xbzrle_cache_size must not be negative'),
    ({'dest_uri': 'tcp:h:1', 'multifd_channels': 0}, 'multifd_channels must be at least 1 (got 0)'),
    ({'dest_uri': 'tcp:h:1', 'postcopy': True, 'postcopy_after_passes': 0},
     'postcopy_after_passes must be at least 1'),
    ({'dest_uri': 'tcp:h:1', 'postcopy_after_passes': 2}, 'postcopy_after_passes needs postcopy'),
    ({'dest_uri': 'tcp:h:1', 'completion_timeout': 5.0, 'completion_action': 'postcopy'},
     'completion_action postcopy needs postcopy: true'),
    ({'dest_uri': 'tcp:h:1', 'completion_timeout': 0.0}, 'completion_timeout must be a positive'),
    ({'dest_uri': 'tcp:h:1', 'completion_timeout': math.inf}, 'completion_timeout must be a positive'),
    ({'dest_uri': 'tcp:h:1', 'completion_timeout': math.nan}, 'completion_timeout must be a positive'),
    ({'dest_uri': 'tcp:h:1', 'tls_hostname': 'hv2'}, 'tls_hostname needs tls_creds'),
])
def test_bad_options(given: Record, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _migration_args.migration_params(options(**given))
    assert str(err.value).startswith("job 'mig': ")
    assert message in str(err.value)


@pytest.mark.parametrize('name', ['../etc', '', '1x', 'a/b'])
def test_the_name_is_checked_first(name: str) -> None:
    with pytest.raises(InvalidArgument, match='invalid job name'):
        _migration_args.migration_params(dict(options(), name=name))


def test_storage_copy_is_part_of_the_identity_and_shared_is_not() -> None:
    copied = _migration_args.migration_params(options(dest_socket='/d.sock', storage='copy',
                                                      disks=['vda']))
    assert (copied['storage'], copied['disks']) == ('copy', ['vda'])
    every = _migration_args.migration_params(options(dest_socket='/d.sock', storage='copy'))
    assert (every['storage'], every['disks']) == ('copy', None)
    shared = _migration_args.migration_params(options(dest_socket='/d.sock'))
    assert 'storage' not in shared and 'disks' not in shared, 'older jobs compare the same'
    libvirt = _migration_args.migration_params(options(domain='vm1', storage='copy',
                                                       dest_uri='qemu+tcp://h/system'))
    assert libvirt['storage'] == 'copy'


@pytest.mark.parametrize(('given', 'message'), [
    ({'dest_uri': 'tcp:h:1', 'storage': 'copy'}, 'storage: copy needs dest_socket'),
    ({'dest_socket': '/d.sock', 'disks': ['vda']}, 'it needs storage: copy'),
    ({'dest_socket': '/d.sock', 'storage': 'copy', 'disks': ['a/b']}, "disks: 'a/b' is not"),
])
def test_storage_refusals(given: Record, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _migration_args.migration_params(options(**given))
