# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``migration`` module's argument spec and its checks.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import math
import os
import typing as t

from .._errors import InvalidArgument
from .._model.migration import ACTIONS
from .._model.storage import STORAGE
from .._model.vocabulary import validate_name

MIGRATION: dict[str, dict[str, t.Any]] = {
    'name': {'type': 'str', 'required': True},
    'dest_uri': {'type': 'str'},
    'dest_socket': {'type': 'path'},
    'bandwidth': {'type': 'int'},
    'downtime_limit': {'type': 'int'},
    'auto_converge': {'type': 'bool', 'default': False},
    'postcopy': {'type': 'bool', 'default': False},
    'postcopy_after_passes': {'type': 'int', 'no_log': False},  # passes over RAM, no secret
    'multifd_channels': {'type': 'int'},
    'xbzrle_cache_size': {'type': 'int'},
    'tls_creds': {'type': 'str'},
    'tls_hostname': {'type': 'str'},
    'completion_timeout': {'type': 'float'},
    'completion_action': {'type': 'str', 'default': 'cancel', 'choices': list(ACTIONS)},
    'unsafe': {'type': 'bool', 'default': False},
    'storage': {'type': 'str', 'default': 'shared', 'choices': list(STORAGE)},
    'disks': {'type': 'list', 'elements': 'str'},
    'wait': {'type': 'str', 'default': 'none', 'choices': ['none', 'concluded']},
    'wait_timeout': {'type': 'float', 'default': 300.0},
}

#: URI schemes QEMU 7.2 migrates to (``file:`` arrived in 8.2).
SCHEMES = ('tcp:', 'unix:', 'exec:')
#: Schemes a destination can listen on.
LISTEN_SCHEMES = ('tcp:', 'unix:')
#: Options passed on to the backend as they are.
PASSED = ('dest_uri', 'dest_socket', 'bandwidth', 'downtime_limit', 'auto_converge', 'postcopy',
          'postcopy_after_passes', 'multifd_channels', 'xbzrle_cache_size', 'tls_creds',
          'tls_hostname', 'completion_timeout')


def _refuse(name: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"job '{name}': {why}", name)


def _check_numbers(name: str, options: dict[str, t.Any]) -> None:
    for key in ('bandwidth', 'downtime_limit', 'xbzrle_cache_size'):
        if options.get(key) is not None and options[key] < 0:
            raise _refuse(name, f'{key} must not be negative (got {options[key]})')
    for key in ('multifd_channels', 'postcopy_after_passes'):
        if options.get(key) is not None and options[key] < 1:
            raise _refuse(name, f'{key} must be at least 1 (got {options[key]})')
    limit = options.get('completion_timeout')
    if limit is not None and (not math.isfinite(limit) or limit <= 0):
        raise _refuse(name, f'completion_timeout must be a positive number of seconds '
                            f'(got {limit})')


def _check_storage(name: str, options: dict[str, t.Any]) -> None:
    if options.get('storage') != 'copy':
        if options.get('disks'):
            raise _refuse(name, 'disks lists the disks to copy: it needs storage: copy')
        return
    if not options.get('domain') and not options.get('dest_socket'):
        raise _refuse(name, 'storage: copy needs dest_socket: the destination QEMU serves its '
                            'disks to the copy over NBD')
    for device in options.get('disks') or []:
        if not device or '/' in device:
            raise _refuse(name, f'disks: {device!r} is not a disk name')


def migration_params(options: dict[str, t.Any]) -> dict[str, t.Any]:
    """Check the ``migration`` module's options and return the job's parameters.

    :raise InvalidArgument: a missing, conflicting or impossible option.
    """
    name = validate_name(options['name'])
    uri, dest = options.get('dest_uri'), options.get('dest_socket')
    if not uri and not dest:
        raise _refuse(name, 'give dest_uri (where to migrate to) or dest_socket (a destination '
                            'QEMU started with -incoming defer)')
    if options.get('domain'):  # a libvirt domain: libvirt migrates it to another libvirtd
        if dest or not uri or '://' not in uri:
            raise _refuse(name, 'a libvirt domain migrates to another libvirt daemon: give '
                                'dest_uri as its libvirt URI, such as qemu+tcp://HOST/system '
                                '(dest_socket is for QMP sockets)')
    elif options.get('unsafe'):
        raise _refuse(name, 'unsafe is for libvirt domains (domain=...)')
    elif uri and not uri.startswith(LISTEN_SCHEMES if dest else SCHEMES):
        allowed = ', '.join(LISTEN_SCHEMES if dest else SCHEMES)
        raise _refuse(name, f'dest_uri {uri!r} must start with one of {allowed}'
                            + (' when the destination listens on it' if dest else ''))
    _check_numbers(name, options)
    _check_storage(name, options)
    if options.get('postcopy_after_passes') is not None and not options['postcopy']:
        raise _refuse(name, 'postcopy_after_passes needs postcopy: true')
    action = options['completion_action']
    if action == 'postcopy' and not options['postcopy'] and options.get('completion_timeout'):
        raise _refuse(name, 'completion_action postcopy needs postcopy: true')
    if options.get('tls_hostname') and not options.get('tls_creds'):
        raise _refuse(name, 'tls_hostname needs tls_creds')
    params = {key: options.get(key) for key in PASSED}
    if options.get('storage') == 'copy':
        params.update(storage='copy', disks=list(options['disks']) if options.get('disks') else None)
    params.update(type='migration', auto_converge=options['auto_converge'] or None,
                  postcopy=options['postcopy'] or None, unsafe=options.get('unsafe') or None)
    if params['completion_timeout'] is not None:
        params['completion_action'] = action
    if dest:
        params['dest_socket'] = os.path.abspath(dest)
    return params
