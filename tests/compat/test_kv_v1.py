"""hvac's KV v1 API (`client.secrets.kv.v1`) on a `kv` mount with `version=1`, enabled through
`sys/mounts`: write (POST and PUT), read, list, delete, and reads from every node.
"""

from __future__ import annotations

from collections.abc import Iterator

import hvac
import pytest
import requests
from hvac import exceptions


@pytest.fixture
def kv1_mount(client: hvac.Client, uid: str) -> Iterator[str]:
    """A fresh KV v1 mount."""
    path = f"kv1-{uid}"
    response = client.sys.enable_secrets_engine("kv", path=path, options={"version": "1"})
    assert response.status_code == 204
    yield path
    client.sys.disable_secrets_engine(path)


def test_mount_is_version_1(client: hvac.Client, kv1_mount: str) -> None:
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    assert mounts[f"{kv1_mount}/"]["type"] == "kv"
    assert client.sys.retrieve_mount_option(kv1_mount, "version") == "1"


def test_write_read_overwrite(client: hvac.Client, kv1_mount: str) -> None:
    kv = client.secrets.kv.v1
    response = kv.create_or_update_secret(
        "app/db", {"user": "app", "port": 5432}, mount_point=kv1_mount
    )
    assert isinstance(response, requests.Response) and response.status_code == 204
    read = kv.read_secret("app/db", mount_point=kv1_mount)
    assert read["data"] == {"user": "app", "port": 5432}
    assert read["lease_duration"] >= 0

    kv.create_or_update_secret("app/db", {"user": "other"}, method="PUT", mount_point=kv1_mount)
    assert kv.read_secret("app/db", mount_point=kv1_mount)["data"] == {"user": "other"}


def test_reads_from_every_node(
    client: hvac.Client, node_clients: list[hvac.Client], kv1_mount: str
) -> None:
    client.secrets.kv.v1.create_or_update_secret("shared", {"k": "v"}, mount_point=kv1_mount)
    for other in node_clients:
        read = other.secrets.kv.v1.read_secret("shared", mount_point=kv1_mount)
        assert read["data"] == {"k": "v"}


def test_list(client: hvac.Client, kv1_mount: str) -> None:
    kv = client.secrets.kv.v1
    for path in ("a", "b", "dir/c"):
        kv.create_or_update_secret(path, {"k": "v"}, mount_point=kv1_mount)
    assert kv.list_secrets("", mount_point=kv1_mount)["data"]["keys"] == ["a", "b", "dir/"]
    assert kv.list_secrets("dir", mount_point=kv1_mount)["data"]["keys"] == ["c"]
    with pytest.raises(exceptions.InvalidPath):
        kv.list_secrets("nothing-here", mount_point=kv1_mount)


def test_delete(client: hvac.Client, kv1_mount: str) -> None:
    kv = client.secrets.kv.v1
    kv.create_or_update_secret("gone", {"k": "v"}, mount_point=kv1_mount)
    response = kv.delete_secret("gone", mount_point=kv1_mount)
    assert response.status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        kv.read_secret("gone", mount_point=kv1_mount)
    assert client.read(f"{kv1_mount}/gone") is None


def test_generic_client_methods(client: hvac.Client, kv1_mount: str) -> None:
    # hvac.Client.write/read/delete are the oldest API, still widely used on KV v1.
    client.write(f"{kv1_mount}/generic", password="hunter2")
    assert client.read(f"{kv1_mount}/generic")["data"] == {"password": "hunter2"}
    client.delete(f"{kv1_mount}/generic")
    assert client.read(f"{kv1_mount}/generic") is None


def test_generic_client_list(client: hvac.Client, kv1_mount: str) -> None:
    # hvac.Client.list sends `GET /v1/<path>?list=True` (a Python bool in the query string).
    client.write(f"{kv1_mount}/listed", k="v")
    assert client.list(f"{kv1_mount}/")["data"]["keys"] == ["listed"]
    assert client.list(f"{kv1_mount}/nothing-here") is None
