# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Multi-disk backups over QMP: one ``transaction`` of ``blockdev-backup`` actions.

This is a private module: its API may change between any two releases.

The members of a group are started with ``completion-mode: grouped``: they
finish together, and if one fails QEMU cancels the others.  Bitmap actions are
not allowed in such a transaction, so a full backup clears (or adds) its
bitmaps in a transaction of its own just before.  The helpers above
:func:`start_group` are pure and take QEMU's replies as plain data.
"""

from __future__ import annotations

import contextlib
import os
import typing as t

from .._errors import BackendError, InvalidArgument, VmjobsError
from .._model import chains as _chains
from .._model import planning as _planning
from .._model.session import Note, Record
from .._waiter import Waiter
from . import images as _qmp_images
from . import nodes as _nodes
from .monitor import Monitor
from .sources import bitmaps, marks, reset_actions

Node = dict[str, t.Any]
#: Names ``perf`` takes, and QEMU's names for them (members of ``x-perf``).
PERF_KEYS = {'use_copy_range': 'use-copy-range', 'max_workers': 'max-workers',
             'max_chunk': 'max-chunk'}


def perf_option(schema: list[Node]) -> tuple[str | None, set[str]]:
    """The name of ``blockdev-backup``'s performance option and its members.

    QEMU 6.0 to at least 9.x call it ``x-perf`` (unstable); ``perf`` is accepted too.

    :return: (option name, member names), or (None, set()) if this QEMU has none.
    """
    by_name = {entry['name']: entry for entry in schema}
    command = by_name.get('blockdev-backup') or {}
    arguments = by_name.get(command.get('arg-type', ''), {})
    for member in arguments.get('members') or []:
        if member['name'] in ('x-perf', 'perf'):
            members = by_name.get(member['type'], {}).get('members') or []
            return member['name'], {m['name'] for m in members}
    return None, set()


def perf_arguments(job: str, perf: dict[str, t.Any], schema: list[Node]) -> Record:
    """``{'x-perf': {...}}`` for the options given, if this QEMU offers them.

    :raise InvalidArgument: QEMU has no such tuning, or not this option of it.
    """
    given = {key: value for key, value in perf.items() if value is not None}
    if not given:
        return {}
    option, members = perf_option(schema)
    if option is None:
        raise InvalidArgument(f"job '{job}': this QEMU's blockdev-backup has no performance "
                              'options (x-perf); remove perf', job)
    missing = sorted(key for key in given if PERF_KEYS[key] not in members)
    if missing:
        raise InvalidArgument(f"job '{job}': this QEMU's blockdev-backup {option} has no "
                              f"{', '.join(missing)}; it offers "
                              f"{', '.join(sorted(members)) or 'nothing'}", job)
    return {option: {PERF_KEYS[key]: value for key, value in given.items()}}


def backup_action(disk: Record, node: str, target: str, params: Record,
                  perf: Record) -> Record:
    """The ``blockdev-backup`` action of one member."""
    data: Record = {'job-id': disk['member'], 'device': node, 'target': target,
                    'sync': disk['sync'], 'auto-finalize': True, 'auto-dismiss': False}
    if disk.get('bitmap'):
        data.update({'bitmap': disk['bitmap'], 'bitmap-mode': disk['bitmap_mode']})
    if params.get('compress'):
        data['compress'] = True
    if params.get('speed'):
        data['speed'] = params['speed']
    data.update(perf)
    return {'type': 'blockdev-backup', 'data': data}


# -- starting (QMP) --------------------------------------------------------------------------------

def _nothing() -> None:
    return None


class _Attached:
    """What a start attached and created, noted in the ledger as it grows."""

    def __init__(self, note: Note) -> None:
        self.note = note
        self.nodes: list[str] = []
        self.files: list[str] = []

    def add(self, nodes: t.Sequence[str] = (), created_file: str | None = None) -> None:
        if created_file and created_file not in self.files:
            self.files.append(created_file)
        for node in nodes:
            if node not in self.nodes:
                self.nodes.append(node)
        self.save()

    def save(self) -> None:
        self.note(attached=list(self.nodes), created_files=list(self.files))

    def member_note(self, fmt_node: str) -> Note:
        """A note for ``_qmp_images.create_image``: format node first, for detaching.

        ``created_files=[path]`` adds the file the member creates; ``created_files=[]``
        withdraws it (something else made it: it is not ours).
        """
        mine: list[str] = []

        def note(**facts: t.Any) -> None:
            paths = facts.get('created_files')
            if paths:
                mine.extend(paths)
            elif paths is not None:
                self.files = [known for known in self.files if known not in mine]
            self.add([fmt_node, *facts.get('attached', [])], paths[0] if paths else None)
        return note

    def undo(self, mon: Monitor) -> None:
        """Detach and delete everything, newest first (the start failed)."""
        for node in reversed(self.nodes):
            with contextlib.suppress(BackendError):
                mon.execute('blockdev-del', {'node-name': node})
        for path in self.files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.nodes, self.files = [], []
        self.save()


def checked_sources(mon: Monitor, name: str,
                    plan: list[Record]) -> tuple[list[Node], list[str]]:
    """The block nodes (query-named-block-nodes) and the node of each disk of ``plan``,
    whose bitmap to read (``require``) is checked to be there and usable.

    :raise InvalidArgument: unknown device, missing or unusable bitmap.
    """
    blocks = mon.execute('query-block')
    nodes = mon.execute('query-named-block-nodes', {'flat': True})
    sources = [_nodes.resolve_device(disk['device'], blocks, nodes, name) for disk in plan]
    for disk, node in zip(plan, sources):
        if disk.get('require'):
            _planning.check_mark(name, {'device': disk['device'], 'node': node,
                                        'marks': marks(bitmaps(nodes, node))},
                                 disk['require'], 'bitmap')
    return nodes, sources


def start_group(mon: Monitor, waiter: Waiter, name: str, params: dict[str, t.Any],
                plan: list[Record], note: Note,
                before_reset: t.Callable[[], None] | None = None) -> None:
    """Start backup ``name``: one member job per disk of ``plan``.

    Each plan entry has ``device``, ``member``, ``target``, ``format``, ``sync``,
    ``bitmap``, ``bitmap_mode``, ``backing``, ``backing_format``, ``reset`` and
    ``require`` (a bitmap that must exist).  ``before_reset``, if given, is called
    just before the first bitmap is cleared, added or removed.  On failure
    everything attached or created is undone before the error is raised.

    :raise InvalidArgument: unknown device, missing bitmap, existing target, ...
    :raise BackendError: QEMU refused a command.
    """
    nodes, sources = checked_sources(mon, name, plan)
    remove: list[tuple[str, str]] = []
    resets: list[Record] = []
    for disk, node in zip(plan, sources):
        dropped, actions = reset_actions(node, disk.get('reset') or [], bitmaps(nodes, node))
        remove += [(node, bitmap) for bitmap in dropped]
        resets += actions
    perf = perf_arguments(name, params['perf'], mon.execute('query-qmp-schema')) \
        if params.get('perf') else {}
    note(members=[disk['member'] for disk in plan],
         disks=[dict({key: disk.get(key) for key in _chains.DISK_KEYS}, member=disk['member'],
                     node=node) for disk, node in zip(plan, sources)])
    attached = _Attached(note)
    try:
        targets = [_prepare_target(mon, waiter, name, disk, _nodes.node(nodes, node), attached,
                                   params.get('target_mode'))
                   for disk, node in zip(plan, sources)]
        if remove or resets:
            (before_reset or _nothing)()  # from here on the chain may change
        for node, bitmap in remove:
            mon.execute('block-dirty-bitmap-remove', {'node': node, 'name': bitmap})
        if resets:
            mon.execute('transaction', {'actions': resets})
        mon.execute('transaction', {
            'actions': [backup_action(disk, node, target, params, perf)
                        for disk, node, target in zip(plan, sources, targets)],
            'properties': {'completion-mode': 'grouped'}})
    except VmjobsError:
        attached.undo(mon)
        raise


def _prepare_target(mon: Monitor, waiter: Waiter, name: str, disk: Record, source: Node,
                    attached: _Attached, mode: int | None = None) -> str:
    """Create and attach the target of one member; return its format node.

    :raise InvalidArgument: the target exists, is a link, or its directory is unsafe.
    """
    checked = _qmp_images.TARGETS.check(name, disk['target'])
    if checked.exists:
        raise InvalidArgument(f"job '{name}': target {disk['target']} of disk '{disk['device']}' "
                              'already exists; choose another path', name)
    path, fmt = checked.path, disk['format']
    fmt_node, file_node = _nodes.target_node_names(disk['member'])
    backing = None
    if disk.get('backing'):
        backing = (_chains.backing_name(disk['target'], disk['backing']), disk['backing_format'])
    _qmp_images.create_image(mon, waiter, disk['member'], path, fmt,
                             int(source['image']['virtual-size']), attached.member_note(fmt_node),
                             backing, mode)
    args: Record = {'driver': fmt, 'node-name': fmt_node, 'file': file_node}
    if fmt == 'qcow2':
        args['backing'] = None  # the job writes changed clusters only; never read the base
    mon.execute('blockdev-add', args)
    return fmt_node
