# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_args/common.py."""

from __future__ import annotations

import importlib
import os
import pathlib
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args import common as _args
from ansible_collections.vmjobs.qemu.plugins.module_utils._client import (
    control as _control,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    vocabulary as _vocabulary,
)
from ansible_collections.vmjobs.qemu.tests.unit.plugins.module_utils.fake_backend import (
    MINIMAL,
)

MIB = 1 << 20


def options(name: str = 'job1', kind: str = 'backup', **values: t.Any) -> dict[str, t.Any]:
    """What AnsibleModule would hand over: every option, defaults filled in."""
    result = {key: spec.get('default') for key, spec in _args.BLOCK_JOB.items()}
    result.update(values, name=name, type=kind)
    return result


# -- argument specs ------------------------------------------------------------------------------

def test_job_types_have_rules() -> None:
    assert set(_args.JOB_TYPES) == set(_args.REQUIRED) == set(_args.ACCEPTED) == set(MINIMAL)
    assert _args.BLOCK_JOB['type']['choices'] == _args.JOB_TYPES


@pytest.mark.parametrize('kind', _args.JOB_TYPES)
def test_required_options_are_accepted_and_known(kind: str) -> None:
    assert set(_args.REQUIRED[kind]) <= _args.ACCEPTED[kind]
    assert _args.ACCEPTED[kind] <= set(_args.OPTIONAL_KEYS + _args.TARGET_KEYS)
    assert set(_args.OPTIONAL_KEYS + _args.TARGET_KEYS) <= set(_args.BLOCK_JOB)


def test_state_and_wait_choices_match_the_logic() -> None:
    assert tuple(_args.JOB['state']['choices']) == _control.STATES
    assert tuple(_args.JOB_WAIT['state']['choices']) == _vocabulary.WAIT_TARGETS
    assert set(_args.WAIT['wait']['choices']) == {'none'} | (set(_vocabulary.WAIT_TARGETS) - {'absent'})


@pytest.mark.parametrize('fragment, spec', [
    ('connection', _args.CONNECTION),
    ('wait', _args.WAIT),
])
def test_doc_fragments_match_the_specs(fragment: str, spec: dict[str, dict[str, t.Any]]) -> None:
    yaml = pytest.importorskip('yaml')
    module = importlib.import_module(
        'ansible_collections.vmjobs.qemu.plugins.doc_fragments.' + fragment)
    documented = yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION)['options']
    assert set(documented) == set(spec)
    for name, option in spec.items():
        doc = documented[name]
        assert doc['type'] == option['type'], name
        assert doc.get('default') == option.get('default'), name
        assert doc.get('choices') == option.get('choices'), name
        assert bool(doc.get('required')) == bool(option.get('required')), name


# -- sizes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    (1073741824, 1073741824),
    (512, 512),
    ('512', 512),
    ('1G', 1 << 30),
    ('1g', 1 << 30),
    ('64M', 64 * MIB),
    ('64MiB', 64 * MIB),
    ('64MB', 64 * MIB),
    ('64mib', 64 * MIB),
    ('1.5K', 1536),
    ('0.5K', 512),
    ('2T', 2 << 40),
    ('10 G', 10 << 30),
    (' 64M ', 64 * MIB),
    ('4096B', 4096),
    ('1e3', 1000),
    (2.0, 2),
])
def test_parse_size(value: t.Any, expected: int) -> None:
    assert _args.parse_size(value, 'c1') == expected


@pytest.mark.parametrize('value', [
    0, '0', '-1', -5, '-1G', 'abc', '', ' ', 'G', 'KB', 'B', 'MiB', '1X', '0.4', 'nan', True,
    None, '1G1',
])
def test_parse_size_rejects(value: t.Any) -> None:
    with pytest.raises(InvalidArgument) as err:
        _args.parse_size(value, 'c1')
    assert str(err.value).startswith(f"job 'c1': size {value!r} is not a positive size")
    assert err.value.job == 'c1'


@pytest.mark.parametrize('value', ['inf', '1e400', 'infinityG'])
def test_parse_size_rejects_infinite_sizes(value: str) -> None:
    with pytest.raises(InvalidArgument):
        _args.parse_size(value, 'c1')


# -- block_job options --------------------------------------------------------------------------------

@pytest.mark.parametrize('kind', _args.JOB_TYPES)
def test_minimal_options_for_every_type(kind: str) -> None:
    params = _args.block_job_params(options(kind=kind, **MINIMAL[kind]))
    assert set(params) == set(_args.OPTIONAL_KEYS) | {'type', 'reuse_target', 'auto_dismiss',
                                                      'auto_finalize'}
    assert params['type'] == kind
    assert (params['reuse_target'], params['auto_dismiss'], params['auto_finalize']) == (
        False, False, True)
    for key in _args.OPTIONAL_KEYS:
        if key not in MINIMAL[kind]:
            assert params[key] is None, key


def test_create_size_is_parsed() -> None:
    params = _args.block_job_params(options(kind='create', **MINIMAL['create']))
    assert params['size'] == 64 << 20


def test_target_is_made_absolute(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    params = _args.block_job_params(options(device='disk0', target='sub/../b.qcow2'))
    assert params['target'] == os.path.join(os.getcwd(), 'b.qcow2')


def test_all_mirror_options() -> None:
    params = _args.block_job_params(options(
        kind='mirror', device='disk0', target='/srv/m.qcow2', target_format='raw', sync='top',
        speed=0, on_error='stop', granularity=65536, buf_size=MIB, reuse_target=True,
        auto_dismiss=True, auto_finalize=False))
    assert {k: params[k] for k in ('target_format', 'sync', 'speed', 'on_error', 'granularity',
                                   'buf_size', 'reuse_target', 'auto_dismiss',
                                   'auto_finalize')} == {
        'target_format': 'raw', 'sync': 'top', 'speed': 0, 'on_error': 'stop',
        'granularity': 65536, 'buf_size': MIB, 'reuse_target': True, 'auto_dismiss': True,
        'auto_finalize': False}


@pytest.mark.parametrize('sync', ['bitmap', 'incremental'])
def test_backup_with_a_bitmap(sync: str) -> None:
    params = _args.block_job_params(options(device='disk0', target='/srv/b.qcow2', sync=sync,
                                            bitmap='bm0', bitmap_mode='on-success'))
    assert (params['sync'], params['bitmap'], params['bitmap_mode']) == (sync, 'bm0',
                                                                         'on-success')


@pytest.mark.parametrize('kind, given, missing', [
    ('stream', {}, 'device'),
    ('commit', {'base': 'b'}, 'device'),
    ('mirror', {'device': 'disk0'}, 'target'),
    ('mirror', {}, 'device, target'),
    ('backup', {'target': '/srv/b'}, 'device'),
    ('create', {'target': '/srv/c'}, 'size'),
    ('create', {'size': '1G'}, 'target'),
])
def test_missing_options(kind: str, given: dict[str, t.Any], missing: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _args.block_job_params(options(kind=kind, **given))
    assert str(err.value) == f"job 'job1': type {kind} needs {missing}"
    assert err.value.job == 'job1'


@pytest.mark.parametrize('kind, extra, named', [
    ('stream', {'target': '/x'}, 'target'),
    ('stream', {'top': 'n'}, 'top'),
    ('commit', {'sync': 'full'}, 'sync'),
    ('mirror', {'bitmap': 'bm0'}, 'bitmap'),
    ('mirror', {'base': 'b', 'size': 1}, 'base, size'),
    ('backup', {'granularity': 512}, 'granularity'),
    ('backup', {'buf_size': 512}, 'buf_size'),
    ('create', {'device': 'disk0'}, 'device'),
    ('create', {'speed': 0}, 'speed'),
    ('create', {'on_error': 'stop'}, 'on_error'),
])
def test_options_a_type_does_not_take(kind: str, extra: dict[str, t.Any], named: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _args.block_job_params(options(kind=kind, **dict(MINIMAL[kind], **extra)))
    assert str(err.value) == f"job 'job1': type {kind} does not take {named}"


@pytest.mark.parametrize('key', ['speed', 'granularity', 'buf_size'])
def test_negative_numbers(key: str) -> None:
    with pytest.raises(InvalidArgument, match=f'{key} must not be negative \\(got -1\\)'):
        _args.block_job_params(options(kind='mirror', **dict(MINIMAL['mirror'], **{key: -1})))


@pytest.mark.parametrize('sync', ['bitmap', 'incremental'])
def test_bitmap_sync_needs_a_bitmap(sync: str) -> None:
    with pytest.raises(InvalidArgument, match=f'sync {sync} needs a bitmap'):
        _args.block_job_params(options(sync=sync, **MINIMAL['backup']))


def test_bitmap_mode_needs_a_bitmap() -> None:
    with pytest.raises(InvalidArgument, match='bitmap_mode needs a bitmap'):
        _args.block_job_params(options(bitmap_mode='always', **MINIMAL['backup']))


def test_create_jobs_are_never_auto_dismissed() -> None:
    with pytest.raises(InvalidArgument, match='auto_dismiss must be false'):
        _args.block_job_params(options(kind='create', auto_dismiss=True, **MINIMAL['create']))


@pytest.mark.parametrize('name', ['../x', 'a/b', '.x', '', '1job'])
def test_the_name_is_checked_first(name: str) -> None:
    with pytest.raises(InvalidArgument, match='invalid job name'):
        _args.block_job_params(options(name=name, kind='mirror'))


def test_block_job_params_does_not_change_its_input() -> None:
    given = options(kind='create', **MINIMAL['create'])
    before = dict(given)
    _args.block_job_params(given)
    assert given == before


# -- names and timeouts ----------------------------------------------------------------------------

def test_check_names() -> None:
    assert _args.check_names(['a', 'b-1']) == ['a', 'b-1']
    assert _args.check_names([]) == []
    with pytest.raises(InvalidArgument, match="'a/b'"):
        _args.check_names(['ok', 'a/b'])


@pytest.mark.parametrize('value', [0, 0.0, 0.5, 300.0, 1e9])
def test_check_timeout(value: float) -> None:
    assert _args.check_timeout(value, 'wait_timeout') == value


@pytest.mark.parametrize('value', [-1, -0.001, float('-inf')])
def test_check_timeout_rejects_negative(value: float) -> None:
    with pytest.raises(InvalidArgument) as err:
        _args.check_timeout(value, 'wait_timeout')
    assert str(err.value) == f'wait_timeout must not be negative (got {value})'


def test_check_timeout_rejects_nan() -> None:
    with pytest.raises(InvalidArgument):
        _args.check_timeout(float('nan'), 'timeout')


def test_copy_mode_is_a_mirrors_option() -> None:
    params = _args.block_job_params(options(kind='mirror', copy_mode='write-blocking',
                                            **MINIMAL['mirror']))
    assert params['copy_mode'] == 'write-blocking'
    with pytest.raises(InvalidArgument, match="job 'job1': type backup does not take copy_mode"):
        _args.block_job_params(options(kind='backup', copy_mode='write-blocking',
                                       **MINIMAL['backup']))
