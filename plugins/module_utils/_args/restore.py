# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``restore`` and ``verify`` modules' argument specs and their checks.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import os
import typing as t

from .._errors import InvalidArgument
from .._model.vocabulary import validate_name
from .._targets import parse_mode

#: Where a chain job reads from: a backup of a VM's disk, or any image of a chain.
SOURCE: dict[str, dict[str, t.Any]] = {
    'name': {'type': 'str', 'required': True},
    'backup': {'type': 'str'},
    'device': {'type': 'str'},
    'image': {'type': 'path'},
    'wait': {'type': 'str', 'default': 'concluded', 'choices': ['none', 'concluded']},
    'wait_timeout': {'type': 'float', 'default': 300.0},
}

RESTORE: dict[str, dict[str, t.Any]] = {
    **SOURCE,
    'target': {'type': 'path', 'required': True},
    'target_format': {'type': 'str', 'default': 'qcow2', 'choices': ['qcow2', 'raw']},
    'target_mode': {'type': 'raw'},
    'overwrite': {'type': 'bool', 'default': False},
    'verify': {'type': 'bool', 'default': False},
    'attach': {'type': 'str'},
}

VERIFY: dict[str, dict[str, t.Any]] = dict(SOURCE)

#: The source is a backup (of a VM: ``socket`` or ``domain``) or an image (no VM needed).
SOURCE_RULES: dict[str, t.Any] = {
    'required_one_of': [['backup', 'image']],
    'mutually_exclusive': [['backup', 'image'], ['socket', 'domain'], ['socket', 'uri'],
                           ['image', 'device']],
    'required_together': [['backup', 'device']],
}
#: A restore attaches its image to a libvirt domain only.
RESTORE_RULES: dict[str, t.Any] = dict(SOURCE_RULES, required_by={'attach': 'domain'})


def source_params(options: dict[str, t.Any], kind: str) -> dict[str, t.Any]:
    """The identity of a chain job: its type and where it reads from.

    :raise InvalidArgument: a bad name; a backup without the VM that made it.
    """
    name = validate_name(options['name'])
    if options.get('backup') and not (options.get('socket') or options.get('domain')):
        raise InvalidArgument(f"job '{name}': backup names a backup of a VM; give the VM's "
                              'socket or domain too (or give image instead)', name)
    params: dict[str, t.Any] = {'type': kind}
    if options.get('backup'):
        params.update(backup=options['backup'], device=options['device'])
    else:
        params['source'] = os.path.abspath(options['image'])
    return params


def restore_params(options: dict[str, t.Any]) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """(identity, start-only) parameters of a restore.

    ``overwrite`` and ``target_mode`` say how the target is made, not what the restore is:
    a re-run with another value finds the same job.

    :raise InvalidArgument: a bad name, mode or source.
    """
    params = source_params(options, 'restore')
    name = options['name']
    params.update(target=os.path.abspath(options['target']),
                  target_format=options['target_format'])
    start_only = {'overwrite': options['overwrite'],
                  'target_mode': parse_mode(options.get('target_mode'), name, 'target_mode')}
    return params, start_only
