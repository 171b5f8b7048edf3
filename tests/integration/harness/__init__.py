"""Integration-test harness: real QEMU processes, real ansible runs (see ../README.md)."""

from __future__ import annotations

from .ansible import assert_ok, recap_changed, run_module, run_playbook
from .images import has_pattern, image_info, make_image, write_pattern
from .nodes import image_nodes
from .paths import COLLECTIONS_PATH, REPO, VENV_PYTHON
from .procs import Daemon
from .qmp import QMPCommandError, QMPConnection, QMPError

__all__ = [
    'COLLECTIONS_PATH', 'REPO', 'VENV_PYTHON', 'Daemon', 'QMPCommandError', 'QMPConnection',
    'QMPError', 'assert_ok', 'has_pattern', 'image_info', 'image_nodes', 'make_image',
    'recap_changed', 'run_module', 'run_playbook', 'write_pattern',
]
