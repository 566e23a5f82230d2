"""hvac's auth method APIs against the shared cluster, through a follower: enable / list /
disable / tune auth mounts (`client.sys`), AppRole (roles, role ids, secret ids, login) and
userpass (users, passwords, login), then using the issued tokens.
"""

from __future__ import annotations

from collections.abc import Iterator

import hvac
import pytest
from hvac import exceptions


@pytest.fixture
def secret_reader(client: hvac.Client, uid: str) -> Iterator[str]:
    """A policy allowing reads of `secret/data/<uid>/*`, and a secret there."""
    name = f"reader-{uid}"
    client.sys.create_or_update_acl_policy(
        name, f'path "secret/data/{uid}/*" {{\n  capabilities = ["read"]\n}}\n'
    )
    client.secrets.kv.v2.create_or_update_secret(f"{uid}/app", {"password": "hunter2"})
    yield name
    client.sys.delete_acl_policy(name)


def can_read(url: str, token: str, uid: str) -> dict:
    """Reads `secret/<uid>/app` with `token`; returns the secret's data."""
    reader = hvac.Client(url=url, token=token, timeout=30)
    return reader.secrets.kv.v2.read_secret(f"{uid}/app", raise_on_deleted_version=True)["data"][
        "data"
    ]


def test_enable_list_tune_disable(client: hvac.Client, uid: str) -> None:
    path = f"up-{uid}"
    response = client.sys.enable_auth_method("userpass", path=path, description="compat users")
    assert response.status_code == 204
    methods = client.sys.list_auth_methods()
    entry = methods["data"][f"{path}/"]
    assert methods[f"{path}/"] == entry, "legacy top-level copy of data"
    assert entry["type"] == "userpass"
    assert entry["description"] == "compat users"
    assert entry["accessor"]
    assert methods["data"]["token/"]["type"] == "token"

    client.sys.tune_auth_method(path, default_lease_ttl="1h", description="tuned")
    tuning = client.sys.read_auth_method_tuning(path)["data"]
    assert tuning["default_lease_ttl"] == 3600
    assert tuning["description"] == "tuned"

    with pytest.raises(exceptions.InvalidRequest):
        client.sys.enable_auth_method("userpass", path=path)
    assert client.sys.disable_auth_method(path).status_code == 204
    assert f"{path}/" not in client.sys.list_auth_methods()["data"]


def test_approle_login(
    client: hvac.Client, follower_url: str, uid: str, secret_reader: str
) -> None:
    mount = f"approle-{uid}"
    approle = client.auth.approle
    client.sys.enable_auth_method("approle", path=mount)
    approle.create_or_update_approle(
        "app", token_policies=[secret_reader], token_ttl="1h", mount_point=mount
    )
    assert approle.list_roles(mount_point=mount)["data"]["keys"] == ["app"]
    role = approle.read_role("app", mount_point=mount)["data"]
    assert role["token_policies"] == [secret_reader]
    assert role["token_ttl"] == 3600
    assert role["bind_secret_id"] is True

    role_id = approle.read_role_id("app", mount_point=mount)["data"]["role_id"]
    generated = approle.generate_secret_id("app", metadata={"team": "a"}, mount_point=mount)["data"]
    secret_id, accessor = generated["secret_id"], generated["secret_id_accessor"]
    assert secret_id and accessor

    login = approle.login(role_id, secret_id, use_token=False, mount_point=mount)["auth"]
    assert secret_reader in login["policies"]
    assert (
        login["token_policies"] == ["default", secret_reader]
        or secret_reader in login["token_policies"]
    )
    assert login["metadata"]["role_name"] == "app"
    assert login["lease_duration"] == 3600
    assert can_read(follower_url, login["client_token"], uid) == {"password": "hunter2"}
    writer = hvac.Client(url=follower_url, token=login["client_token"], timeout=30)
    with pytest.raises(exceptions.Forbidden):
        writer.secrets.kv.v2.create_or_update_secret(f"{uid}/app", {"password": "x"})

    # use_token=True: hvac stores the issued token on the client.
    fresh = hvac.Client(url=follower_url, timeout=30)
    fresh.auth.approle.login(role_id, secret_id, mount_point=mount)
    assert fresh.is_authenticated()

    looked_up = approle.read_secret_id("app", secret_id, mount_point=mount)["data"]
    assert looked_up["secret_id_accessor"] == accessor
    assert looked_up["metadata"] == {"team": "a"}
    assert approle.list_secret_id_accessors("app", mount_point=mount)["data"]["keys"] == [accessor]

    with pytest.raises(exceptions.InvalidRequest):
        approle.login(role_id, "not-the-secret-id", use_token=False, mount_point=mount)
    approle.destroy_secret_id("app", secret_id, mount_point=mount)
    with pytest.raises(exceptions.InvalidRequest):
        approle.login(role_id, secret_id, use_token=False, mount_point=mount)
    client.sys.disable_auth_method(mount)


def test_approle_custom_secret_id_and_role_id(
    client: hvac.Client, uid: str, secret_reader: str
) -> None:
    mount = f"approle-custom-{uid}"
    approle = client.auth.approle
    client.sys.enable_auth_method("approle", path=mount)
    approle.create_or_update_approle("svc", token_policies=[secret_reader], mount_point=mount)
    approle.update_role_id("svc", f"role-{uid}", mount_point=mount)
    assert approle.read_role_id("svc", mount_point=mount)["data"]["role_id"] == f"role-{uid}"
    custom = approle.create_custom_secret_id("svc", f"secret-{uid}", mount_point=mount)["data"]
    assert custom["secret_id"] == f"secret-{uid}"
    login = approle.login(f"role-{uid}", f"secret-{uid}", use_token=False, mount_point=mount)
    assert login["auth"]["client_token"]
    approle.destroy_secret_id_accessor("svc", custom["secret_id_accessor"], mount_point=mount)
    with pytest.raises(exceptions.InvalidRequest):
        approle.login(f"role-{uid}", f"secret-{uid}", use_token=False, mount_point=mount)
    approle.delete_role("svc", mount_point=mount)
    with pytest.raises(exceptions.InvalidPath):
        approle.read_role("svc", mount_point=mount)
    client.sys.disable_auth_method(mount)


def test_userpass_login(
    client: hvac.Client, follower_url: str, uid: str, secret_reader: str
) -> None:
    mount = f"userpass-{uid}"
    userpass = client.auth.userpass
    client.sys.enable_auth_method("userpass", path=mount)
    response = userpass.create_or_update_user(
        "alice", password="correct horse", policies=[secret_reader], mount_point=mount
    )
    assert response.status_code == 204
    user = userpass.read_user("alice", mount_point=mount)["data"]
    assert secret_reader in user["token_policies"]
    assert "password" not in user
    assert userpass.list_user(mount_point=mount)["data"]["keys"] == ["alice"]

    login = userpass.login("alice", "correct horse", use_token=False, mount_point=mount)["auth"]
    assert secret_reader in login["policies"]
    assert login["metadata"]["username"] == "alice"
    assert can_read(follower_url, login["client_token"], uid) == {"password": "hunter2"}

    fresh = hvac.Client(url=follower_url, timeout=30)
    fresh.auth.userpass.login("alice", "correct horse", mount_point=mount)
    assert fresh.is_authenticated()

    with pytest.raises(exceptions.InvalidRequest):
        userpass.login("alice", "wrong", use_token=False, mount_point=mount)
    with pytest.raises(exceptions.InvalidRequest):
        userpass.login("nobody", "correct horse", use_token=False, mount_point=mount)

    userpass.update_password_on_user("alice", "battery staple", mount_point=mount)
    with pytest.raises(exceptions.InvalidRequest):
        userpass.login("alice", "correct horse", use_token=False, mount_point=mount)
    assert userpass.login("alice", "battery staple", use_token=False, mount_point=mount)["auth"]

    assert userpass.delete_user("alice", mount_point=mount).status_code == 204
    with pytest.raises(exceptions.InvalidRequest):
        userpass.login("alice", "battery staple", use_token=False, mount_point=mount)
    client.sys.disable_auth_method(mount)
