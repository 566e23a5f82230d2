"""hvac's rekey and root-generation calls (`sys.start_rekey`, `sys.rekey`/`rekey_multi`,
`sys.rekey_verify`, `sys.read_rekey_progress`, `sys.cancel_rekey`,
`sys.start_root_token_generation`, `sys.generate_root`, `sys.read_root_generation_progress`,
`sys.cancel_root_generation`) against a fresh cluster, driven through a FOLLOWER.

The module starts its own 3-node cluster (rekeying the shared one would change its shares under
the other modules). Tests run in file order: bad input, a cancelled rekey, a rekey 5/3 -> 3/2
with verification (old shares refused afterwards, new ones unseal a sealed node), then root
token generation with a server-generated OTP, decoded as `vault operator generate-root -decode`
does.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import hvac
import pytest
from hvac import exceptions

from cluster import Cluster, start_cluster

#: The shares from init, kept to show they stop working after the rekey.
OLD_KEYS: list[str] = []


@pytest.fixture(scope="module")
def rekeyed() -> Iterator[Cluster]:
    """A 3-node cluster, initialized 5/3, every node unsealed."""
    started = start_cluster()
    try:
        started.init()
        for index in range(started.size):
            started.unseal(index)
        started.wait_leader()
        for index in range(started.size):
            started.wait_serving(index)
        OLD_KEYS[:] = started.keys_base64
        yield started
    finally:
        started.stop(keep_logs=True)


def client_on_follower(cluster: Cluster, token: str | None = None) -> hvac.Client:
    return hvac.Client(url=cluster.nodes[cluster.follower_index()].url, token=token, timeout=30)


def test_rekey_bad_parameters_change_nothing(rekeyed: Cluster) -> None:
    client = client_on_follower(rekeyed)
    for shares, threshold in [(3, 4), (256, 3), (3, 0), (3, 1)]:
        with pytest.raises(exceptions.InvalidRequest):
            client.sys.start_rekey(secret_shares=shares, secret_threshold=threshold)
    progress = client.sys.read_rekey_progress()
    assert progress["started"] is False
    assert progress["required"] == 3


def test_rekey_start_and_cancel(rekeyed: Cluster) -> None:
    client = client_on_follower(rekeyed)
    started = client.sys.start_rekey(secret_shares=4, secret_threshold=2)
    assert started["started"] is True and started["n"] == 4 and started["t"] == 2
    assert started["nonce"]
    response = client.sys.cancel_rekey()
    assert response.status_code == 204
    assert client.sys.read_rekey_progress()["started"] is False


def test_rekey_with_verification(rekeyed: Cluster) -> None:
    client = client_on_follower(rekeyed)
    started = client.sys.start_rekey(
        secret_shares=3, secret_threshold=2, require_verification=True
    )
    nonce = started["nonce"]
    assert started["verification_required"] is True
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.rekey(key=rekeyed.keys_base64[0], nonce="not-the-nonce")
    first = client.sys.rekey(key=rekeyed.keys_hex[0], nonce=nonce)
    assert first["progress"] == 1 and first["started"] is True
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.rekey(key=rekeyed.keys_base64[0], nonce=nonce)  # the same share again
    result = client.sys.rekey_multi(rekeyed.keys_base64[1:3], nonce=nonce)
    assert result["complete"] is True
    assert len(result["keys"]) == 3 and len(result["keys_base64"]) == 3
    verify_nonce = result["verification_nonce"]
    progress = client.sys.read_rekey_verify_progress()
    assert progress["started"] is True and progress["nonce"] == verify_nonce
    done = client.sys.rekey_verify_multi(result["keys_base64"][1:3], nonce=verify_nonce)
    assert done == {"nonce": verify_nonce, "complete": True}
    assert client.sys.read_seal_status()["n"] == 3
    rekeyed.keys_base64 = list(result["keys_base64"])
    rekeyed.keys_hex = list(result["keys"])


def test_old_shares_fail_and_new_shares_unseal(rekeyed: Cluster) -> None:
    follower = rekeyed.follower_index()
    node = hvac.Client(url=rekeyed.nodes[follower].url, token=rekeyed.root_token, timeout=30)
    node.sys.seal()
    assert node.sys.is_sealed() is True
    status = node.sys.read_seal_status()
    assert (status["n"], status["t"]) == (3, 2)
    unseal = hvac.Client(url=rekeyed.nodes[follower].url, timeout=30)
    # 5/3 shares from init: not one of them is accepted any more.
    for old in OLD_KEYS:
        with pytest.raises(exceptions.InvalidRequest):
            unseal.sys.submit_unseal_key(key=old)
    assert unseal.sys.read_seal_status()["progress"] == 0
    status = unseal.sys.submit_unseal_keys([rekeyed.keys_hex[2], rekeyed.keys_base64[0]])
    assert status["sealed"] is False
    rekeyed.wait_serving(follower)


def test_generate_root_with_a_server_otp(rekeyed: Cluster) -> None:
    client = client_on_follower(rekeyed)
    assert client.sys.read_root_generation_progress()["started"] is False
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.start_root_token_generation(otp="too-short")
    started = client.sys.start_root_token_generation()
    otp = started["otp"]
    assert started["started"] is True and len(otp) == started["otp_length"]
    assert client.sys.read_root_generation_progress()["otp"] == ""
    nonce = started["nonce"]
    first = client.sys.generate_root(key=rekeyed.keys_base64[1], nonce=nonce)
    assert (first["progress"], first["required"], first["complete"]) == (1, 2, False)
    done = client.sys.generate_root(key=rekeyed.keys_hex[2], nonce=nonce)
    assert done["complete"] is True
    encoded = done["encoded_token"]
    assert done["encoded_root_token"] == encoded
    # `vault operator generate-root -decode`: raw (unpadded) std base64, XOR with the OTP bytes.
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    token = bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=True)).decode()
    root = client_on_follower(rekeyed, token=token)
    assert root.lookup_token()["data"]["policies"] == ["root"]
    root.secrets.kv.v2.create_or_update_secret(path="generated-root", secret={"k": "v"})


def test_generate_root_cancel(rekeyed: Cluster) -> None:
    client = client_on_follower(rekeyed)
    client.sys.start_root_token_generation()
    response = client.sys.cancel_root_generation()
    assert response.status_code == 204
    assert client.sys.read_root_generation_progress()["started"] is False
