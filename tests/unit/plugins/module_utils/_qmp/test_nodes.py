# Copyright (c) vmjobs.qemu contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/_qmp/nodes.py, on block graphs recorded from QEMU 7.2."""

from __future__ import annotations

import re
import typing as t

import pytest
from ansible_collections.vmjobs.qemu.plugins.module_utils._errors import InvalidArgument
from ansible_collections.vmjobs.qemu.plugins.module_utils._qmp import nodes as _nodes

Node = dict[str, t.Any]
CHAINS = ['chain', 'chain_relative']
FLAT = 'query-named-block-nodes flat'


def chain_nodes(nodes_replies: dict[str, t.Any], which: str = 'chain') -> list[Node]:
    return t.cast('list[Node]', nodes_replies[which][FLAT])


def image(which: str, level: str) -> str:
    """Path of a recorded chain's image: level is base, mid or top."""
    prefix = 'r' if which == 'chain_relative' else ''
    return f'/tmp/vjrec/{prefix}{level}.qcow2'


def names(chain: list[Node]) -> list[str]:
    return [n['node-name'] for n in chain]


# -- devices -------------------------------------------------------------------------------------

@pytest.mark.parametrize('qdev, device, expected', [
    ('/machine/peripheral/disk0/virtio-backend', 'disk0', True),
    ('/machine/peripheral/disk0', 'disk0', True),
    ('disk0', 'disk0', True),
    ('/machine/peripheral/disk01/virtio-backend', 'disk0', False),
    ('/machine/peripheral/disk1/virtio-backend', 'disk0', False),
    ('/machine/peripheral-anon/device[0]/virtio-backend', 'device[0]', False),
    ('', 'disk0', False),
])
def test_qdev_matches(qdev: str, device: str, expected: bool) -> None:
    assert _nodes.qdev_matches(qdev, device) is expected


def test_inserted_nodes_of_a_recorded_vm(nodes_replies: dict[str, t.Any]) -> None:
    assert _nodes.inserted_nodes(nodes_replies['vm']['query-block']) == {
        'drive0': '#block370',          # -drive id
        'vd0': '#block370',             # the qdev id of the device using it
        'disk1': 'disk1-fmt',           # -blockdev on -device id=disk1
        '/machine/peripheral-anon/device[0]/virtio-backend': 'anon-fmt',
    }


def test_inserted_nodes_of_the_first_recording(replies: dict[str, t.Any]) -> None:
    assert _nodes.inserted_nodes(replies['vm_query_block']) == {'disk0': 'disk0-fmt'}


def test_inserted_nodes_skips_empty_drives() -> None:
    blocks = [{'device': 'cd0', 'qdev': '/machine/peripheral/cd0/x', 'locked': False},
              {'device': 'cd1', 'inserted': None}]
    assert _nodes.inserted_nodes(blocks) == {}
    assert _nodes.inserted_nodes([]) == {}


@pytest.mark.parametrize('device, expected', [
    ('disk1-fmt', 'disk1-fmt'),     # a node name
    ('#block246', '#block246'),     # even an automatic one
    ('disk1', 'disk1-fmt'),         # a qdev id
    ('vd0', '#block370'),
    ('drive0', '#block370'),        # a -drive id
])
def test_resolve_device(nodes_replies: dict[str, t.Any], device: str, expected: str) -> None:
    vm = nodes_replies['vm']
    assert _nodes.resolve_device(device, vm['query-block'], vm[FLAT], 'j1') == expected


def test_resolve_an_unknown_device(nodes_replies: dict[str, t.Any]) -> None:
    vm = nodes_replies['vm']
    with pytest.raises(InvalidArgument) as err:
        _nodes.resolve_device('disk9', vm['query-block'], vm[FLAT], 'j1')
    message = str(err.value)
    assert message.startswith("job 'j1': no block node or device named 'disk9' (devices: ")
    assert 'disk1, drive0, vd0' in message
    assert 'nodes: anon-fmt, disk1-fmt)' in message
    assert '#block' not in message
    assert err.value.job == 'j1'


def test_resolve_a_device_of_an_empty_daemon(nodes_replies: dict[str, t.Any]) -> None:
    with pytest.raises(InvalidArgument, match=re.escape('(devices: none; nodes: none)')):
        _nodes.resolve_device('disk0', nodes_replies['chain']['query-block'], [], 'j1')


# -- backing chains --------------------------------------------------------------------------------

def test_node(nodes_replies: dict[str, t.Any]) -> None:
    nodes = chain_nodes(nodes_replies)
    assert _nodes.node(nodes, 'top')['file'] == '/tmp/vjrec/top.qcow2'
    with pytest.raises(KeyError):
        _nodes.node(nodes, 'nope')


def test_the_recording_is_a_flat_list(nodes_replies: dict[str, t.Any]) -> None:
    # flat=true leaves out image.backing-image: the chain must come from backing_file.
    for entry in chain_nodes(nodes_replies):
        assert 'backing-image' not in entry['image']
    nested = nodes_replies['chain']['query-named-block-nodes']
    assert 'backing-image' in _nodes.node(nested, 'top')['image']


@pytest.mark.parametrize('which, flat', [
    ('chain', True), ('chain', False), ('chain_relative', True),
])
def test_backing_chain(nodes_replies: dict[str, t.Any], which: str, flat: bool) -> None:
    nodes = nodes_replies[which][FLAT if flat else 'query-named-block-nodes']
    chain = _nodes.backing_chain(nodes, 'top')
    assert [n['file'] for n in chain] == [image(which, 'top'), image(which, 'mid'),
                                          image(which, 'base')]
    assert all(n['drv'] == 'qcow2' for n in chain)
    assert chain[1]['node-name'].startswith('#block')


@pytest.mark.parametrize('which', CHAINS)
def test_backing_chain_from_the_middle(nodes_replies: dict[str, t.Any], which: str) -> None:
    nodes = chain_nodes(nodes_replies, which)
    middle = _nodes.backing_chain(nodes, 'top')[1]['node-name']
    chain = _nodes.backing_chain(nodes, middle)
    assert [n['file'] for n in chain] == [image(which, 'mid'), image(which, 'base')]


def test_backing_chain_of_an_image_without_backing(nodes_replies: dict[str, t.Any]) -> None:
    vm = nodes_replies['vm']
    assert names(_nodes.backing_chain(vm[FLAT], 'disk1-fmt')) == ['disk1-fmt']


def test_backing_chain_stops_at_a_backing_file_that_is_not_open() -> None:
    nodes = [{'node-name': 'top', 'drv': 'qcow2', 'file': '/a/top.qcow2',
              'backing_file': '/a/gone.qcow2'}]
    assert names(_nodes.backing_chain(nodes, 'top')) == ['top']


def test_backing_chain_never_loops() -> None:
    nodes = [
        {'node-name': 'a', 'drv': 'qcow2', 'file': '/x/a', 'backing_file': '/x/b'},
        {'node-name': 'b', 'drv': 'qcow2', 'file': '/x/b', 'backing_file': '/x/a'},
        {'node-name': 'b-file', 'drv': 'file', 'file': '/x/b'},
    ]
    assert names(_nodes.backing_chain(nodes, 'a')) == ['a', 'b']


def test_backing_chain_of_an_unknown_node(nodes_replies: dict[str, t.Any]) -> None:
    with pytest.raises(KeyError):
        _nodes.backing_chain(chain_nodes(nodes_replies), 'nope')


@pytest.mark.parametrize('which', CHAINS)
@pytest.mark.parametrize('level', ['top', 'mid', 'base'])
def test_resolve_in_chain_by_path(nodes_replies: dict[str, t.Any], which: str,
                                  level: str) -> None:
    nodes = chain_nodes(nodes_replies, which)
    expected = [n for n in nodes if n['file'] == image(which, level) and n['drv'] == 'qcow2']
    found = _nodes.resolve_in_chain(nodes, 'top', image(which, level), 'j1', 'base')
    assert found == expected[0]['node-name']


def test_resolve_in_chain_by_a_path_with_dots(nodes_replies: dict[str, t.Any]) -> None:
    nodes = chain_nodes(nodes_replies)
    base = _nodes.backing_chain(nodes, 'top')[2]['node-name']
    assert _nodes.resolve_in_chain(nodes, 'top', '/tmp/vjrec/x/../base.qcow2', 'j1',
                                   'base') == base


def test_resolve_in_chain_by_node_name(nodes_replies: dict[str, t.Any]) -> None:
    nodes = chain_nodes(nodes_replies)
    base = _nodes.backing_chain(nodes, 'top')[2]['node-name']
    assert _nodes.resolve_in_chain(nodes, 'top', base, 'j1', 'base') == base
    assert _nodes.resolve_in_chain(nodes, 'top', 'top', 'j1', 'top') == 'top'


@pytest.mark.parametrize('wanted', ['/tmp/vjrec/other.qcow2', 'base.qcow2', '#block060'])
def test_resolve_in_chain_refuses_what_is_not_in_it(nodes_replies: dict[str, t.Any],
                                                    wanted: str) -> None:
    # '#block060' is the file node of top: a node, but not a format node of the chain.
    with pytest.raises(InvalidArgument) as err:
        _nodes.resolve_in_chain(chain_nodes(nodes_replies), 'top', wanted, 'j1', 'base')
    message = str(err.value)
    assert message.startswith(f"job 'j1': base '{wanted}' is not in the backing chain of 'top'")
    assert 'top (/tmp/vjrec/top.qcow2) -> #block' in message
    assert message.endswith('(/tmp/vjrec/base.qcow2))')


def test_resolve_in_chain_below_the_top(nodes_replies: dict[str, t.Any]) -> None:
    # The top is not part of the chain of its own backing node.
    nodes = chain_nodes(nodes_replies)
    middle = _nodes.backing_chain(nodes, 'top')[1]['node-name']
    with pytest.raises(InvalidArgument, match='is not in the backing chain'):
        _nodes.resolve_in_chain(nodes, middle, '/tmp/vjrec/top.qcow2', 'j1', 'top')


# -- target node names -------------------------------------------------------------------------------

@pytest.mark.parametrize('job', ['b', 'backup-disk0-20261121', 'x' * 128])
def test_target_node_names(job: str) -> None:
    fmt_node, file_node = _nodes.target_node_names(job)
    assert fmt_node != file_node
    assert fmt_node[:-1] == file_node[:-1]
    for name in (fmt_node, file_node):
        assert len(name) <= 31
        assert re.fullmatch(r'[A-Za-z][A-Za-z0-9._-]*', name)
    assert _nodes.target_node_names(job) == (fmt_node, file_node)


def test_target_node_names_differ_per_job() -> None:
    names = {_nodes.target_node_names(f'job{n}') for n in range(200)}
    assert len(names) == 200
