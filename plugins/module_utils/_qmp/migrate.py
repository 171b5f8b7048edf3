# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live migration over QMP: capabilities, parameters, the destination, the witness.

This is a private module: its API may change between any two releases.
Capabilities and parameters are probed (``query-migrate-capabilities``,
``query-migrate-parameters``) rather than guessed from QEMU's version.
"""

from __future__ import annotations

import os
import typing as t

from .._errors import JobConflict, JobStateError, VmjobsError, naming
from .._model import migration as _migration
from .._model.session import Note, Record
from . import storage as _storage
from . import verbs as _verbs
from .monitor import Monitor

#: MigrationStatus words of a migration that is still under way.
UNDER_WAY = frozenset(raw for raw, status in _migration.STATUS_MAP.items()
                      if status != 'concluded')

#: Capabilities that must be set the same way on both sides.
BOTH_SIDES = ('postcopy-ram', 'multifd')

#: Parameters that go to the destination too.
DEST_PARAMETERS = ('multifd-channels', 'tls-creds')


def capabilities(params: dict[str, t.Any]) -> dict[str, bool]:
    """The migration capabilities the collection manages, as ``params`` want them."""
    return {
        'events': True,
        'postcopy-ram': bool(params.get('postcopy')),
        'auto-converge': bool(params.get('auto_converge')),
        'multifd': params.get('multifd_channels') is not None,
        'xbzrle': params.get('xbzrle_cache_size') is not None,
    }


def parameters(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The migration parameters ``params`` ask for (QEMU's names)."""
    wanted = {
        'max-bandwidth': params.get('bandwidth'),
        'downtime-limit': params.get('downtime_limit'),
        'multifd-channels': params.get('multifd_channels'),
        'xbzrle-cache-size': params.get('xbzrle_cache_size'),
        'tls-creds': params.get('tls_creds'),
        'tls-hostname': params.get('tls_hostname'),
    }
    return {key: value for key, value in wanted.items() if value is not None}


def fingerprint(info: Record) -> list[t.Any]:
    """What tells one finished migration's ``query-migrate`` reply from the next one's."""
    ram = info.get('ram') or {}
    return [info.get('status'), info.get('total-time'), info.get('setup-time'),
            ram.get('transferred')]


def uri_of(address: Record) -> str:
    """A migration URI from a ``SocketAddress`` in ``query-migrate``'s ``socket-address``."""
    if address.get('type') == 'unix':
        return f"unix:{address['path']}"
    host = address['host']
    if ':' in host:
        host = f'[{host}]'
    return f"tcp:{host}:{address['port']}"


class Side:
    """The migration settings of one QEMU (source or destination)."""

    def __init__(self, monitor: Monitor, name: str, role: str) -> None:
        self.monitor = monitor
        self.name = name
        self.role = role

    def configure(self, caps: dict[str, bool], values: dict[str, t.Any]) -> None:
        """Set the capabilities this QEMU has and the parameters asked for.

        :raise VmjobsError: a capability or parameter asked for does not exist here.
        """
        have = {c['capability'] for c in self.monitor.execute('query-migrate-capabilities')}
        missing = [cap for cap, on in caps.items() if on and cap not in have and cap != 'events']
        known = set(self.monitor.execute('query-migrate-parameters'))
        missing += [key for key in values if key not in known]
        if missing:
            raise VmjobsError(
                f"job '{self.name}': the {self.role} QEMU does not support migration "
                f"{', '.join(sorted(missing))}", self.name)
        creds = values.get('tls-creds')
        if creds and creds not in {o['name'] for o in self.monitor.execute('qom-list', {
                'path': '/objects'})}:
            raise VmjobsError(f"job '{self.name}': the {self.role} QEMU has no object "
                              f"'{creds}' for tls_creds (create a tls-creds-x509 object "
                              'first)', self.name)
        setting = [{'capability': cap, 'state': on} for cap, on in caps.items() if cap in have]
        self.run('migrate-set-capabilities', {'capabilities': setting})
        if values:
            self.run('migrate-set-parameters', values)

    def run(self, command: str, arguments: dict[str, t.Any]) -> t.Any:
        """Run one command on this side; QEMU's refusal names the job.

        :raise BackendError: QEMU refused.
        """
        with naming(self.name):
            return self.monitor.execute(command, arguments)


def require_incoming(name: str, dest: Monitor) -> None:
    """Refuse a destination that is not waiting for an incoming migration.

    :raise JobStateError: it is in another run state.
    """
    state = dest.execute('query-status')['status']
    if state != 'inmigrate':
        raise JobStateError(
            f"job '{name}': the destination QEMU at {dest.path} is {state}, not waiting for an "
            "incoming migration; start it with -incoming defer", name)


def prepare_destination(name: str, dest: Monitor, params: dict[str, t.Any]) -> str:
    """Make the destination listen for the migration; return the URI it listens on.

    A destination that already listens (a start interrupted before ``migrate``)
    is reused.

    :raise JobStateError: the destination is not waiting for an incoming migration.
    """
    require_incoming(name, dest)
    listening = dest.execute('query-migrate').get('socket-address') or []
    if not listening:
        caps = {k: v for k, v in capabilities(params).items() if k in BOTH_SIDES}
        values = {k: v for k, v in parameters(params).items() if k in DEST_PARAMETERS}
        side = Side(dest, name, 'destination')
        side.configure(caps, values)
        side.run('migrate-incoming', {'uri': params.get('dest_uri') or 'tcp:127.0.0.1:0'})
        listening = dest.execute('query-migrate').get('socket-address') or []
    if not listening:
        raise VmjobsError(f"job '{name}': the destination QEMU at {dest.path} reports no "
                          'listening address after migrate-incoming', name)
    return uri_of(listening[0])


def start_migration(mon: Monitor, name: str, params: dict[str, t.Any], note: Note,
                    connect_timeout: float) -> None:
    """Start the outgoing migration ``name`` from the QEMU behind ``mon``.

    :raise JobConflict: this VM is already migrating.
    :raise JobStateError: the source or destination is in the wrong run state.
    :raise BackendError: QEMU refused (its class and text kept).
    """
    info = mon.execute('query-migrate')
    if info.get('status') in UNDER_WAY:
        raise JobConflict(
            f"job '{name}': the VM is already migrating (status {info['status']}) and QEMU "
            'runs one migration at a time', name)
    run_state = mon.execute('query-status')
    if run_state['status'] in ('inmigrate', 'postmigrate'):
        raise JobStateError(
            f"job '{name}': the VM is {run_state['status']} and cannot migrate out", name)
    source = Side(mon, name, 'source')

    def configure(uri: str | None) -> None:
        note(prior=fingerprint(info), dest_uri=uri,
             source_running=run_state['status'] == 'running')
        source.configure(capabilities(params), parameters(params))

    uri = params.get('dest_uri')
    if not params.get('dest_socket'):
        configure(uri)
        source.run('migrate', {'uri': uri})
        return
    if not os.path.exists(params['dest_socket']):
        raise JobStateError(
            f"job '{name}': no QMP socket at {params['dest_socket']} (dest_socket): start the "
            'destination QEMU, with -incoming defer, before the migration', name)
    with Monitor(params['dest_socket'], connect_timeout) as dest:
        require_incoming(name, dest)
        disks = _storage.plan(name, mon, dest, params.get('disks')) \
            if params.get('storage') == 'copy' else []
        uri = prepare_destination(name, dest, params)
        configure(uri)
        if disks:  # the migration proper starts once the disks are in sync
            _storage.start_copy(mon, dest, name, disks, note)
            return
    source.run('migrate', {'uri': uri})


def apply_verb(mon: Monitor, name: str, verb: str, **arguments: t.Any) -> None:
    """Apply a verb or completion action to the VM's migration."""
    command = _verbs.migration_command(verb, arguments)
    if command is not None:
        with naming(name):
            mon.execute(*command)


def witness(entry: Record, connect_timeout: float) -> Record | None:
    """Ask the destination how a migration ended once the source QEMU has gone.

    :return: ``{'outcome', 'error', 'running'}`` or None if the destination cannot tell.
    """
    dest_socket = (entry.get('params') or {}).get('dest_socket')
    if not dest_socket:
        return None
    try:
        with Monitor(dest_socket, connect_timeout) as dest:
            info = dest.execute('query-migrate')
            running = dest.execute('query-status')['status']
    except VmjobsError:
        return None
    raw = info.get('status')
    if raw not in ('completed', 'failed'):
        return None
    return {'outcome': _migration.OUTCOMES[raw], 'error': info.get('error-desc'),
            'running': running}


def resume_destination(entry: Record, connect_timeout: float) -> bool:
    """Resume the guest on the destination if it ran on the source when migration began.

    :return: whether ``cont`` was sent.
    """
    dest_socket = (entry.get('params') or {}).get('dest_socket')
    if not dest_socket or not entry.get('source_running'):
        return False
    with Monitor(dest_socket, connect_timeout) as dest:
        if dest.execute('query-status')['status'] != 'paused':
            return False
        if dest.execute('query-migrate').get('status') != 'completed':
            return False
        dest.execute('cont')
    return True
