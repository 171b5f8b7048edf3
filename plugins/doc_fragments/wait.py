# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Waiting options of the modules that start jobs."""

    DOCUMENTATION = r'''
options:
  wait:
    description:
      - After starting (or finding) the job, wait until it reaches this status.
      - C(none) returns as soon as the job is started.
      - C(ready) suits mirror and active commit jobs, C(pending) jobs started with
        O(auto_finalize=false), C(concluded) every job.
    type: str
    choices: [none, ready, pending, concluded]
    default: none
  wait_timeout:
    description:
      - Seconds to wait when O(wait) is not C(none). On timeout the task fails and returns the
        last record seen.
    type: float
    default: 300.0
'''
