# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for vmjobs.qemu.backup: live progress while it waits (see docs/progress.md)."""

from __future__ import annotations

from ansible_collections.vmjobs.qemu.plugins.plugin_utils._progress_action import (
    ProgressAction,
)


class ActionModule(ProgressAction):
    """Prints a progress line per job while the task waits."""
