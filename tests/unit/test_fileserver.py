"""tests/support/fileserver.py: the host's address on Docker's bridge, without a Gateway too."""

from __future__ import annotations

import pytest

from tests.support.fileserver import bridge_host_address, interface_ipv4

pytestmark = pytest.mark.unit

# `docker network inspect bridge` on an engine's first start ever: a Subnet, no Gateway.
FIRST_START = {"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]},
               "Options": {"com.docker.network.bridge.name": "docker0"}}


def with_bridge(name: str, **ipam: str) -> dict:
    return {**FIRST_START, "IPAM": {"Config": [{"Subnet": "172.17.0.0/16", **ipam}]},
            "Options": {"com.docker.network.bridge.name": name}}


def test_the_bridge_interface_address_comes_first():
    assert interface_ipv4("lo") == "127.0.0.1" and bridge_host_address(with_bridge("lo")) == "127.0.0.1"
    assert bridge_host_address(with_bridge("lo", Gateway="172.17.0.1")) == "127.0.0.1"


def test_without_gateway_or_interface_the_subnet_first_host():
    assert interface_ipv4("lwtest-none0") is None
    assert bridge_host_address(with_bridge("lwtest-none0")) == "172.17.0.1"
    no_options = {"IPAM": {"Config": [{"Subnet": "10.9.8.0/24"}]}}
    assert bridge_host_address(no_options) == "10.9.8.1"


def test_recorded_gateway_when_the_interface_is_not_here():
    assert bridge_host_address(with_bridge("lwtest-none0", Gateway="172.17.0.9")) == "172.17.0.9"


def test_no_ipv4_subnet_is_a_clear_error():
    attrs = {"Name": "v6only", "IPAM": {"Config": [{"Subnet": "fd00::/64"}]}}
    with pytest.raises(ValueError, match="no IPv4 subnet"):
        bridge_host_address(attrs)
