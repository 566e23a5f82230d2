"""hvac's token API (`client.auth.token`) on a follower: create (child, orphan, from a role),
lookup / lookup-self / lookup-accessor, renew / renew-self / renew-accessor, revoke (with the
children), revoke-self, revoke-accessor, revoke-orphan, the accessor list, and token roles.
"""

from __future__ import annotations

import hvac
import pytest
from hvac import exceptions


def as_token(url: str, token: str) -> hvac.Client:
    """An hvac client using `token`."""
    return hvac.Client(url=url, token=token, timeout=30)


def create(client: hvac.Client, **kwargs) -> dict:
    """`auth.token.create`; returns the `auth` block."""
    kwargs.setdefault("policies", ["default"])
    kwargs.setdefault("ttl", "1h")
    return client.auth.token.create(**kwargs)["auth"]


def test_create_returns_vaults_auth_block(client: hvac.Client) -> None:
    auth = create(client, meta={"app": "billing"}, display_name="ci")
    assert auth["client_token"]
    assert auth["accessor"]
    assert auth["policies"] == ["default"]
    assert auth["token_policies"] == ["default"]
    assert auth["metadata"] == {"app": "billing"}
    assert auth["lease_duration"] == 3600
    assert auth["renewable"] is True
    assert auth["token_type"] == "service"
    assert auth["orphan"] is False


def test_create_warns_about_a_missing_policy(client: hvac.Client, uid: str) -> None:
    response = client.auth.token.create(policies=[f"missing-{uid}"], ttl="1h")
    assert f"missing-{uid}" in response["auth"]["policies"]
    assert response["warnings"] == [f'Policy "missing-{uid}" does not exist']


def test_lookup_lookup_self_and_accessor(client: hvac.Client, follower_url: str) -> None:
    auth = create(client, meta={"app": "billing"}, display_name="ci")
    token, accessor = auth["client_token"], auth["accessor"]

    looked_up = client.auth.token.lookup(token)["data"]
    assert looked_up["id"] == token
    assert looked_up["accessor"] == accessor
    assert looked_up["policies"] == ["default"]
    assert looked_up["meta"] == {"app": "billing"}
    assert looked_up["display_name"] == "token-ci"
    assert 0 < looked_up["ttl"] <= 3600
    assert looked_up["creation_ttl"] == 3600
    assert looked_up["renewable"] is True
    assert looked_up["type"] == "service"
    assert looked_up["orphan"] is False
    assert looked_up["path"] == "auth/token/create"

    self_data = as_token(follower_url, token).auth.token.lookup_self()["data"]
    assert self_data["id"] == token
    assert self_data["accessor"] == accessor

    by_accessor = client.auth.token.lookup_accessor(accessor)["data"]
    assert by_accessor["id"] == ""
    assert by_accessor["accessor"] == accessor
    assert by_accessor["policies"] == ["default"]


def test_is_authenticated(client: hvac.Client, follower_url: str) -> None:
    assert client.is_authenticated()
    assert not as_token(follower_url, "hvs.not-a-real-token").is_authenticated()


def test_lookup_of_a_bad_token_is_forbidden(client: hvac.Client) -> None:
    with pytest.raises(exceptions.Forbidden):
        client.auth.token.lookup("hvs.not-a-real-token")


def test_renew(client: hvac.Client, follower_url: str) -> None:
    auth = create(client, ttl="1h")
    renewed = client.auth.token.renew(auth["client_token"], increment="30m")["auth"]
    assert renewed["client_token"] == auth["client_token"]
    assert renewed["accessor"] == auth["accessor"]
    assert renewed["lease_duration"] == 1800
    assert renewed["renewable"] is True

    renewed_self = as_token(follower_url, auth["client_token"]).auth.token.renew_self(
        increment="20m"
    )
    assert renewed_self["auth"]["lease_duration"] == 1200

    by_accessor = client.auth.token.renew_accessor(auth["accessor"], increment="40m")["auth"]
    assert by_accessor["lease_duration"] == 2400
    assert 1200 < client.auth.token.lookup(auth["client_token"])["data"]["ttl"] <= 2400


def test_renew_beyond_the_creation_ttl(client: hvac.Client) -> None:
    # Vault grants the increment, capped only by the max TTLs (explicit, mount, system).
    auth = create(client, ttl="10m")
    renewed = client.auth.token.renew(auth["client_token"], increment="30m")["auth"]
    assert renewed["lease_duration"] == 1800


def test_renew_of_a_non_renewable_token_is_refused(client: hvac.Client) -> None:
    auth = create(client, renewable=False)
    with pytest.raises(exceptions.InvalidRequest):
        client.auth.token.renew(auth["client_token"])


def test_revoke_revokes_the_children(client: hvac.Client, follower_url: str) -> None:
    parent = create(client, policies=["root"])["client_token"]
    child = create(as_token(follower_url, parent))["client_token"]
    assert client.auth.token.lookup(child)["data"]["orphan"] is False
    response = client.auth.token.revoke(parent)
    assert response.status_code == 204
    assert not as_token(follower_url, parent).is_authenticated()
    assert not as_token(follower_url, child).is_authenticated()


def test_create_orphan(client: hvac.Client, follower_url: str) -> None:
    parent = create(client, policies=["root"])["client_token"]
    orphan = as_token(follower_url, parent).auth.token.create_orphan(policies=["default"], ttl="1h")
    assert orphan["auth"]["orphan"] is True
    client.auth.token.revoke(parent)
    assert as_token(follower_url, orphan["auth"]["client_token"]).is_authenticated()


def test_revoke_and_orphan_children(client: hvac.Client, follower_url: str) -> None:
    parent = create(client, policies=["root"])["client_token"]
    child = create(as_token(follower_url, parent))["client_token"]
    assert client.auth.token.revoke_and_orphan_children(parent).status_code == 204
    assert not as_token(follower_url, parent).is_authenticated()
    assert as_token(follower_url, child).is_authenticated()
    assert client.auth.token.lookup(child)["data"]["orphan"] is True


def test_revoke_self_and_accessor(client: hvac.Client, follower_url: str) -> None:
    first = create(client)["client_token"]
    assert as_token(follower_url, first).auth.token.revoke_self().status_code == 204
    assert not as_token(follower_url, first).is_authenticated()

    second = create(client)
    assert client.auth.token.revoke_accessor(second["accessor"]).status_code == 204
    assert not as_token(follower_url, second["client_token"]).is_authenticated()


def test_list_accessors(client: hvac.Client) -> None:
    accessor = create(client)["accessor"]
    assert accessor in client.auth.token.list_accessors()["data"]["keys"]


def test_a_default_token_cannot_use_root_paths(client: hvac.Client, follower_url: str) -> None:
    weak = as_token(follower_url, create(client)["client_token"])
    with pytest.raises(exceptions.Forbidden):
        weak.secrets.kv.v2.read_secret("anything", raise_on_deleted_version=True)
    with pytest.raises(exceptions.Forbidden):
        weak.auth.token.list_accessors()


def test_num_uses(client: hvac.Client, follower_url: str) -> None:
    limited = as_token(follower_url, create(client, policies=["root"], num_uses=2)["client_token"])
    limited.secrets.kv.v2.create_or_update_secret("num-uses", {"k": "v"})
    limited.secrets.kv.v2.read_secret("num-uses", raise_on_deleted_version=True)
    with pytest.raises(exceptions.Forbidden):
        limited.secrets.kv.v2.read_secret("num-uses", raise_on_deleted_version=True)


def test_roles(client: hvac.Client, follower_url: str, uid: str) -> None:
    role = f"role-{uid}"
    client.auth.token.create_or_update_role(
        role, allowed_policies=["default", "reader"], orphan=True, renewable=True
    )
    read = client.auth.token.read_role(role)["data"]
    assert read["name"] == role
    assert read["allowed_policies"] == ["default", "reader"]
    assert read["orphan"] is True
    assert read["renewable"] is True
    assert role in client.auth.token.list_roles()["data"]["keys"]

    auth = client.auth.token.create(role_name=role, policies=["reader"], ttl="1h")["auth"]
    assert auth["orphan"] is True
    assert "reader" in auth["policies"]
    data = client.auth.token.lookup(auth["client_token"])["data"]
    assert data["role"] == role
    assert data["path"] == f"auth/token/create/{role}"
    with pytest.raises(exceptions.InvalidRequest):
        client.auth.token.create(role_name=role, policies=["not-allowed"])

    assert client.auth.token.delete_role(role).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        client.auth.token.read_role(role)
