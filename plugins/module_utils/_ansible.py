# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where the collection's errors become ``fail_json``.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from . import _qmp
from ._args import CONNECTION, check_timeout
from ._errors import VmjobsError
from ._jobs import JobClient
from ._ledger import Ledger, default_root
from ._qmp_backend import QmpBackend

Body = t.Callable[[JobClient, dict[str, t.Any]], dict[str, t.Any]]


def make_client(params: dict[str, t.Any], check_mode: bool) -> JobClient:
    """A job client for the VM the connection options name (no I/O yet)."""
    backend = QmpBackend(params['socket'], check_timeout(params['connect_timeout'],
                                                         'connect_timeout'))
    ledger = Ledger(params['ledger_dir'] or default_root(), backend.scope,
                    check_timeout(params['ledger_retention'], 'ledger_retention'))
    return JobClient(backend, ledger, check_mode=check_mode)


def run_module(argument_spec: dict[str, dict[str, t.Any]], body: Body) -> None:
    """Build the module, run ``body(client, params)`` and exit with its result.

    ``body`` returns the result dict (``changed`` included); any
    :class:`VmjobsError` becomes a one-line ``fail_json``.
    """
    module = AnsibleModule(argument_spec=dict(CONNECTION, **argument_spec),
                           supports_check_mode=True)
    if not _qmp.HAS_QMP:
        module.fail_json(msg=missing_required_lib('qemu.qmp'),
                         exception=str(_qmp.QMP_IMPORT_ERROR))
    try:
        client = make_client(module.params, module.check_mode)
        result = body(client, module.params)
    except VmjobsError as err:
        module.fail_json(msg=str(err), changed=err.changed, **err.result())
    module.exit_json(**result)
