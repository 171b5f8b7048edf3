# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared argument specs (kept in step with plugins/doc_fragments/) and their checks.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import math
import os
import typing as t

from .._errors import InvalidArgument
from .._model.vocabulary import WAIT_TARGETS, validate_name
from .._targets import parse_mode

CONNECTION: dict[str, dict[str, t.Any]] = {
    'socket': {'type': 'path'},
    'domain': {'type': 'str'},
    'uri': {'type': 'str'},
    'connect_timeout': {'type': 'float', 'default': 5.0},
    'ledger_dir': {'type': 'path'},
    'ledger_retention': {'type': 'float', 'default': 90.0},
}

#: Which options choose the VM: a QMP socket, or a libvirt domain (and its libvirt URI).
CONNECTION_RULES: dict[str, list[list[str]]] = {
    'required_one_of': [['socket', 'domain']],
    'mutually_exclusive': [['socket', 'domain'], ['socket', 'uri']],
}
#: The libvirt URI when ``uri`` is not given.
DEFAULT_URI = 'qemu:///system'

WAIT: dict[str, dict[str, t.Any]] = {
    'wait': {'type': 'str', 'default': 'none', 'choices': ['none', 'ready', 'pending',
                                                           'concluded']},
    'wait_timeout': {'type': 'float', 'default': 300.0},
}

JOB_TYPES = ['stream', 'commit', 'mirror', 'backup', 'create', 'amend']
#: A mirror's copy modes: QEMU copies guest writes in the background, or also synchronously.
COPY_MODES = ['background', 'write-blocking']

BLOCK_JOB: dict[str, dict[str, t.Any]] = {
    'name': {'type': 'str', 'required': True},
    'type': {'type': 'str', 'required': True, 'choices': JOB_TYPES},
    'device': {'type': 'str'},
    'base': {'type': 'str'},
    'top': {'type': 'str'},
    'target': {'type': 'path'},
    'target_format': {'type': 'str', 'choices': ['qcow2', 'raw']},
    'reuse_target': {'type': 'bool', 'default': False},
    # No default: parameters recorded before this option existed compare equal.
    'mode': {'type': 'raw'},
    'sync': {'type': 'str', 'choices': ['full', 'top', 'none', 'bitmap', 'incremental']},
    'bitmap': {'type': 'str'},
    'bitmap_mode': {'type': 'str', 'choices': ['on-success', 'never', 'always']},
    'speed': {'type': 'int'},
    'on_error': {'type': 'str', 'choices': ['report', 'ignore', 'enospc', 'stop']},
    'granularity': {'type': 'int'},
    'buf_size': {'type': 'int'},
    'copy_mode': {'type': 'str', 'choices': COPY_MODES},
    'size': {'type': 'raw'},
    'amend': {'type': 'dict'},
    'auto_dismiss': {'type': 'bool', 'default': False},
    'auto_finalize': {'type': 'bool', 'default': True},
}

JOB: dict[str, dict[str, t.Any]] = {
    'name': {'type': 'str', 'required': True},
    'state': {'type': 'str', 'choices': ['completed', 'finalized', 'paused', 'running',
                                         'canceled', 'absent']},
    'speed': {'type': 'int'},
    'copy_mode': {'type': 'str', 'choices': COPY_MODES},
    'cancel': {'type': 'bool', 'default': False},
    'forget': {'type': 'bool', 'default': False},
    'verdict': {'type': 'str', 'choices': ['succeeded', 'failed']},
    'wait': {'type': 'bool', 'default': True},
    'wait_timeout': {'type': 'float', 'default': 300.0},
}

JOB_INFO: dict[str, dict[str, t.Any]] = {
    'name': {'type': 'list', 'elements': 'str', 'default': []},
    'type': {'type': 'list', 'elements': 'str', 'default': []},
    'status': {'type': 'list', 'elements': 'str', 'default': []},
    'include_dismissed': {'type': 'bool', 'default': False},
    'format': {'type': 'str', 'default': 'records', 'choices': ['records', 'xml']},
}

JOB_WAIT: dict[str, dict[str, t.Any]] = {
    'name': {'type': 'list', 'elements': 'str', 'required': True},
    'state': {'type': 'str', 'default': 'concluded', 'choices': list(WAIT_TARGETS)},
    'timeout': {'type': 'float', 'default': 300.0},
    'fail_on_error': {'type': 'bool', 'default': True},
}

#: Options each job type needs, and those it does not accept.
REQUIRED = {'stream': ('device',), 'commit': ('device',), 'mirror': ('device', 'target'),
            'backup': ('device', 'target'), 'create': ('target', 'size'),
            'amend': ('device', 'amend')}
ACCEPTED = {
    'stream': {'device', 'base', 'speed', 'on_error'},
    'commit': {'device', 'base', 'top', 'speed', 'on_error'},
    'mirror': {'device', 'target', 'target_format', 'sync', 'speed', 'on_error',
               'granularity', 'buf_size', 'copy_mode', 'mode'},
    'backup': {'device', 'target', 'target_format', 'sync', 'bitmap', 'bitmap_mode', 'speed',
               'on_error', 'mode'},
    'create': {'target', 'target_format', 'size', 'mode'},
    'amend': {'device', 'amend'},
}
OPTIONAL_KEYS = ('device', 'base', 'top', 'target', 'target_format', 'sync', 'bitmap',
                 'bitmap_mode', 'speed', 'on_error', 'granularity', 'buf_size', 'copy_mode',
                 'size', 'amend')
#: Parameters that say how to make a job's files, not what the job is: a re-run with
#: another mode finds the same job (see split_start_only).
START_ONLY = ('target_mode',)
#: Options checked against ACCEPTED that are not copied into the parameters by name.
TARGET_KEYS = ('mode',)
SIZE_UNITS = {'': 1, 'B': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}


def parse_size(value: t.Any, name: str) -> int:
    """Bytes from an int or a string like ``64M``/``1G`` (binary units).

    :raise InvalidArgument: not a positive size.
    """
    text = str(value).strip().upper().removesuffix('IB').removesuffix('B') or '0'
    unit = text[-1] if text[-1] in SIZE_UNITS else ''
    number = text[:-1] if unit else text
    try:
        size = int(float(number) * SIZE_UNITS[unit])
    except (ValueError, OverflowError):
        size = 0
    if size <= 0:
        raise InvalidArgument(f"job '{name}': size {value!r} is not a positive size such as 1073741824 or "
                              "'1G'", name)
    return size


def block_job_params(options: dict[str, t.Any]) -> dict[str, t.Any]:
    """Check ``block_job`` options and return the job's parameters.

    :raise InvalidArgument: a missing, misplaced or impossible option.
    """
    name = validate_name(options['name'])
    kind = options['type']
    given = {key for key in OPTIONAL_KEYS + TARGET_KEYS if options.get(key) is not None}
    missing = [key for key in REQUIRED[kind] if key not in given]
    if missing:
        raise InvalidArgument(f"job '{name}': type {kind} needs {', '.join(missing)}", name)
    extra = sorted(given - ACCEPTED[kind])
    if extra:
        raise InvalidArgument(f"job '{name}': type {kind} does not take {', '.join(extra)}",
                              name)
    for key in ('speed', 'granularity', 'buf_size'):
        if options.get(key) is not None and options[key] < 0:
            raise InvalidArgument(f"job '{name}': {key} must not be negative "
                                  f"(got {options[key]})", name)
    sync = options.get('sync')
    if sync in ('bitmap', 'incremental') and not options.get('bitmap'):
        raise InvalidArgument(f"job '{name}': sync {sync} needs a bitmap", name)
    if options.get('bitmap_mode') and not options.get('bitmap'):
        raise InvalidArgument(f"job '{name}': bitmap_mode needs a bitmap", name)
    if kind in ('create', 'amend') and options['auto_dismiss']:
        raise InvalidArgument(f"job '{name}': {kind} jobs always wait to be dismissed; "
                              "auto_dismiss must be false", name)
    target_mode = parse_mode(options.get('mode'), name)
    params = {key: options.get(key) for key in OPTIONAL_KEYS}
    params.update(type=kind, reuse_target=options['reuse_target'],
                  auto_dismiss=options['auto_dismiss'], auto_finalize=options['auto_finalize'])
    if target_mode is not None:
        params['target_mode'] = target_mode
    if params['target']:
        params['target'] = os.path.abspath(params['target'])
    if kind == 'create':
        params['size'] = parse_size(options['size'], name)
    return params


def split_start_only(params: dict[str, t.Any]) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """``params`` without the START_ONLY keys, and those keys: (identity, start-only).

    The start-only ones reach the start through the job client's ``prepare``, so
    they are neither compared on a re-run nor recorded in the ledger.
    """
    kept = {key: value for key, value in params.items() if key not in START_ONLY}
    return kept, {key: params[key] for key in START_ONLY if key in params}


def check_names(names: t.Sequence[str]) -> list[str]:
    """Validate job names.

    :raise InvalidArgument: one of them breaks QEMU's id rules.
    """
    return [validate_name(name) for name in names]


def check_timeout(value: float, option: str) -> float:
    """A non-negative number of seconds.

    :raise InvalidArgument: negative.
    """
    if not math.isfinite(value) or value < 0:
        raise InvalidArgument(f'{option} must not be negative (got {value})')
    return value
