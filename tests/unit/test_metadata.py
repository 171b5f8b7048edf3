"""The collection's support claims match what the tests run (requirements/ of each stack)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STACKS = {'floor': REPO / 'requirements', 'current': REPO / 'requirements' / 'current'}


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file (comments and -r lines skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r'^([A-Za-z0-9._-]+)==(\S+)', line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def core_minor(stack: str) -> tuple[int, int]:
    major, minor = pins(STACKS[stack] / 'test.txt')['ansible-core'].split('.')[:2]
    return int(major), int(minor)


@pytest.mark.parametrize('stack', sorted(STACKS))
def test_every_tested_ansible_core_has_an_empty_sanity_ignore_file(stack: str) -> None:
    major, minor = core_minor(stack)
    ignore = REPO / 'tests' / 'sanity' / f'ignore-{major}.{minor}.txt'
    assert ignore.is_file(), f'{ignore} is missing'
    assert ignore.read_text().strip() == '', f'{ignore} must stay empty'


def test_requires_ansible_is_the_oldest_tested_ansible_core() -> None:
    runtime = yaml.safe_load((REPO / 'meta' / 'runtime.yml').read_text())
    oldest = min(core_minor(stack) for stack in STACKS)
    assert runtime['requires_ansible'] == f'>={oldest[0]}.{oldest[1]}.0'
    for meta in (REPO / 'roles').glob('*/meta/main.yml'):
        info = yaml.safe_load(meta.read_text())['galaxy_info']
        assert info['min_ansible_version'] == f'{oldest[0]}.{oldest[1]}', meta


def test_execution_environment_names_every_runtime_package() -> None:
    ee = yaml.safe_load((REPO / 'meta' / 'execution-environment.yml').read_text())
    deps = ee['dependencies']
    for key in ('python', 'system'):
        assert (REPO / deps[key]).is_file(), deps[key]
    named = {re.split(r'[<>=!~\[ ]', line.strip(), maxsplit=1)[0].lower()
             for line in (REPO / deps['python']).read_text().splitlines()
             if line.strip() and not line.startswith('#')}
    for stack, folder in STACKS.items():
        assert set(pins(folder / 'runtime.txt')) <= named, stack


def test_galaxy_names_where_the_project_lives() -> None:
    galaxy = yaml.safe_load((REPO / 'galaxy.yml').read_text())
    for key in ('repository', 'documentation', 'issues'):
        assert str(galaxy.get(key, '')).startswith('https://'), key
