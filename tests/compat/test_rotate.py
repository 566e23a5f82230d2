"""hvac's keyring calls against the shared cluster: `sys.rotate_encryption_key` (through a
follower) moves every node to the next term, `sys.get_encryption_key_status` reads it in Vault's
shape, values written before still read, and `sys/rotate/config` round-trips with 400s for bad
input that change nothing.
"""

from __future__ import annotations

import hvac
import pytest
from hvac import exceptions


def test_rotate_and_key_status(client: hvac.Client, node_clients: list[hvac.Client], uid: str) -> None:
    path = f"rotate-{uid}"
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": "before"})
    before = client.sys.get_encryption_key_status()
    assert before["data"]["term"] == before["term"]
    assert before["data"]["install_time"].endswith("Z")
    assert isinstance(before["data"]["encryptions"], int)

    response = client.sys.rotate_encryption_key()
    assert response.status_code == 204

    for node in node_clients:
        status = node.sys.get_encryption_key_status()
        assert status["data"]["term"] == before["data"]["term"] + 1
        read = node.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
        assert read["data"]["data"] == {"v": "before"}


def test_rotate_config_round_trip_and_bad_input(client: hvac.Client) -> None:
    client.write("sys/rotate/config", max_operations=3_000_000_000, interval="72h")
    config = client.read("sys/rotate/config")
    assert config["data"]["max_operations"] == 3_000_000_000
    assert config["data"]["interval"] == "72h0m0s"
    assert config["data"]["enabled"] is True
    for bad in ({"max_operations": 5}, {"interval": "2h"}, {"enabled": "sometimes"}):
        with pytest.raises(exceptions.InvalidRequest):
            client.write("sys/rotate/config", **bad)
    assert client.read("sys/rotate/config")["data"] == config["data"]
