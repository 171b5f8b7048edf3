# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which QMP command each verb of the collection is, for a job and for a migration.

This is a private module: its API may change between any two releases. Pure.
"""

from __future__ import annotations

import typing as t

Command = tuple[str, dict[str, t.Any]]

#: Job verbs and QEMU's job command for each (addressed by the job's id).
JOB_COMMANDS = {
    'cancel': 'job-cancel', 'pause': 'job-pause', 'resume': 'job-resume',
    'complete': 'job-complete', 'finalize': 'job-finalize', 'dismiss': 'job-dismiss',
}


def job_command(name: str, verb: str, arguments: dict[str, t.Any]) -> Command:
    """The command for ``verb`` on job ``name``.

    ``cancel`` with ``keep_copy`` is ``block-job-cancel``: unlike ``job-cancel``, which
    always forces, it lets a READY mirror or active commit end as a consistent copy.
    """
    if verb == 'set-speed':
        return 'block-job-set-speed', {'device': name, 'speed': arguments['speed']}
    if verb == 'cancel' and arguments.get('keep_copy'):
        return 'block-job-cancel', {'device': name}
    if verb == 'change':
        return 'block-job-change', {'id': name, 'type': 'mirror',
                                    'copy-mode': arguments['copy_mode']}
    return JOB_COMMANDS[verb], {'id': name}


def migration_command(verb: str, arguments: dict[str, t.Any]) -> Command | None:
    """The command for a verb or completion action on the VM's migration; None for
    ``dismiss`` (QEMU keeps nothing to dismiss). ``migrate`` (to ``uri``) starts a
    migration whose disks were copied first."""
    commands: dict[str, Command] = {
        'cancel': ('migrate_cancel', {}),
        'set-speed': ('migrate-set-parameters', {'max-bandwidth': arguments.get('speed')}),
        'postcopy': ('migrate-start-postcopy', {}),
        'pause': ('stop', {}),
        'migrate': ('migrate', {'uri': arguments.get('uri')}),
    }
    return commands.get(verb)
