# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's vocabulary against the enums recorded from every tested QEMU.

``tests/unit/fixtures/qmp-enums/record.py`` records them from ``query-qmp-schema``; a new
QEMU in the test matrix adds a file there, and these tests fail until every status and
job type it has is mapped.
"""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._args.common import JOB_TYPES
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    migration as _migration,
)
from ansible_collections.vmjobs.qemu.plugins.module_utils._model import (
    vocabulary as _vocabulary,
)

RECORDED = sorted((pathlib.Path(__file__).parents[3] / 'fixtures' / 'qmp-enums').glob('*.json'))


def enums(path: pathlib.Path) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], json.loads(path.read_text()))


def test_both_tested_qemus_are_recorded() -> None:
    assert {enums(path)['qemu'].rsplit('.', 1)[0] for path in RECORDED} >= {'7.2', '10.0'}


@pytest.mark.parametrize('path', RECORDED, ids=[p.stem for p in RECORDED])
def test_every_migration_status_is_mapped(path: pathlib.Path) -> None:
    unmapped = set(enums(path)['MigrationStatus']) - set(_migration.STATUS_MAP) - {'none'}
    assert not unmapped, f"QEMU {enums(path)['qemu']}: map {sorted(unmapped)} in STATUS_MAP"


@pytest.mark.parametrize('path', RECORDED, ids=[p.stem for p in RECORDED])
def test_every_job_status_is_known(path: pathlib.Path) -> None:
    assert set(enums(path)['JobStatus']) - {'undefined', 'null'} == set(_vocabulary.STATUSES)


@pytest.mark.parametrize('path', RECORDED, ids=[p.stem for p in RECORDED])
def test_every_job_type_is_started_or_reported(path: pathlib.Path) -> None:
    known = set(JOB_TYPES) | _vocabulary.SNAPSHOT_TYPES
    assert not set(enums(path)['JobType']) - known, enums(path)['JobType']


def test_the_mapping_names_no_status_qemu_lacks() -> None:
    recorded = set().union(*(enums(path)['MigrationStatus'] for path in RECORDED))
    assert set(_migration.STATUS_MAP) <= recorded
