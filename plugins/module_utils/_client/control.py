# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driving a named job to a state (the ``job`` module's logic).

This is a private module: its API may change between any two releases.

A verb that becomes legal later on the job's normal path (complete on a mirror
still copying, finalize before pending) is waited for; one that can never
apply fails at once, naming the status and the verbs QEMU allows in it.
"""

from __future__ import annotations

import typing as t

from .._errors import InvalidArgument, JobNotFound, JobStateError
from .._model import closing as _closing
from .._model import verdicts as _verdicts
from .._model import vocabulary as _vocabulary
from .._model.chains import is_pull
from .._model.session import Record
from .._model.vocabulary import Verdict
from .backup import Backup
from .jobs import JobClient
from .reads import Result, describe
from .tombstones import dismiss, forget_entry

STATES = ('completed', 'finalized', 'paused', 'running', 'canceled', 'absent')


class JobDriver:
    """Applies the ``job`` module's desired state through a :class:`JobClient`."""

    def __init__(self, client: JobClient, wait: bool = True, wait_timeout: float = 300.0) -> None:
        self.client = client
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.verdict: str | None = None

    def run(self, name: str, state: str | None = None, speed: int | None = None,
            cancel: bool = False, forget: bool = False, copy_mode: str | None = None,
            verdict: str | None = None) -> Result:
        """Drive ``name`` to ``state`` (and/or ``speed``, and/or a mirror's ``copy_mode``).

        ``verdict`` (``succeeded`` or ``failed``) ends a pull backup with ``state=absent``:
        what its reader says of the read.

        :raise JobNotFound: no such job (except for ``state=absent``).
        :raise JobStateError: the state can never be reached from the current status.
        :raise InvalidArgument: a verdict for a job that is no pull backup.
        :raise JobTimeout: a wait ran out.
        """
        self.client.acted_on = []
        record, entry = self.client.get(name, settle=True)
        if record['status'] == _vocabulary.ABSENT and entry is None:
            if state == 'absent':
                return Result(False, [record])
            raise JobNotFound(f"job '{name}' not found on {self.client.backend.scope}",
                              name)
        if verdict is not None and not is_pull(entry):
            raise InvalidArgument(f"job '{name}' ({record['type']}): verdict is the reader's "
                                  'word on a pull backup (backup delivery: pull); this job '
                                  'is none', name)
        self.verdict = verdict
        changed = False
        if speed is not None and record['speed'] != speed:
            self._require(record, 'set-speed', 'change the speed of')
            changed = self._verb(name, 'set-speed', speed=speed)
            record = self.client.get(name)[0]
        if copy_mode is not None and record.get('copy_mode', 'background') != copy_mode:
            self._change_copy_mode(record, copy_mode)
            changed = True
            record = self.client.get(name)[0]
        if state is None:
            return Result(changed, [record])
        result = getattr(self, '_to_' + state)(record, entry, cancel, forget)
        return Result(changed or result.changed or self.client.acted, result.records,
                      result.elapsed)

    # -- helpers ------------------------------------------------------------------------------

    def _verb(self, name: str, verb: str, **arguments: t.Any) -> bool:
        with self.client.backend.session() as session:
            self.client.apply(session, name, verb, **arguments)
        return True

    def _await(self, name: str, verdict: t.Callable[[Record, Record | None], Verdict],
               target: str) -> Record:
        return self.client.await_jobs([name], verdict, self.wait_timeout, target).record

    @staticmethod
    def _require(record: Record, verb: str, doing: str) -> None:
        if not _vocabulary.verb_allowed(verb, record['status'], record['type']):
            raise JobStateError(
                f"cannot {doing} job '{record['name']}' ({record['type']}): it is "
                f"{describe(record)}; verbs allowed now: {_vocabulary.allowed_text(record['status'], record['type'])}",
                record['name'], record)

    def _refuse(self, record: Record, why: str) -> JobStateError:
        return JobStateError(
            f"job '{record['name']}' ({record['type']}) is {describe(record)}: {why}; "
            f"verbs allowed now: {_vocabulary.allowed_text(record['status'], record['type'])}",
            record['name'], record)

    def _then_wait(self, record: Record, verdict: t.Callable[[Record, Record | None], Verdict],
                   target: str) -> Result:
        if self.wait and not self.client.check_mode:
            return Result(True, [self._await(record['name'], verdict, target)])
        return Result(True, [record])

    # -- states ---------------------------------------------------------------------------------

    def _to_completed(self, record: Record, entry: Record | None, *_: bool) -> Result:
        status, name = record['status'], record['name']
        if record['type'] not in _vocabulary.READY_TYPES or (entry or {}).get('active') is False:
            raise self._refuse(record, 'only mirror and active commit jobs can be completed')
        finished = status in ('concluded', _vocabulary.ABSENT) and record['outcome'] == 'succeeded'
        if status in ('waiting', 'pending') or finished:
            return Result(False, [record])
        if status == 'standby':
            raise self._refuse(record, 'it is paused, and QEMU completes a paused job only once '
                                       'it runs again; resume it first (state: running)')
        if status in ('created', 'running', 'paused'):
            if self.client.check_mode:
                return Result(True, [record])
            record = self.client.await_jobs(
                [name], lambda r, e: _verdicts.wait_verdict(r, 'ready', e), self.wait_timeout,
                'ready').record
        if record['status'] not in ('ready', 'standby'):
            raise self._refuse(record, 'it cannot be completed')
        self._verb(name, 'complete')
        return self._then_wait(record, _verdicts.left_ready, 'completion')

    def _to_finalized(self, record: Record, entry: Record | None, *_: bool) -> Result:
        status, name = record['status'], record['name']
        if status in ('concluded', _vocabulary.ABSENT):
            return Result(False, [record])
        if status in ('ready', 'standby'):
            raise self._refuse(record, 'complete it first (state: completed)')
        if status != 'pending':
            auto = record.get('auto_finalize')
            if auto is None:  # not a block job (create): QEMU finalizes it itself
                auto = ((entry or {}).get('params') or {}).get('auto_finalize', True)
            if auto:
                if self.client.check_mode:
                    return Result(False, [record])
                return Result(False, [self._await(name, _verdicts.concluded, 'concluded')])
            if self.client.check_mode:
                return Result(True, [record])
            record = self._await(name, _verdicts.pending, 'pending')
        self._verb(name, 'finalize')
        return self._then_wait(record, _verdicts.concluded, 'concluded')

    def _to_paused(self, record: Record, *_: t.Any) -> Result:
        if record['status'] in ('paused', 'standby'):
            return Result(False, [record])
        self._require(record, 'pause', 'pause')
        self._verb(record['name'], 'pause')
        self._note(record['name'], user_paused=True)
        return self._then_wait(record, _verdicts.is_paused, 'paused')

    def _to_running(self, record: Record, *_: t.Any) -> Result:
        if record['status'] in ('created', 'running', 'ready', 'waiting', 'pending'):
            return Result(False, [record])
        self._require(record, 'resume', 'resume')
        self._verb(record['name'], 'resume')
        self._note(record['name'], user_paused=False)
        return Result(True, [self.client.get(record['name'])[0]]
                      if not self.client.check_mode else [record])

    def _to_canceled(self, record: Record, entry: Record | None, *_: t.Any) -> Result:
        status = record['status']
        if status in ('concluded', _vocabulary.ABSENT):
            return Result(False, [record])
        if is_pull(entry):
            return self._end_pull(record, t.cast(Record, entry), 'canceled')
        changed = status != 'aborting'
        if changed:
            self._cancel(record)
        result = self._then_wait(record, _verdicts.concluded, 'concluded')
        return Result(changed, result.records, result.elapsed)

    def _cancel(self, record: Record) -> None:
        """Cancel a job; one that is READY (not paused) ends keeping its copy."""
        self._require(record, 'cancel', 'cancel')
        keep_copy = record['status'] == 'ready' and record['type'] in _closing.COPY_TYPES
        self._note(record['name'], cancel_requested=True, keep_copy=keep_copy)
        if keep_copy:
            self._verb(record['name'], 'cancel', keep_copy=True)
        else:
            self._verb(record['name'], 'cancel')

    def _change_copy_mode(self, record: Record, copy_mode: str) -> None:
        """Switch a running mirror to ``write-blocking`` (QEMU's ``block-job-change``)."""
        if record['type'] != 'mirror':
            raise self._refuse(record, 'only a mirror has a copy mode')
        if copy_mode != 'write-blocking':
            raise self._refuse(record, 'QEMU switches a running mirror from background to '
                                       'write-blocking only, not back')
        if record['status'] not in _vocabulary.CHANGE_STATUSES:
            raise self._refuse(record, 'its copy mode can be changed only while it runs')
        self._verb(record['name'], 'change', copy_mode=copy_mode)
        self._note(record['name'], copy_mode=copy_mode)

    def _end_pull(self, record: Record, entry: Record, verdict: str) -> Result:
        """End a running pull backup with ``verdict`` (written ahead into its entry) and
        wait for its members to conclude; closing its targets removes the overlays."""
        if self.client.check_mode:
            return Result(True, [record])
        # The monitor before the ledger's lock (see JobClient.start).
        with self.client.backend.session() as session, self.client.ledger.lock():
            entry = self.client.ledger.update(record['name'], verdict=verdict) or entry
            session.end_pull(entry, verdict)
        ended = self._await(record['name'], _verdicts.concluded, 'concluded')
        # Into the chain's history now: forgetting the job must not make its outcome unknown.
        Backup(self.client).learn(record['name'], entry.get('params') or {}, [ended])
        return Result(True, [ended])

    def _note(self, name: str, **facts: t.Any) -> None:
        """Remember facts about a job in its ledger entry."""
        with self.client.ledger.lock():
            self.client.ledger.update(name, **facts)

    def _to_absent(self, record: Record, entry: Record | None, cancel: bool,
                   forget: bool) -> Result:
        name = record['name']
        if not record['live']:
            return forget_entry(self.client, record, entry, forget)
        if is_pull(entry) and not t.cast(Record, entry).get('verdict'):
            ending = self.verdict or ('canceled' if cancel else None)
            if ending is None and record['status'] == 'concluded':
                ending = 'failed'  # QEMU ended it (a member failed): nothing to acknowledge
            if ending is None:
                raise self._refuse(record, "a pull backup ends with its reader's verdict: "
                                           'give verdict: succeeded or failed (or cancel: '
                                           'true, which counts as not acknowledged)')
            result = self._end_pull(record, t.cast(Record, entry), ending)
            if self.client.check_mode:
                return result
            record = result.record
        if record['status'] != 'concluded':
            if not cancel:
                raise self._refuse(record, 'set cancel: true to cancel it before dismissing, '
                                           'or wait for it to conclude')
            if self.client.check_mode:
                return Result(True, [record])
            if record['status'] != 'aborting':
                self._cancel(record)
            record = self._await(name, _verdicts.concluded, 'concluded')
        if self.client.check_mode:
            return Result(True, [record])
        dismiss(self.client, record, entry, forget)
        return Result(True, [dict(record, dismissed=True)])
