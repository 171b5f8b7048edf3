# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit test set-up: make the collection importable, load the recorded QEMU replies.

Under ``ansible-test units`` (or with ``build/collections`` on ``PYTHONPATH``, as
``scripts/test`` does) ``ansible_collections.vmjobs.qemu`` is importable already.
Under plain pytest it is not: then a temporary directory gets
``ansible_collections/vmjobs/qemu`` as a symlink to the repository root and goes
first on ``sys.path``.  ``ansible_collections`` and ``vmjobs`` are namespace
packages there, so no ``__init__.py`` is needed.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import typing as t

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def _link_collection() -> None:
    """Put ``ansible_collections/vmjobs/qemu`` (-> the repository) on ``sys.path``."""
    top = tempfile.mkdtemp(prefix='vmjobs-unit-')
    atexit.register(shutil.rmtree, top, True)
    namespace = os.path.join(top, 'ansible_collections', 'vmjobs')
    os.makedirs(namespace)
    os.symlink(REPO_ROOT, os.path.join(namespace, 'qemu'))
    sys.path.insert(0, top)
    importlib.invalidate_caches()


if not _importable('ansible_collections.vmjobs.qemu'):
    _link_collection()
    if not _importable('ansible_collections.vmjobs.qemu.plugins.module_utils'):
        raise ImportError(f'cannot make ansible_collections.vmjobs.qemu importable from {REPO_ROOT}')


def _load(name: str) -> t.Callable[[], dict[str, t.Any]]:
    text: list[str] = []

    def load() -> dict[str, t.Any]:
        if not text:
            with open(os.path.join(FIXTURES, name), encoding='utf-8') as handle:
                text.append(handle.read())
        return t.cast('dict[str, t.Any]', json.loads(text[0]))
    return load


_replies = _load('qemu-7.2-replies.json')
_nodes = _load('qemu-7.2-nodes.json')


@pytest.fixture
def replies() -> dict[str, t.Any]:
    """``qemu-7.2-replies.json``: query-jobs/query-block-jobs pairs, errors, query-block.

    A fresh copy for every test, so a test may change it.
    """
    return _replies()


@pytest.fixture
def nodes_replies() -> dict[str, t.Any]:
    """``qemu-7.2-nodes.json``: a backing chain, a VM's devices, job life cycles, events."""
    return _nodes()


_migrate = _load('qemu-7.2-migrate.json')


@pytest.fixture
def migrate_replies() -> dict[str, t.Any]:
    """``qemu-7.2-migrate.json``: query-migrate replies, by MigrationStatus, of QEMU 7.2."""
    return _migrate()
