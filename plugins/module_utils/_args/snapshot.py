# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``snapshot`` module's argument spec and its checks.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import typing as t

from .._errors import InvalidArgument
from .._model.vocabulary import validate_name

#: The job that brings an internal snapshot to each ``state``.
JOB_OF_STATE = {'present': 'snapshot-save', 'reverted': 'snapshot-load',
                'absent': 'snapshot-delete'}

SNAPSHOT: dict[str, dict[str, t.Any]] = {
    'name': {'type': 'str', 'required': True},
    'tag': {'type': 'str', 'required': True},
    'state': {'type': 'str', 'default': 'present', 'choices': list(JOB_OF_STATE)},
    'devices': {'type': 'list', 'elements': 'str', 'default': []},
    'vmstate': {'type': 'str'},
    'wait': {'type': 'str', 'default': 'concluded', 'choices': ['none', 'concluded']},
    'wait_timeout': {'type': 'float', 'default': 300.0},
}


def snapshot_params(options: dict[str, t.Any]) -> dict[str, t.Any]:
    """The job's parameters: its type, the snapshot's tag, disks and VM state disk.

    :raise InvalidArgument: a bad name or tag, ``vmstate`` with ``state=absent``.
    """
    name = validate_name(options['name'])
    tag = options['tag']
    if not tag or len(tag) > 128 or any(c in tag for c in '\n\r'):
        raise InvalidArgument(f"job '{name}': the tag must be 1 to 128 characters on one line",
                              name)
    kind = JOB_OF_STATE[options['state']]
    if kind == 'snapshot-delete' and options.get('vmstate'):
        raise InvalidArgument(f"job '{name}': vmstate names where a snapshot's VM state is "
                              'saved or loaded; deleting takes none', name)
    devices = list(options.get('devices') or [])
    if len(set(devices)) != len(devices):
        raise InvalidArgument(f"job '{name}': a disk is listed twice in devices", name)
    return {'type': kind, 'tag': tag, 'devices': devices, 'vmstate': options.get('vmstate')}
