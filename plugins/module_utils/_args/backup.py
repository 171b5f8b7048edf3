# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``backup`` module's argument spec and its checks.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

import os
import typing as t

from .._errors import InvalidArgument
from .._exports import TlsSource, parse_address
from .._model.chains import CHOICES, COMPANION_SUFFIX, PULL_SUFFIX, a_mode
from .._model.vocabulary import NAME_RE, validate_name
from .._targets import parse_mode

FORMATS = ['qcow2', 'raw']

BACKUP: dict[str, dict[str, t.Any]] = {
    'name': {'type': 'str'},
    # ``absent`` forgets the chain ``bitmap``; not part of a backup's identity.
    'state': {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
    'disks': {'type': 'list', 'elements': 'dict', 'default': [], 'options': {
        'device': {'type': 'str', 'required': True},
        'target': {'type': 'path'},
        'format': {'type': 'str', 'default': 'qcow2', 'choices': FORMATS},
    }},
    'target_dir': {'type': 'path'},
    # The file mode of the targets (``mode`` is the kind of backup). No default:
    # parameters recorded before this option existed compare equal.
    'target_mode': {'type': 'raw'},
    'mode': {'type': 'str', 'default': 'full', 'choices': list(CHOICES)},
    # ``pull`` exposes each disk over NBD instead of writing images; no default in the
    # parameters unless pull, so push backups recorded before this option compare equal.
    'delivery': {'type': 'str', 'default': 'push', 'choices': ['push', 'pull']},
    'nbd_socket': {'type': 'path'},
    'nbd_address': {'type': 'str'},
    'nbd_tls_dir': {'type': 'path'},
    'bitmap': {'type': 'str'},
    'compress': {'type': 'bool', 'default': False},
    'speed': {'type': 'int'},
    'perf': {'type': 'dict', 'options': {
        'max_workers': {'type': 'int'},
        'max_chunk': {'type': 'int'},
        'use_copy_range': {'type': 'bool'},
    }},
    # A backup never becomes ready and finalizes itself: only these two make sense.
    'wait': {'type': 'str', 'default': 'none', 'choices': ['none', 'concluded']},
    'wait_timeout': {'type': 'float', 'default': 300.0},
}


#: The longest UNIX socket path the kernel takes (sun_path, 108 bytes with its NUL).
MAX_SOCKET = 107


def _refuse(name: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"job '{name}': {why}", name)


def default_target(target_dir: str, device: str, fmt: str) -> str:
    """``<target_dir>/<device>.<format>``: where a disk without ``target`` is backed up."""
    return os.path.join(target_dir, f"{device.replace('/', '_')}.{fmt}")


def check_disk(name: str, mode: str, compress: bool, device: str, fmt: str) -> None:
    """A disk's format must suit the backup.

    :raise InvalidArgument: an incremental, differential or compressed backup to raw.
    """
    if fmt == 'raw' and mode != 'full':
        raise _refuse(name, f"disk '{device}': {a_mode(mode)} backup needs a qcow2 target, which "
                            'records its backing file')
    if fmt == 'raw' and compress:
        raise _refuse(name, f"disk '{device}': compress needs a qcow2 target")


def check_pull(name: str, options: dict[str, t.Any], tls: TlsSource = 'dir') -> None:
    """A pull backup writes no image: options about images make no sense with it.
    Exports over TCP always use TLS, with the certificates of ``nbd_tls_dir`` (``tls``
    ``dir``) or of the daemon's configuration (``daemon``, libvirt), never both.

    :raise InvalidArgument: a target, target_dir, target_mode, compress, perf or speed,
        or a wait for the conclusion (a pull backup runs until its reader's verdict); an
        NBD address that is not HOST:PORT or lacks its TLS certificates; a socket path
        too long.
    """
    given = [key for key in ('target_dir', 'target_mode', 'speed', 'perf')
             if options.get(key)]
    given += ['compress'] * bool(options.get('compress'))
    given += [f"disks[{disk['device']}].target" for disk in options.get('disks') or []
              if disk.get('target')]
    if given:
        raise _refuse(name, f"delivery: pull writes no image; remove {', '.join(given)}")
    if options.get('wait', 'none') != 'none':
        raise _refuse(name, 'a pull backup runs until its reader ends it (job state=absent '
                            'with verdict); use wait: none')
    address, tls_dir = options.get('nbd_address'), options.get('nbd_tls_dir')
    if address and options.get('nbd_socket'):
        raise _refuse(name, 'give nbd_socket (UNIX) or nbd_address (TCP), not both')
    if tls_dir and tls == 'daemon':
        raise _refuse(name, 'a libvirt domain exports with libvirtd\'s own TLS certificates '
                            '(backup_tls_x509_cert_dir in qemu.conf); remove nbd_tls_dir')
    if tls == 'dir' and bool(address) != bool(tls_dir):
        raise _refuse(name, 'exports over TCP need TLS: give nbd_address and nbd_tls_dir '
                            'together')
    if address:
        parse_address(name, address)
    socket = options.get('nbd_socket')
    if socket and len(os.path.abspath(socket).encode()) > MAX_SOCKET:
        raise _refuse(name, f'nbd_socket {socket} is longer than {MAX_SOCKET} bytes, the '
                            'limit of a UNIX socket path')


def backup_params(options: dict[str, t.Any], tls: TlsSource = 'dir') -> dict[str, t.Any]:
    """Check ``backup`` options and return the job's parameters (``tls``: where the VM's
    TCP exports take their certificates from, see :func:`check_pull`).

    :raise InvalidArgument: a missing, contradictory or impossible option.
    """
    if options.get('name') is None:
        raise InvalidArgument('a backup needs a name (only state=absent, which forgets a chain, '
                              'goes without)')
    name = validate_name(options['name'])
    mode, bitmap = options['mode'], options.get('bitmap')
    if bitmap is not None:
        if not NAME_RE.fullmatch(bitmap):
            raise _refuse(name, f"invalid bitmap name {bitmap!r}: use 1-128 characters, a "
                                "letter first, then letters, digits, '.', '_' or '-'")
        for suffix, kept in ((COMPANION_SUFFIX, 'the companion bitmap of each chain'),
                             (PULL_SUFFIX, 'the bitmap a pull backup adds at its start')):
            if bitmap.endswith(suffix):
                raise _refuse(name, f"bitmap names ending in '{suffix}' are kept for "
                                    f'{kept} (here {bitmap})')
    elif mode != 'full':
        raise _refuse(name, f'{a_mode(mode)} backup needs a bitmap')
    for key in ('speed',):
        if options.get(key) is not None and options[key] < 0:
            raise _refuse(name, f'{key} must not be negative (got {options[key]})')
    perf = {key: value for key, value in (options.get('perf') or {}).items()
            if value is not None}
    for key in ('max_workers', 'max_chunk'):
        if key in perf and perf[key] < (1 if key == 'max_workers' else 0):
            raise _refuse(name, f'perf.{key} must be positive (got {perf[key]})')
    pull = options.get('delivery') == 'pull'
    if pull:
        check_pull(name, options, tls)
    else:
        for key in ('nbd_socket', 'nbd_address', 'nbd_tls_dir'):
            if options.get(key):
                raise _refuse(name, f'{key} is for delivery: pull')
    target_dir = options.get('target_dir')
    disks, devices, targets = [], set(), set()
    for disk in options.get('disks') or []:
        device, fmt = disk['device'], disk.get('format') or 'qcow2'
        if device in devices:
            raise _refuse(name, f"disk '{device}' is listed twice")
        devices.add(device)
        target = disk.get('target')
        if pull:
            disks.append({'device': device, 'target': None, 'format': fmt})
            continue
        if target is None and target_dir is None:
            raise _refuse(name, f"disk '{device}' needs a target, or give target_dir")
        target = os.path.abspath(target or default_target(target_dir or '', device, fmt))
        if target in targets:
            raise _refuse(name, f'target {target} is given for two disks')
        targets.add(target)
        check_disk(name, mode, options['compress'], device, fmt)
        disks.append({'device': device, 'target': disk.get('target') and target, 'format': fmt})
    if not disks and target_dir is None and not pull:
        raise _refuse(name, 'give disks, or target_dir to back up every disk of the VM')
    params = {'type': 'backup', 'mode': mode, 'bitmap': bitmap, 'disks': disks,
              'target_dir': os.path.abspath(target_dir) if target_dir else None,
              'compress': options['compress'], 'speed': options.get('speed'),
              'perf': perf or None}
    if pull:
        params['delivery'] = 'pull'
        if options.get('nbd_socket'):
            params['nbd_socket'] = os.path.abspath(options['nbd_socket'])
        if options.get('nbd_address'):
            params['nbd_address'] = options['nbd_address']
        if options.get('nbd_tls_dir'):
            params['nbd_tls_dir'] = os.path.abspath(options['nbd_tls_dir'])
    target_mode = parse_mode(options.get('target_mode'), name, 'target_mode')
    if target_mode is not None:
        params['target_mode'] = target_mode
    return params


def resolve_disks(name: str, params: dict[str, t.Any],
                  all_disks: t.Sequence[str]) -> list[dict[str, t.Any]]:
    """The disks to back up, each with its target: those listed, or all of the VM's.

    :raise InvalidArgument: no disks, or two disks that end up with one target.
    """
    listed = params['disks'] or [{'device': device, 'target': None, 'format': 'qcow2'}
                                 for device in all_disks]
    if not listed:
        raise _refuse(name, 'the VM has no writable disks; list them in disks')
    if params.get('delivery') == 'pull':
        return [{'device': disk['device'], 'target': None, 'format': disk['format']}
                for disk in listed]
    resolved, targets = [], set()
    for disk in listed:
        target = disk['target'] or default_target(params['target_dir'], disk['device'],
                                                  disk['format'])
        if target in targets:
            raise _refuse(name, f'target {target} is given for two disks')
        targets.add(target)
        check_disk(name, params['mode'], params['compress'], disk['device'], disk['format'])
        resolved.append({'device': disk['device'], 'target': target, 'format': disk['format']})
    return resolved
