"""hvac's mount API (`client.sys`): list, enable (kv v1/v2, transit), read and tune the
configuration, move (`sys/remount`), disable (which deletes the mount's data), and the refusals
for paths in use or nested.
"""

from __future__ import annotations

import hvac
import pytest
from hvac import exceptions

from cluster import wait_for


def mounts(client: hvac.Client) -> dict:
    """The mount table as hvac returns it (`data`)."""
    return client.sys.list_mounted_secrets_engines()["data"]


def test_list_has_the_default_kv_v2_mount(client: hvac.Client) -> None:
    listing = client.sys.list_mounted_secrets_engines()
    secret = listing["data"]["secret/"]
    assert listing["secret/"] == secret, "legacy top-level copy of data"
    assert secret["type"] == "kv"
    assert secret["options"] == {"version": "2"}
    assert secret["accessor"]
    assert secret["uuid"]
    assert set(secret["config"]) >= {"default_lease_ttl", "max_lease_ttl", "force_no_cache"}
    assert client.sys.retrieve_mount_option("secret", "version") == "2"


def test_enable_list_disable(
    client: hvac.Client, node_clients: list[hvac.Client], uid: str
) -> None:
    path = f"engine-{uid}"
    response = client.sys.enable_secrets_engine(
        "transit", path=path, description="compat transit", config={"default_lease_ttl": "1h"}
    )
    assert response.status_code == 204
    for other in node_clients:
        entry = mounts(other)[f"{path}/"]
        assert entry["type"] == "transit"
        assert entry["description"] == "compat transit"
    assert client.sys.disable_secrets_engine(path).status_code == 204
    assert f"{path}/" not in mounts(client)


def test_enable_kv_v2_by_type_and_version(client: hvac.Client, uid: str) -> None:
    client.sys.enable_secrets_engine("kv", path=f"kvv2-{uid}", options={"version": "2"})
    client.sys.enable_secrets_engine("kv-v2", path=f"kvv2b-{uid}")
    table = mounts(client)
    assert table[f"kvv2-{uid}/"]["options"]["version"] == "2"
    assert table[f"kvv2b-{uid}/"]["type"] == "kv"
    assert table[f"kvv2b-{uid}/"]["options"]["version"] == "2"
    client.secrets.kv.v2.create_or_update_secret("x", {"k": "v"}, mount_point=f"kvv2b-{uid}")
    client.sys.disable_secrets_engine(f"kvv2-{uid}")
    client.sys.disable_secrets_engine(f"kvv2b-{uid}")


def test_refuses_a_path_in_use_or_nested(client: hvac.Client, uid: str) -> None:
    path = f"taken-{uid}"
    client.sys.enable_secrets_engine("kv", path=path, options={"version": "1"})
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.enable_secrets_engine("kv", path=path, options={"version": "1"})
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.enable_secrets_engine("kv", path=f"{path}/inner", options={"version": "1"})
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.enable_secrets_engine("kv", path="secret/inner", options={"version": "2"})
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.enable_secrets_engine("no-such-engine", path=f"bad-{uid}")
    client.sys.disable_secrets_engine(path)


def test_read_and_tune_configuration(client: hvac.Client, uid: str) -> None:
    path = f"tuned-{uid}"
    client.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    config = client.sys.read_mount_configuration(path)
    assert config["data"]["default_lease_ttl"] >= 0
    assert set(config["data"]) >= {"default_lease_ttl", "max_lease_ttl", "force_no_cache"}

    response = client.sys.tune_mount_configuration(
        path, default_lease_ttl="1h", max_lease_ttl="2h", description="tuned by hvac"
    )
    assert response.status_code == 204
    config = client.sys.read_mount_configuration(path)["data"]
    assert config["default_lease_ttl"] == 3600
    assert config["max_lease_ttl"] == 7200
    assert config["description"] == "tuned by hvac"
    assert mounts(client)[f"{path}/"]["description"] == "tuned by hvac"
    client.sys.disable_secrets_engine(path)


def test_move_backend_keeps_the_data(client: hvac.Client, uid: str) -> None:
    source, target = f"from-{uid}", f"to-{uid}"
    client.sys.enable_secrets_engine("kv", path=source, options={"version": "2"})
    client.secrets.kv.v2.create_or_update_secret("app", {"k": "v"}, mount_point=source)
    client.sys.move_backend(source, target)
    wait_for("the remount", lambda: True if f"{target}/" in mounts(client) else None)
    assert f"{source}/" not in mounts(client)
    moved = client.secrets.kv.v2.read_secret(
        "app", mount_point=target, raise_on_deleted_version=True
    )
    assert moved["data"]["data"] == {"k": "v"}
    client.sys.disable_secrets_engine(target)


def test_disable_deletes_the_data(client: hvac.Client, uid: str) -> None:
    path = f"doomed-{uid}"
    client.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    client.secrets.kv.v2.create_or_update_secret("app", {"k": "v"}, mount_point=path)
    client.sys.disable_secrets_engine(path)
    with pytest.raises((exceptions.InvalidPath, exceptions.Forbidden, exceptions.InvalidRequest)):
        client.secrets.kv.v2.read_secret("app", mount_point=path, raise_on_deleted_version=True)
    client.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    with pytest.raises(exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret("app", mount_point=path, raise_on_deleted_version=True)
    client.sys.disable_secrets_engine(path)
