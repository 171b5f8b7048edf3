# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lxml, imported once: a libvirt domain's XML and ``job_info format: xml`` need it.

This is a private module: its API may change between any two releases.
"""

from __future__ import annotations

__all__ = ['HAS_LXML', 'LXML_IMPORT_ERROR', 'etree']

try:
    from lxml import etree
    HAS_LXML = True
    LXML_IMPORT_ERROR: ImportError | None = None
except ImportError as err:  # pragma: no cover - reported by the modules
    etree = None
    HAS_LXML = False
    LXML_IMPORT_ERROR = err
