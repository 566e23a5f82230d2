"""hvac's `sys` backend against a fresh cluster: init status, initialize, unseal (hex and base64
shares, progress, reset, bad shares), seal status, health (every node role and its codes), leader
status, and seal.

This module starts its own uninitialized 3-node cluster. Its tests run in file order (pytest's
default) and walk the cluster through its life: uninitialized -> initialized and sealed ->
unsealed -> one node sealed again.
"""

from __future__ import annotations

from collections.abc import Iterator

import hvac
import pytest
import requests
from hvac import exceptions

from cluster import Cluster, start_cluster, wait_for


@pytest.fixture(scope="module")
def fresh() -> Iterator[Cluster]:
    """A 3-node cluster that nobody has initialized."""
    started = start_cluster()
    try:
        yield started
    finally:
        started.stop(keep_logs=True)


def anonymous(node_url: str) -> hvac.Client:
    """An hvac client without a token."""
    return hvac.Client(url=node_url, timeout=30)


@pytest.fixture(scope="module")
def init_result(fresh: Cluster) -> dict:
    """`sys.initialize(5, 3)` through hvac on node 1 (retried while no leader is elected)."""
    client = anonymous(fresh.nodes[0].url)

    def attempt() -> dict | None:
        try:
            return client.sys.initialize(secret_shares=5, secret_threshold=3)
        except (exceptions.VaultDown, exceptions.InternalServerError, exceptions.UnexpectedError):
            return None

    result = wait_for("sys/init through hvac", attempt)
    fresh.root_token = result["root_token"]
    fresh.keys_hex = result["keys"]
    fresh.keys_base64 = result["keys_base64"]
    return result


def test_uninitialized_status(fresh: Cluster) -> None:
    for node in fresh.nodes:
        client = anonymous(node.url)
        assert client.sys.is_initialized() is False
        assert client.sys.read_init_status() == {"initialized": False}
        status = client.sys.read_seal_status()
        assert status["initialized"] is False
        assert status["sealed"] is True
        assert client.sys.is_sealed() is True


def test_health_uninitialized(fresh: Cluster) -> None:
    client = anonymous(fresh.nodes[0].url)
    head = client.sys.read_health_status()
    assert isinstance(head, requests.Response)
    assert head.status_code == 501
    get = client.sys.read_health_status(method="GET")
    assert get.status_code == 501
    assert get.json()["initialized"] is False
    overridden = client.sys.read_health_status(method="GET", uninit_code=200)
    assert isinstance(overridden, dict)
    assert overridden["initialized"] is False


def test_initialize(fresh: Cluster, init_result: dict) -> None:
    assert len(init_result["keys"]) == 5
    assert len(init_result["keys_base64"]) == 5
    assert all(len(bytes.fromhex(key)) > 0 for key in init_result["keys"])
    assert init_result["root_token"]
    for node in fresh.nodes:
        client = anonymous(node.url)
        wait_for(f"node {node.id} to see the init", lambda c=client: c.sys.is_initialized() or None)
        status = client.sys.read_seal_status()
        assert status["type"] == "shamir"
        assert status["sealed"] is True
        assert status["t"] == 3
        assert status["n"] == 5
        assert status["progress"] == 0


def test_initialize_twice_is_refused(fresh: Cluster, init_result: dict) -> None:
    with pytest.raises(exceptions.InvalidRequest):
        anonymous(fresh.nodes[1].url).sys.initialize(secret_shares=5, secret_threshold=3)


def test_sealed_node_refuses_requests(fresh: Cluster, init_result: dict) -> None:
    client = hvac.Client(url=fresh.nodes[0].url, token=fresh.root_token, timeout=30)
    with pytest.raises(exceptions.VaultDown):
        client.secrets.kv.v2.read_secret_version("anything", raise_on_deleted_version=True)
    health = client.sys.read_health_status(method="GET")
    assert health.status_code == 503
    assert health.json()["sealed"] is True


def test_unseal_progress_and_reset(fresh: Cluster, init_result: dict) -> None:
    client = anonymous(fresh.nodes[0].url)
    status = client.sys.submit_unseal_key(key=init_result["keys"][0])
    assert status["sealed"] is True
    assert status["progress"] == 1
    assert status["t"] == 3
    status = client.sys.submit_unseal_key(reset=True)
    assert status["progress"] == 0
    assert status["sealed"] is True


def test_unseal_with_a_wrong_share_is_refused(fresh: Cluster, init_result: dict) -> None:
    client = anonymous(fresh.nodes[0].url)
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.submit_unseal_key(key="00" * 33)
    assert client.sys.read_seal_status()["sealed"] is True


def test_unseal_every_node(fresh: Cluster, init_result: dict) -> None:
    hex_keys, b64_keys = init_result["keys"], init_result["keys_base64"]
    key_sets = [
        hex_keys[:3],  # hex shares
        b64_keys[2:5],  # base64 shares
        [hex_keys[4], b64_keys[0], hex_keys[2]],  # mixed encodings, any 3 of 5
    ]
    for node, keys in zip(fresh.nodes, key_sets, strict=True):
        client = anonymous(node.url)
        status = client.sys.submit_unseal_keys(keys)
        assert status["sealed"] is False, f"node {node.id}: {status}"
        assert client.sys.is_sealed() is False
        assert status["cluster_id"]
        assert status["cluster_name"]


def test_root_token_works_on_every_node(fresh: Cluster, init_result: dict) -> None:
    for index, node in enumerate(fresh.nodes):
        fresh.wait_serving(index)
        client = hvac.Client(url=node.url, token=init_result["root_token"], timeout=30)
        assert client.is_authenticated()
        assert client.auth.token.lookup_self()["data"]["policies"] == ["root"]


def test_leader_status(fresh: Cluster, init_result: dict) -> None:
    leader = fresh.wait_leader()
    statuses = [anonymous(node.url).sys.read_leader_status() for node in fresh.nodes]
    for index, status in enumerate(statuses):
        assert status["ha_enabled"] is True
        assert status["is_self"] is (index == leader)
        assert status["leader_address"] == fresh.nodes[leader].url
        assert isinstance(status["raft_committed_index"], int)
        assert isinstance(status["raft_applied_index"], int)


def test_health_of_leader_and_followers(fresh: Cluster, init_result: dict) -> None:
    leader = fresh.wait_leader()
    cluster_id = init_result_cluster_id(fresh)
    for index, node in enumerate(fresh.nodes):
        client = anonymous(node.url)
        if index == leader:
            health = client.sys.read_health_status(method="GET")
            assert isinstance(health, dict), health
            assert health["standby"] is False
            assert client.sys.read_health_status().status_code == 200
        else:
            response = client.sys.read_health_status(method="GET")
            assert response.status_code == 429
            health = response.json()
            assert health["standby"] is True
            assert client.sys.read_health_status().status_code == 429
            custom = client.sys.read_health_status(method="GET", standby_code=299)
            assert custom.status_code == 299
        assert health["initialized"] is True
        assert health["sealed"] is False
        assert health["cluster_id"] == cluster_id


def test_health_standby_ok(fresh: Cluster, init_result: dict) -> None:
    # hvac sends `?standbyok=True` (a Python bool); Vault parses it with strconv.ParseBool.
    follower = fresh.follower_index()
    health = anonymous(fresh.nodes[follower].url).sys.read_health_status(
        method="GET", standby_ok=True
    )
    assert isinstance(health, dict), health
    assert health["standby"] is True


def init_result_cluster_id(fresh: Cluster) -> str:
    """The cluster id as node 1 reports it."""
    return anonymous(fresh.nodes[0].url).sys.read_seal_status()["cluster_id"]


def test_seal_a_follower_then_unseal_it(fresh: Cluster, init_result: dict) -> None:
    follower = fresh.follower_index()
    node = fresh.nodes[follower]
    client = hvac.Client(url=node.url, token=init_result["root_token"], timeout=30)
    response = client.sys.seal()
    assert isinstance(response, requests.Response) and response.status_code == 204
    assert client.sys.is_sealed() is True
    with pytest.raises(exceptions.VaultDown):
        client.auth.token.lookup_self()
    for index, other in enumerate(fresh.nodes):
        if index != follower:
            assert anonymous(other.url).sys.is_sealed() is False
    status = client.sys.submit_unseal_keys(init_result["keys_base64"][1:4])
    assert status["sealed"] is False
    fresh.wait_serving(follower)


def test_seal_needs_a_sudo_token(fresh: Cluster, init_result: dict) -> None:
    root = hvac.Client(url=fresh.nodes[0].url, token=init_result["root_token"], timeout=30)
    token = root.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    weak = hvac.Client(url=fresh.nodes[0].url, token=token, timeout=30)
    with pytest.raises(exceptions.Forbidden):
        weak.sys.seal()
    assert weak.sys.is_sealed() is False
