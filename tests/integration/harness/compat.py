"""QEMU's policy for deprecated interfaces: the tests reject them.

With ``-compat deprecated-input=reject,deprecated-output=hide`` a QEMU fails any
command or argument its schema marks deprecated and leaves deprecated members out
of replies, so a test that relies on one fails today rather than on the QEMU that
removes it. Whether a binary takes the option is probed (it is parsed before
``-version`` exits), never inferred from a version number: qemu-system-x86_64 has it
since QEMU 6.0; qemu-storage-daemon has no such option as of QEMU 10.0.
"""

from __future__ import annotations

import functools
import subprocess

POLICY = 'deprecated-input=reject,deprecated-output=hide'


@functools.cache
def compat_args(binary: str, option: str) -> tuple[str, ...]:
    """``(option, POLICY)`` if ``binary`` accepts ``option POLICY``, else ``()``."""
    version = '-version' if option.startswith('-') and not option.startswith('--') else '--version'
    try:
        proc = subprocess.run([binary, option, POLICY, version], capture_output=True,
                              timeout=30, check=False)
    except OSError:
        return ()
    return (option, POLICY) if proc.returncode == 0 else ()
