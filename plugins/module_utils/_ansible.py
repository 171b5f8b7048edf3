# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where the collection's errors become ``fail_json``; backend selection.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import gc
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ._args.common import CONNECTION, CONNECTION_RULES, DEFAULT_URI, check_timeout
from ._client.chainjob import ChainJobs
from ._client.jobs import JobClient
from ._client.reads import absent_record
from ._errors import VmjobsError
from ._ledger.files import Ledger, default_root
from ._qmp import monitor as _qmp
from ._qmp.backend import QmpBackend
from ._targets import Runner

# libvirt-python and lxml are imported only for a domain: importing them costs a QMP
# task more than its own work (see docs/performance.md).

Body = t.Callable[[JobClient, dict[str, t.Any]], dict[str, t.Any]]
#: A module that builds its own clients: (params, check_mode, runner) -> result.
Tool = t.Callable[[dict[str, t.Any], bool, Runner], dict[str, t.Any]]
#: How a module reports records: ``job`` (one named job: the start modules and
#: ``job``), ``jobs`` (``job_info``), or ``wait`` (``jobs``, plus ``job`` for one name).
Shape = t.Literal['job', 'jobs', 'wait']


def make_client(params: dict[str, t.Any], check_mode: bool,
                run: t.Callable[[list[str]], tuple[int, str, str]] | None = None) -> JobClient:
    """A job client for the VM the connection options name (no I/O yet).

    ``socket`` gives a QMP backend with a ledger of files; ``domain`` a libvirt
    backend whose ledger is the domain's metadata.
    """
    root = params['ledger_dir'] or default_root()
    retention = check_timeout(params['ledger_retention'], 'ledger_retention')
    if params.get('domain'):
        from ._ledger.metadata import MetadataLedger
        from ._libvirt.backend import LibvirtBackend
        backend = LibvirtBackend(params.get('uri') or DEFAULT_URI, params['domain'], run)
        ledger = MetadataLedger(backend, root, backend.scope, retention)
        return JobClient(backend, t.cast(Ledger, ledger), check_mode=check_mode)
    qmp = QmpBackend(params['socket'], check_timeout(params['connect_timeout'],
                                                     'connect_timeout'), run=run)
    return JobClient(qmp, Ledger(root, qmp.scope, retention), check_mode=check_mode)


def vm_client(params: dict[str, t.Any], check_mode: bool, run: Runner) -> JobClient | None:
    """The client of the VM the connection options name, if they name one (no I/O yet)."""
    if params.get('socket') or params.get('domain'):
        return make_client(params, check_mode, run)
    return None


def chain_jobs(params: dict[str, t.Any], check_mode: bool, run: Runner) -> ChainJobs:
    """The restore and verify jobs under the ledger root, each in a daemon of its own (no I/O);
    ``wait_timeout`` is checked here too."""
    params['wait_timeout'] = check_timeout(params['wait_timeout'], 'wait_timeout')
    return ChainJobs(params['ledger_dir'] or default_root(),
                     check_timeout(params['ledger_retention'], 'ledger_retention'), run,
                     check_timeout(params['connect_timeout'], 'connect_timeout'), check_mode)


def missing_library(params: dict[str, t.Any]) -> tuple[str, ImportError | None] | None:
    """The Python package the chosen backend needs and cannot import, if any."""
    if params.get('domain'):
        from . import _lxml
        from ._libvirt import binding as _libvirt
        if not _libvirt.HAS_LIBVIRT:
            return 'libvirt-python', _libvirt.LIBVIRT_IMPORT_ERROR
        if not _lxml.HAS_LXML:
            return 'lxml', _lxml.LXML_IMPORT_ERROR
        return None
    if not _qmp.HAS_QMP:
        return 'qemu.qmp', _qmp.QMP_IMPORT_ERROR
    return None


def shaped(records: list[dict[str, t.Any]], params: dict[str, t.Any],
           shape: Shape) -> dict[str, t.Any]:
    """The records of a result in the module's shape, on success and failure alike.

    A ``job`` module always returns ``job``: the job's record, or the record of an
    absent job when the failure came before there was one.
    """
    if shape == 'jobs':
        return {'jobs': records}
    if shape == 'wait':
        out: dict[str, t.Any] = {'jobs': records}
        if len(params['name']) == 1:
            out['job'] = records[0] if records else absent_record(params['name'][0])
        return out
    return {'job': records[0] if records else absent_record(str(params['name']))}


def run_module(argument_spec: dict[str, dict[str, t.Any]], body: Body,
               shape: Shape = 'job') -> None:
    """Build the module, run ``body(client, params)`` and exit with its result.

    ``body`` returns the result dict (``changed`` included); any
    :class:`VmjobsError` becomes a one-line ``fail_json`` carrying the records it
    holds in the module's ``shape``.
    """
    def call(module: AnsibleModule, run: Runner) -> dict[str, t.Any]:
        return body(make_client(module.params, module.check_mode, run), module.params)

    _run(AnsibleModule(argument_spec=dict(CONNECTION, **argument_spec),
                       supports_check_mode=True, **CONNECTION_RULES), call, shape)


def run_tool(argument_spec: dict[str, dict[str, t.Any]], body: Tool,
             rules: dict[str, t.Any]) -> None:
    """Like :func:`run_module` for a module that builds its own clients (a job in a daemon
    of its own): ``body(params, check_mode, run)``, with the connection options and
    ``rules`` instead of :data:`CONNECTION_RULES`."""
    def call(module: AnsibleModule, run: Runner) -> dict[str, t.Any]:
        return body(module.params, module.check_mode, run)

    _run(AnsibleModule(argument_spec=dict(CONNECTION, **argument_spec),
                       supports_check_mode=True, **rules), call, 'job')


def _run(module: AnsibleModule, call: t.Callable[[AnsibleModule, Runner], dict[str, t.Any]],
         shape: Shape) -> None:
    missing = missing_library(module.params)
    if missing is not None:
        module.fail_json(msg=missing_required_lib(missing[0]), exception=str(missing[1]))
    try:
        result = call(module, lambda argv: t.cast('tuple[int, str, str]',
                                                  module.run_command(argv)))
    except VmjobsError as err:
        gc.freeze()  # the objects live until exit: spare the interpreter's shutdown collection
        module.fail_json(msg=str(err), changed=err.changed, **err.result(),
                         **shaped(err.records, module.params, shape))
    gc.freeze()
    module.exit_json(**result)
