# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which libvirt call each verb of the collection is: on a disk's block job, on the
domain job (a backup), and on a migration.

This is a private module: its API may change between any two releases. Pure.
"""

from __future__ import annotations

import typing as t

from .._errors import BackendError
from . import binding as _libvirt

Call = tuple[str, tuple[t.Any, ...]]
MIB = 1 << 20


def block_call(name: str, disk: str, verb: str, arguments: dict[str, t.Any]) -> Call:
    """The call for ``verb`` on the block job of ``disk``.

    :raise BackendError: libvirt has no such verb for a block job (pause, finalize).
    """
    if verb == 'cancel':
        return 'blockJobAbort', (disk, _libvirt.BLOCK_JOB_ABORT_ASYNC)
    if verb == 'complete':
        return 'blockJobAbort', (disk, _libvirt.BLOCK_JOB_ABORT_PIVOT)
    if verb == 'set-speed':
        return 'blockJobSetSpeed', (disk, arguments['speed'],
                                    _libvirt.BLOCK_JOB_SPEED_BANDWIDTH_BYTES)
    if verb == 'change':
        raise BackendError(verb, 'VIR_ERR_NO_SUPPORT', 'libvirt cannot change the copy mode of a '
                           'running copy; start it with copy_mode: write-blocking', name)
    raise BackendError(verb, 'VIR_ERR_NO_SUPPORT', f'libvirt cannot {verb} a block job', name)


def domain_call(name: str, verb: str) -> Call:
    """The call for ``verb`` on the domain job.

    :raise BackendError: anything but cancel (libvirt can only abort a domain job).
    """
    if verb != 'cancel':
        raise BackendError(verb, 'VIR_ERR_NO_SUPPORT', f'libvirt cannot {verb} a domain job',
                           name)
    return 'abortJob', ()


def migration_call(verb: str, arguments: dict[str, t.Any]) -> Call | None:
    """The call for a verb or completion action on the domain's migration; None for
    ``dismiss`` (libvirt keeps nothing to dismiss)."""
    calls: dict[str, Call] = {
        'cancel': ('abortJob', ()),
        'set-speed': ('migrateSetMaxSpeed', (-(-int(arguments.get('speed') or 0) // MIB), 0)),
        'postcopy': ('migrateStartPostCopy', (0,)),
        'pause': ('suspend', ()),
    }
    return calls.get(verb)
