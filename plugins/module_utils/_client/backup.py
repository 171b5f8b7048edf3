# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``backup`` module's logic: plan a multi-disk backup in its chain, start it, learn how it went.

This is a private module: its API may change between any two releases.

The history of each chain (see ``_chains``) is kept next to the job records, in
a ledger scope of its own (the VM's scope plus ``#backup-chains``), one record
per bitmap name.  Job records can be forgotten (``job state=absent forget=true``)
and tombstones are pruned; the chain history stays, so an incremental never
builds on the wrong image because a record it depended on was removed.
"""

from __future__ import annotations

import os
import typing as t

from .. import _targets
from .._args.backup import backup_params, resolve_disks
from .._args.common import split_start_only
from .._errors import InvalidArgument, VmjobsError
from .._ledger.files import Ledger
from .._model import chains as _chains
from .._model import planning as _planning
from .._model.session import Note, Record, Session
from .jobs import JobClient
from .starter import identity

#: Added to the VM's ledger scope for the scope that keeps the chains.
CHAIN_SCOPE_SUFFIX = '#backup-chains'


def chain_ledger(ledger: Ledger) -> Ledger:
    """Where the chains of the VM of ``ledger`` are kept (no I/O)."""
    return Ledger(ledger.root, ledger.scope + CHAIN_SCOPE_SUFFIX, ledger.retention_days)


class Backup:
    """Starts (or finds) one named multi-disk backup through a :class:`JobClient`.

    :param client: the VM's job client.
    :param exists: tests whether a path exists (injected for tests).
    """

    def __init__(self, client: JobClient, exists: t.Callable[[str], bool] = os.path.exists) -> None:
        self.client = client
        self.exists = exists

    @property
    def chains(self) -> Ledger:
        """Where the VM's chains are kept (a QMP VM's ledger has a root and a scope)."""
        return chain_ledger(self.client.ledger)

    def run(self, options: dict[str, t.Any], wait: str | None = None,
            wait_timeout: float = 300.0) -> dict[str, t.Any]:
        """Start backup ``options['name']`` unless it exists; optionally wait for it.

        :raise InvalidArgument: bad options, or the chain cannot take this backup.
        :raise JobConflict: the name is taken by a different job.
        :raise BackendError: QEMU refused (nothing is left behind).
        :raise JobFailed: the backup failed while waited for.
        :raise JobTimeout: the wait ran out.
        """
        name = options['name']
        params, start_only = split_start_only(backup_params(options, self.client.backend.nbd_tls))
        listed = [disk['device'] for disk in params['disks'] or []] or None
        with self.client.backend.session() as session:
            self.client.snapshot(session)  # concluded streams are dismissed before the graph is read
            sources = session.backup_sources(name, listed)
        planned: list[Record] = []

        def prepare(records: dict[str, Record], entries: dict[str, Record]) -> dict[str, t.Any]:
            planned[:] = self.plan(name, params, sources, records, entries)
            return start_only

        def launch(session: Session, job: str, given: dict[str, t.Any], note: Note) -> None:
            session.start_backup(job, given, planned, note, lambda: self.mark_reset(job, params))

        try:
            result = self.client.start(name, params, wait, wait_timeout, prepare, launch)
        except VmjobsError as err:
            seen = getattr(err, 'records', None) or [r for r in [getattr(err, 'record', None)] if r]
            self.learn(name, params, seen)
            raise
        self.learn(name, params, result.records)
        return dict(result.start_output(), backup=self.summary(name, params, planned))

    # -- planning ---------------------------------------------------------------------------------

    def plan(self, name: str, params: dict[str, t.Any], sources: list[Record],
             records: dict[str, Record], entries: dict[str, Record]) -> list[Record]:
        """One plan entry per disk (ledger lock held); record the attempt in its chain.

        The same rules for every backend: only how a disk's changes are marked
        (``Backend.change_marks``) differs.

        :raise InvalidArgument: the backup cannot start (nothing is recorded then).
        """
        by_device = {source['device']: source for source in sources}
        pull = _chains.is_pull(params)
        disks = resolve_disks(name, params, [source['device'] for source in sources])
        seen: dict[str, str] = {}
        for disk in disks:
            node = by_device[disk['device']]['node']
            if node in seen:
                raise InvalidArgument(f"job '{name}': disks '{seen[node]}' and "
                                      f"'{disk['device']}' are the same node {node}", name)
            seen[node] = disk['device']
            if not pull:
                self._check_target(name, disk)
        bitmap, mode = params['bitmap'], params['mode']
        kind = self.client.backend.change_marks
        attempts: list[Record] = []
        if bitmap is not None:
            chain = self.chains.get(bitmap) or {'name': bitmap, 'attempts': []}
            attempts = _chains.learn(chain['attempts'], records, entries)
            chain = self._save(chain, attempts)
        plan = []
        for disk in disks:
            step = _planning.plan_step(name, disk['device'], mode, bitmap, attempts, records,
                                       self.exists, by_device[disk['device']], kind)
            plan.append(dict(step, device=disk['device'], node=by_device[disk['device']]['node'],
                             target=disk['target'], format=disk['format'],
                             member=_chains.member_id(name, disk['device'])))
            if pull:
                plan[-1].update(_planning.pull_step(plan[-1], bitmap))
        if len({step['member'] for step in plan}) != len(plan):
            raise InvalidArgument(f"job '{name}': two disks would get the same job id; "
                                  'rename the backup', name)
        if bitmap is not None:
            attempt = {'job': name, 'mode': mode, 'state': 'starting', 'outcome': None,
                       **({'delivery': 'pull'} if pull else {}),
                       'identity': _chains.normalise(identity(params)),
                       'disks': {step['device']: {'target': step['target'],
                                                  'format': step['format'],
                                                  'backing': step['backing'],
                                                  'mode': step['mode']}
                                 for step in plan}}
            self._save(chain, _chains.prune([*attempts, attempt]))
        return plan

    def _check_target(self, name: str, disk: Record) -> None:
        target = disk['target']
        if os.path.islink(target):
            raise InvalidArgument(_targets.link_message(name, target), name)
        if self.exists(target):
            raise InvalidArgument(f"job '{name}': target {target} of disk '{disk['device']}' "
                                  'already exists; choose another path', name)
        directory = os.path.dirname(target)
        if not self.client.check_mode and not os.path.isdir(directory):
            raise InvalidArgument(f"job '{name}': the directory {directory} of target {target} "
                                  'does not exist', name)

    def _save(self, chain: Record, attempts: list[Record]) -> Record:
        """Write the chain record ``chain`` (as read) with ``attempts`` if they changed; return
        it as it now stands. ``marking`` keeps, unpruned, every backup that made a change mark
        (a libvirt checkpoint is named after it), for forgetting the chain."""
        if self.client.check_mode or attempts == chain['attempts']:
            return chain
        marking = [*chain.get('marking', []),
                   *(a['job'] for a in attempts if a['mode'] != 'differential')]
        return self.chains.put(dict(chain, attempts=attempts,
                                    marking=list(dict.fromkeys(marking))))

    def mark_reset(self, name: str, params: dict[str, t.Any]) -> None:
        """Note that full backup ``name`` now clears its bitmaps (the start holds the lock).

        Written ahead: should the start fail from here on, the chain is broken.
        """
        bitmap = params['bitmap']
        chain = self.chains.get(bitmap) if bitmap else None
        if chain is None:
            return
        attempts = [dict(a) for a in chain['attempts']]
        mine = [a for a in attempts if a['job'] == name]
        if mine:
            mine[-1]['reset'] = True
            self.chains.put(dict(chain, attempts=attempts))

    # -- after the start --------------------------------------------------------------------------

    def learn(self, name: str, params: dict[str, t.Any], records: t.Sequence[Record]) -> None:
        """Keep in the chain what became of backup ``name`` (started? outcome?)."""
        bitmap = params.get('bitmap')
        if bitmap is None or self.client.check_mode:
            return
        with self.client.ledger.lock():
            chain = self.chains.get(bitmap)
            if chain is None:
                return
            entries = {entry['name']: entry for entry in self.client.ledger.all()}
            attempts = _chains.learn(chain['attempts'], {r['name']: r for r in records},
                                     entries, only=name)
            self._save(chain, attempts)

    def summary(self, name: str, params: dict[str, t.Any], planned: list[Record]) -> Record:
        """What the backup copies where: mode, bitmap and each disk's target, backing file,
        mode and (for ``auto``) why a disk gets a full copy."""
        entry = self.client.ledger.get(name) or {}
        disks = entry.get('disks') or planned
        bitmap = params['bitmap']
        if bitmap is None:
            marks: list[str] = []
        elif self.client.backend.change_marks == 'bitmap':
            marks = [bitmap, _chains.companion(bitmap)]
        else:
            marks = [entry['checkpoint']] if entry.get('checkpoint') else []
        keys = _chains.DISK_KEYS + (_chains.PULL_KEYS if _chains.is_pull(params) else ())
        return {'mode': params['mode'], 'bitmap': bitmap,
                'delivery': params.get('delivery', 'push'),
                'disks': [{key: disk.get(key) for key in keys} for disk in disks],
                'marks': [{'device': disk['device'], 'names': marks} for disk in disks
                          if marks]}
