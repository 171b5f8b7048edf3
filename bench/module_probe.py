# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module of the collection in this process and note when it hands over its result.

``python bench/module_probe.py MODULE ARGS_FILE`` runs the module the way ansible's
module wrapper does (``runpy``, in one process) and appends the time at which the
module called ``exit_json``/``fail_json`` to the file named by VJ_PROBE: the moment its
work is done, before the interpreter exits.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time

from ansible.module_utils import basic


def _stamp(original):  # type: ignore[no-untyped-def]
    def called(self, **kwargs):  # type: ignore[no-untyped-def]
        with open(os.environ['VJ_PROBE'], 'a', encoding='utf-8') as handle:
            handle.write(json.dumps({'returned': time.time()}) + '\n')
        return original(self, **kwargs)
    return called


def main() -> None:
    module, args_file = sys.argv[1], sys.argv[2]
    basic.AnsibleModule.exit_json = _stamp(basic.AnsibleModule.exit_json)  # type: ignore[method-assign]
    basic.AnsibleModule.fail_json = _stamp(basic.AnsibleModule.fail_json)  # type: ignore[method-assign]
    sys.argv = [module, args_file]
    runpy.run_module(f'ansible_collections.vmjobs.qemu.plugins.modules.{module}',
                     run_name='__main__', alter_sys=True)


if __name__ == '__main__':
    main()
