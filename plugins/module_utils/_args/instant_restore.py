# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``instant_restore`` module's argument spec and its checks.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import os
import typing as t

from .._errors import InvalidArgument
from .._model.vocabulary import validate_name
from .._overlay import BACKING_MODES
from .._targets import parse_mode

INSTANT_RESTORE: dict[str, dict[str, t.Any]] = {
    'name': {'type': 'str', 'required': True},
    'image': {'type': 'path'},
    'backup': {'type': 'str'},
    'device': {'type': 'str'},
    'target': {'type': 'path', 'required': True},
    'backing': {'type': 'str', 'default': 'absolute', 'choices': list(BACKING_MODES)},
    'overwrite': {'type': 'bool', 'default': False},
    'target_mode': {'type': 'raw'},
    'attach': {'type': 'bool', 'default': True},
    'disk': {'type': 'str'},
    'bus': {'type': 'str'},
    'speed': {'type': 'int'},
    'wait': {'type': 'str', 'default': 'none', 'choices': ['none', 'concluded']},
    'wait_timeout': {'type': 'float', 'default': 300.0},
}


def instant_params(options: dict[str, t.Any]) -> dict[str, t.Any]:
    """The stream job's parameters, and how its overlay is made.

    ``image`` is the backup chain's image when given; with ``backup`` the caller looks it
    up (``backup`` and ``device`` are kept as given). ``overwrite`` and the overlay's mode
    (``target_mode``) are how to make the file, not what the job is: the caller hands
    them to the start apart from the compared parameters.

    :raise InvalidArgument: a bad name, neither or both of ``image`` and ``backup``, an
        attach without ``disk``, a negative speed, a bad mode.
    """
    name = validate_name(options['name'])
    if bool(options.get('image')) == bool(options.get('backup')):
        raise InvalidArgument(f"job '{name}': give the backup chain's image, or backup and "
                              'device (one of the two)', name)
    if options.get('backup') and not options.get('device'):
        raise InvalidArgument(f"job '{name}': backup needs device, the disk of the backup "
                              'to restore', name)
    if options.get('image') and options.get('device'):
        raise InvalidArgument(f"job '{name}': device goes with backup; image names the "
                              'chain image itself', name)
    if options['attach'] and not options.get('disk'):
        raise InvalidArgument(f"job '{name}': attach needs disk, the id of the disk to attach "
                              '(a qdev id over QMP, a target such as vdb under libvirt)', name)
    if not options['attach']:
        extra = [key for key in ('disk', 'bus', 'speed') if options.get(key) is not None]
        if extra or options['wait'] != 'none':
            extra += ['wait'] if options['wait'] != 'none' else []
            raise InvalidArgument(f"job '{name}': attach: false only makes the overlay and "
                                  f"takes no {', '.join(extra)}; start the stream with "
                                  'block_job type=stream once the VM runs on it', name)
    if options.get('speed') is not None and options['speed'] < 0:
        raise InvalidArgument(f"job '{name}': speed must not be negative "
                              f"(got {options['speed']})", name)
    params: dict[str, t.Any] = {
        'type': 'stream', 'device': options.get('disk'), 'target': os.path.abspath(
            options['target']), 'image': os.path.abspath(options['image'])
        if options.get('image') else None, 'backup': options.get('backup'),
        'backup_device': options.get('device'), 'backing': options['backing'],
        'bus': options.get('bus'), 'speed': options.get('speed'),
        'auto_dismiss': False, 'auto_finalize': True}
    return params


def start_only(options: dict[str, t.Any]) -> dict[str, t.Any]:
    """How the overlay is made: replace an existing file or not, and its mode.

    :raise InvalidArgument: a bad mode.
    """
    mode = parse_mode(options.get('target_mode'), options['name'], 'target_mode')
    return {'overwrite': options['overwrite'], 'target_mode': mode}
