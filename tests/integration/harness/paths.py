"""Where things are: the checkout, its .venv and the collection path."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = REPO / '.venv' / 'bin'
VENV_PYTHON = VENV_BIN / 'python'
COLLECTIONS_PATH = REPO / 'build' / 'collections'
