"""hvac's policy APIs against the shared cluster, through a follower: ACL policies
(`sys/policies/acl`: write HCL or a JSON dict, read, list, delete), the legacy `sys/policy`
routes with their top-level copy of `data`, refusals, and enforcement of a policy on a token.
"""

from __future__ import annotations

import hvac
import pytest
from hvac import exceptions


def reader_policy(prefix: str) -> str:
    """HCL: read-only access to `secret/data/<prefix>/*`, list on its metadata."""
    return (
        f'path "secret/data/{prefix}/*" {{\n  capabilities = ["read"]\n}}\n\n'
        f'path "secret/metadata/{prefix}/*" {{\n  capabilities = ["list"]\n}}\n'
    )


def test_acl_policy_lifecycle(client: hvac.Client, uid: str) -> None:
    name = f"acl-{uid}"
    text = reader_policy(uid)
    response = client.sys.create_or_update_acl_policy(name, text)
    assert response.status_code == 204

    read = client.sys.read_acl_policy(name)
    assert read["data"] == {"name": name, "policy": text}
    keys = client.sys.list_acl_policies()["data"]["keys"]
    assert name in keys
    assert "default" in keys and "root" in keys

    assert client.sys.delete_acl_policy(name).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        client.sys.read_acl_policy(name)
    assert name not in client.sys.list_acl_policies()["data"]["keys"]


def test_acl_policy_as_a_json_dict(client: hvac.Client, uid: str) -> None:
    # hvac JSON-encodes a dict policy; Vault accepts JSON policies.
    name = f"json-{uid}"
    policy = {"path": {f"secret/data/{uid}/*": {"capabilities": ["read", "list"]}}}
    client.sys.create_or_update_acl_policy(name, policy)
    stored = client.sys.read_acl_policy(name)["data"]["policy"]
    assert f"secret/data/{uid}/*" in stored
    client.sys.delete_acl_policy(name)


def test_bad_policy_is_refused(client: hvac.Client, uid: str) -> None:
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.create_or_update_acl_policy(f"bad-{uid}", 'path "x" { capabilities = ')
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.create_or_update_acl_policy(
            f"bad-cap-{uid}", 'path "x" { capabilities = ["fly"] }'
        )


def test_builtin_policies(client: hvac.Client) -> None:
    assert "path" in client.sys.read_acl_policy("default")["data"]["policy"]
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.delete_acl_policy("root")
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.delete_acl_policy("default")
    with pytest.raises(exceptions.InvalidRequest):
        client.sys.create_or_update_acl_policy("root", 'path "*" { capabilities = ["read"] }')


def test_legacy_policy_routes(client: hvac.Client, uid: str) -> None:
    name = f"legacy-{uid}"
    text = reader_policy(uid)
    response = client.sys.create_or_update_policy(name, text)
    assert response.status_code == 204

    listing = client.sys.list_policies()
    assert name in listing["policies"]
    assert name in listing["data"]["policies"]
    assert name in listing["data"]["keys"]

    read = client.sys.read_policy(name)
    assert read["name"] == name
    assert read["rules"] == text
    assert read["data"] == {"name": name, "rules": text}

    assert client.sys.delete_policy(name).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        client.sys.read_policy(name)


def test_policy_is_enforced(client: hvac.Client, follower_url: str, uid: str) -> None:
    name = f"enforced-{uid}"
    client.sys.create_or_update_acl_policy(name, reader_policy(uid))
    client.secrets.kv.v2.create_or_update_secret(f"{uid}/app", {"k": "v"})
    client.secrets.kv.v2.create_or_update_secret(f"other-{uid}/app", {"k": "v"})
    token = client.auth.token.create(policies=[name], ttl="1h")["auth"]["client_token"]
    reader = hvac.Client(url=follower_url, token=token, timeout=30)

    secret = reader.secrets.kv.v2.read_secret(f"{uid}/app", raise_on_deleted_version=True)
    assert secret["data"]["data"] == {"k": "v"}
    with pytest.raises(exceptions.Forbidden):
        reader.secrets.kv.v2.create_or_update_secret(f"{uid}/app", {"k": "changed"})
    with pytest.raises(exceptions.Forbidden):
        reader.secrets.kv.v2.read_secret(f"other-{uid}/app", raise_on_deleted_version=True)
    with pytest.raises(exceptions.Forbidden):
        reader.sys.create_or_update_acl_policy(
            f"escalate-{uid}", 'path "*" { capabilities = ["sudo"] }'
        )

    # Policy changes apply to existing tokens at once.
    client.sys.delete_acl_policy(name)
    with pytest.raises(exceptions.Forbidden):
        reader.secrets.kv.v2.read_secret(f"{uid}/app", raise_on_deleted_version=True)


def test_list_capability_on_a_folder(client: hvac.Client, follower_url: str, uid: str) -> None:
    # `path "secret/metadata/<uid>/*"` grants LIST on the folder: hvac sends
    # `LIST /v1/secret/metadata/<uid>` (no trailing slash) and Vault checks the ACL on
    # `secret/metadata/<uid>/`, as it appends the slash to every list request.
    name = f"lister-{uid}"
    client.sys.create_or_update_acl_policy(name, reader_policy(uid))
    client.secrets.kv.v2.create_or_update_secret(f"{uid}/app", {"k": "v"})
    token = client.auth.token.create(policies=[name], ttl="1h")["auth"]["client_token"]
    lister = hvac.Client(url=follower_url, token=token, timeout=30)
    assert lister.secrets.kv.v2.list_secrets(uid)["data"]["keys"] == ["app"]
    client.sys.delete_acl_policy(name)
