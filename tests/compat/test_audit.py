"""hvac's audit calls against a cluster whose nodes each configure a `file` audit sink in their
server file: `sys.list_enabled_audit_devices` (Vault's shape: devices keyed `<path>/`, in `data`
and copied to the top level), `sys.enable_audit_device` / `sys.disable_audit_device` (refused:
sinks are configured in the server file only, after OpenBao's CVE-2025-6000), and
`sys.calculate_hash`, whose HMAC is the one the records hold: a secret written through hvac and
an unseal share submitted through hvac show up in every node's sink as that HMAC, never in
plaintext.

Strongroom's audit key is one per cluster, shared by every sink and the journal, so
`sys/audit-hash/<path>` gives the same answer for every path and on every node.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import hvac
import pytest
from hvac import exceptions

from cluster import Cluster, start_cluster, wait_for

HMAC = re.compile(r"^hmac-sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def audited() -> Iterator[Cluster]:
    """A 3-node cluster, initialized and unsealed, every node with a file audit sink."""
    started = start_cluster(audit_sinks=True)
    try:
        started.init()
        for index in range(started.size):
            started.unseal(index)
        started.wait_leader()
        for index in range(started.size):
            started.wait_serving(index)
        yield started
    finally:
        started.stop(keep_logs=True)


@pytest.fixture
def clients(audited: Cluster) -> list[hvac.Client]:
    """One root hvac client per node."""
    return [hvac.Client(url=n.url, token=audited.root_token, timeout=30) for n in audited.nodes]


def test_list_enabled_audit_devices(audited: Cluster, clients: list[hvac.Client]) -> None:
    for index, client in enumerate(clients):
        listed = client.sys.list_enabled_audit_devices()
        device = listed["data"]["file/"]
        assert device["type"] == "file"
        assert device["path"] == "file/"
        assert device["local"] is False
        assert device["description"] == "compat suite sink"
        assert device["options"]["file_path"] == str(audited.audit_log_path(index + 1))
        assert listed["file/"] == device, "Vault's legacy top-level copy"
        assert set(listed["data"]) == {"file/"}


def test_listing_needs_sudo(audited: Cluster, clients: list[hvac.Client]) -> None:
    token = clients[0].auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    limited = hvac.Client(url=audited.nodes[1].url, token=token, timeout=30)
    with pytest.raises(exceptions.Forbidden):
        limited.sys.list_enabled_audit_devices()


def test_enabling_or_disabling_by_api_is_refused(clients: list[hvac.Client]) -> None:
    client = clients[1]
    with pytest.raises(exceptions.InvalidRequest) as refused:
        client.sys.enable_audit_device(
            device_type="file", path="mine", options={"file_path": "/tmp/elsewhere.log"}
        )
    assert "server config file" in str(refused.value)
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.disable_audit_device(path="file")
    assert set(client.sys.list_enabled_audit_devices()["data"]) == {"file/"}


def test_calculate_hash(clients: list[hvac.Client]) -> None:
    answers = [c.sys.calculate_hash(path="file", input_to_hash="s3cr3t-value") for c in clients]
    first = answers[0]["data"]["hash"]
    assert HMAC.match(first), first
    assert answers[0]["hash"] == first, "Vault's legacy top-level copy"
    assert all(answer["data"]["hash"] == first for answer in answers), "one key per cluster"
    other = clients[0].sys.calculate_hash(path="file", input_to_hash="s3cr3t-valuf")["data"]["hash"]
    assert HMAC.match(other) and other != first
    with pytest.raises(exceptions.InvalidRequest):
        clients[0].adapter.post("/v1/sys/audit-hash/file", json={"input": 5})


def sink_holds(audited: Cluster, needle: str) -> bool | None:
    """Whether every node's sink file holds `needle` (None while one does not yet)."""
    for node in audited.nodes:
        path = audited.audit_log_path(node.id)
        if not path.exists() or needle not in path.read_text():
            return None
    return True


def test_records_hold_the_hash_not_the_value(audited: Cluster, clients: list[hvac.Client]) -> None:
    secret = "compat-canary-7f3e1d"
    clients[2].secrets.kv.v2.create_or_update_secret(path="audited/app", secret={"pw": secret})
    share = audited.keys_base64[4]
    status = clients[1].sys.submit_unseal_key(key=share)
    assert status["sealed"] is False
    for needle in (secret, share):
        hashed = clients[0].sys.calculate_hash(path="file", input_to_hash=needle)["data"]["hash"]
        wait_for(f"every sink holds {hashed}", lambda hashed=hashed: sink_holds(audited, hashed))
        for node in audited.nodes:
            text = audited.audit_log_path(node.id).read_text()
            assert needle not in text, f"node {node.id}'s sink holds a plaintext value"
