"""hvac's KV v2 API (`client.secrets.kv.v2`) against the shared cluster, through a follower:
versions and check-and-set, hvac's patch, soft delete / undelete / destroy, metadata (read,
`max_versions`, `cas_required`, `delete_version_after`, `custom_metadata`, delete all), listing,
the mount's config, subkeys, and a CAS race between clients on every pair of nodes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import hvac
import pytest
import requests
from hvac import exceptions

from cluster import wait_for

CAS_MISMATCH = "check-and-set parameter did not match the current version"
CAS_REQUIRED = "check-and-set parameter required for this call"


def read(client: hvac.Client, path: str, version: int | None = None, **kwargs) -> dict:
    """`read_secret_version`, raising on deleted versions unless told otherwise."""
    kwargs.setdefault("raise_on_deleted_version", True)
    return client.secrets.kv.v2.read_secret_version(path, version=version, **kwargs)


def write(client: hvac.Client, path: str, secret: dict, cas: int | None = None, **kwargs) -> dict:
    """`create_or_update_secret`; returns the new version's metadata (`data`)."""
    return client.secrets.kv.v2.create_or_update_secret(path, secret, cas=cas, **kwargs)["data"]


@pytest.fixture
def kv2_mount(client: hvac.Client, uid: str) -> Iterator[str]:
    """A fresh KV v2 mount (its config is changed by the test)."""
    path = f"kv2-{uid}"
    client.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    yield path
    client.sys.disable_secrets_engine(path)


def test_write_creates_versions(client: hvac.Client, uid: str) -> None:
    path = f"versions/{uid}"
    first = write(client, path, {"password": "one"})
    assert first["version"] == 1
    assert first["destroyed"] is False
    assert first["deletion_time"] == ""
    assert first["created_time"].endswith("Z")
    assert first["custom_metadata"] is None
    assert write(client, path, {"password": "two", "user": "app"})["version"] == 2

    latest = client.secrets.kv.v2.read_secret(path, raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"password": "two", "user": "app"}
    assert latest["data"]["metadata"]["version"] == 2
    old = read(client, path, version=1)
    assert old["data"]["data"] == {"password": "one"}
    assert old["data"]["metadata"]["version"] == 1
    with pytest.raises(exceptions.InvalidPath):
        read(client, path, version=3)
    with pytest.raises(exceptions.InvalidPath):
        read(client, f"missing/{uid}")


def test_values_keep_their_json_types(client: hvac.Client, uid: str) -> None:
    secret = {
        "s": "x",
        "n": 3,
        "f": 1.5,
        "b": True,
        "null": None,
        "list": [1, "a"],
        "obj": {"k": "v"},
    }
    write(client, f"types/{uid}", secret)
    assert read(client, f"types/{uid}")["data"]["data"] == secret


def test_write_on_a_follower_reads_everywhere(
    client: hvac.Client, node_clients: list[hvac.Client], uid: str
) -> None:
    write(client, f"everywhere/{uid}", {"k": "v"})
    for other in node_clients:
        assert read(other, f"everywhere/{uid}")["data"]["data"] == {"k": "v"}


def test_check_and_set(client: hvac.Client, uid: str) -> None:
    path = f"cas/{uid}"
    assert write(client, path, {"v": "1"}, cas=0)["version"] == 1
    with pytest.raises(exceptions.InvalidRequest, match=CAS_MISMATCH):
        write(client, path, {"v": "again"}, cas=0)
    assert write(client, path, {"v": "2"}, cas=1)["version"] == 2
    with pytest.raises(exceptions.InvalidRequest, match=CAS_MISMATCH):
        write(client, path, {"v": "stale"}, cas=1)
    assert read(client, path)["data"]["data"] == {"v": "2"}


def test_patch_merges_into_the_latest_version(client: hvac.Client, uid: str) -> None:
    path = f"patch/{uid}"
    write(client, path, {"user": "app", "password": "old"})
    patched = client.secrets.kv.v2.patch(path, {"password": "new", "extra": "x"})
    assert patched["data"]["version"] == 2
    assert read(client, path)["data"]["data"] == {"user": "app", "password": "new", "extra": "x"}
    with pytest.raises(exceptions.InvalidPath):
        client.secrets.kv.v2.patch(f"patch-missing/{uid}", {"a": "b"})


def test_soft_delete_latest_and_undelete(client: hvac.Client, uid: str) -> None:
    path = f"softdelete/{uid}"
    write(client, path, {"v": "1"})
    write(client, path, {"v": "2"})
    response = client.secrets.kv.v2.delete_latest_version_of_secret(path)
    assert isinstance(response, requests.Response) and response.status_code == 204

    with pytest.raises(exceptions.InvalidPath):
        read(client, path)
    deleted = read(client, path, raise_on_deleted_version=False)
    assert deleted["data"]["data"] is None
    assert deleted["data"]["metadata"]["version"] == 2
    assert deleted["data"]["metadata"]["deletion_time"] != ""
    assert deleted["data"]["metadata"]["destroyed"] is False
    assert read(client, path, version=1)["data"]["data"] == {"v": "1"}

    response = client.secrets.kv.v2.undelete_secret_versions(path, versions=[2])
    assert response.status_code == 204
    restored = read(client, path)
    assert restored["data"]["data"] == {"v": "2"}
    assert restored["data"]["metadata"]["deletion_time"] == ""


def test_delete_and_destroy_versions(client: hvac.Client, uid: str) -> None:
    path = f"destroy/{uid}"
    for value in ("1", "2", "3"):
        write(client, path, {"v": value})
    assert client.secrets.kv.v2.delete_secret_versions(path, versions=[1]).status_code == 204
    assert client.secrets.kv.v2.destroy_secret_versions(path, versions=[2]).status_code == 204

    versions = client.secrets.kv.v2.read_secret_metadata(path)["data"]["versions"]
    assert versions["1"]["deletion_time"] != "" and versions["1"]["destroyed"] is False
    assert versions["2"]["destroyed"] is True
    assert versions["3"]["deletion_time"] == "" and versions["3"]["destroyed"] is False

    with pytest.raises(exceptions.InvalidPath):
        read(client, path, version=1)
    # A destroyed version is gone for good: hvac raises even when deleted versions may be read.
    with pytest.raises(exceptions.InvalidPath):
        read(client, path, version=2, raise_on_deleted_version=False)
    client.secrets.kv.v2.undelete_secret_versions(path, versions=[1, 2])
    assert read(client, path, version=1)["data"]["data"] == {"v": "1"}
    with pytest.raises(exceptions.InvalidPath):
        read(client, path, version=2)
    assert read(client, path)["data"]["data"] == {"v": "3"}


def test_read_metadata(client: hvac.Client, uid: str) -> None:
    path = f"metadata/{uid}"
    write(client, path, {"v": "1"})
    write(client, path, {"v": "2"})
    metadata = client.secrets.kv.v2.read_secret_metadata(path)["data"]
    assert metadata["current_version"] == 2
    assert metadata["oldest_version"] == 1
    assert metadata["max_versions"] == 0
    assert metadata["cas_required"] is False
    assert metadata["delete_version_after"] == "0s"
    assert metadata["custom_metadata"] is None
    assert metadata["created_time"] <= metadata["updated_time"]
    assert sorted(metadata["versions"]) == ["1", "2"]
    for version in metadata["versions"].values():
        assert set(version) >= {"created_time", "deletion_time", "destroyed"}
    with pytest.raises(exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_metadata(f"metadata-missing/{uid}")


def test_update_metadata(client: hvac.Client, uid: str) -> None:
    path = f"update-metadata/{uid}"
    write(client, path, {"v": "1"})
    response = client.secrets.kv.v2.update_metadata(
        path,
        max_versions=2,
        cas_required=True,
        delete_version_after="1h",
        custom_metadata={"owner": "ops", "tier": "1"},
    )
    assert response.status_code == 204
    metadata = client.secrets.kv.v2.read_secret_metadata(path)["data"]
    assert metadata["max_versions"] == 2
    assert metadata["cas_required"] is True
    assert metadata["delete_version_after"] == "1h0m0s"
    assert metadata["custom_metadata"] == {"owner": "ops", "tier": "1"}
    assert metadata["current_version"] == 1, "updating metadata creates no version"
    assert read(client, path)["data"]["metadata"]["custom_metadata"] == {
        "owner": "ops",
        "tier": "1",
    }

    with pytest.raises(exceptions.InvalidRequest, match=CAS_REQUIRED):
        write(client, path, {"v": "no cas"})
    for version in (1, 2, 3):
        write(client, path, {"v": str(version + 1)}, cas=version)
    metadata = client.secrets.kv.v2.read_secret_metadata(path)["data"]
    assert metadata["current_version"] == 4
    assert metadata["oldest_version"] == 3
    assert sorted(metadata["versions"]) == ["3", "4"], "versions beyond max_versions are pruned"
    with pytest.raises(exceptions.InvalidPath):
        read(client, path, version=1)
    assert read(client, path, version=3)["data"]["data"] == {"v": "3"}


def test_update_metadata_of_a_new_path(client: hvac.Client, uid: str) -> None:
    path = f"metadata-first/{uid}"
    client.secrets.kv.v2.update_metadata(path, max_versions=3, custom_metadata={"a": "b"})
    metadata = client.secrets.kv.v2.read_secret_metadata(path)["data"]
    assert metadata["max_versions"] == 3
    assert metadata["current_version"] == 0
    assert metadata["versions"] == {}
    assert write(client, path, {"v": "1"})["custom_metadata"] == {"a": "b"}


def test_delete_version_after(client: hvac.Client, uid: str) -> None:
    path = f"expiring/{uid}"
    client.secrets.kv.v2.update_metadata(path, delete_version_after="1s")
    write(client, path, {"v": "1"})

    def expired() -> bool | None:
        try:
            read(client, path)
            return None
        except exceptions.InvalidPath:
            return True

    wait_for("the version to expire", expired, timeout=15)
    deleted = read(client, path, raise_on_deleted_version=False)
    assert deleted["data"]["metadata"]["deletion_time"] != ""


def test_delete_metadata_and_all_versions(client: hvac.Client, uid: str) -> None:
    path = f"delete-all/{uid}"
    write(client, path, {"v": "1"})
    write(client, path, {"v": "2"})
    response = client.secrets.kv.v2.delete_metadata_and_all_versions(path)
    assert response.status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_metadata(path)
    with pytest.raises(exceptions.InvalidPath):
        read(client, path, version=1, raise_on_deleted_version=False)
    assert write(client, path, {"v": "fresh"})["version"] == 1


def test_list_secrets(client: hvac.Client, uid: str) -> None:
    base = f"list-{uid}"
    for path in ("a", "b", "dir/c", "dir/deeper/d"):
        write(client, f"{base}/{path}", {"k": "v"})
    assert client.secrets.kv.v2.list_secrets(base)["data"]["keys"] == ["a", "b", "dir/"]
    assert client.secrets.kv.v2.list_secrets(f"{base}/dir")["data"]["keys"] == ["c", "deeper/"]
    client.secrets.kv.v2.delete_metadata_and_all_versions(f"{base}/a")
    assert client.secrets.kv.v2.list_secrets(base)["data"]["keys"] == ["b", "dir/"]
    with pytest.raises(exceptions.InvalidPath) as empty:
        client.secrets.kv.v2.list_secrets(f"empty-{uid}")
    assert empty.value.errors == [], "an empty list is 404 with {'errors': []}"


def test_list_with_strict_http(follower_url: str, root_token: str, uid: str) -> None:
    # strict_http=True makes hvac send `GET ...?list=true` instead of the LIST verb.
    strict = hvac.Client(url=follower_url, token=root_token, strict_http=True, timeout=30)
    write(strict, f"strict-{uid}/a", {"k": "v"})
    assert strict.secrets.kv.v2.list_secrets(f"strict-{uid}")["data"]["keys"] == ["a"]


def test_configure_and_read_configuration(client: hvac.Client, kv2_mount: str) -> None:
    defaults = client.secrets.kv.v2.read_configuration(mount_point=kv2_mount)["data"]
    assert defaults == {"cas_required": False, "delete_version_after": "0s", "max_versions": 0}

    response = client.secrets.kv.v2.configure(
        max_versions=3, cas_required=True, delete_version_after="2h", mount_point=kv2_mount
    )
    assert response.status_code == 204
    config = client.secrets.kv.v2.read_configuration(mount_point=kv2_mount)["data"]
    assert config == {"cas_required": True, "delete_version_after": "2h0m0s", "max_versions": 3}

    with pytest.raises(exceptions.InvalidRequest, match=CAS_REQUIRED):
        write(client, "app", {"v": "1"}, mount_point=kv2_mount)
    for version in range(5):
        write(client, "app", {"v": str(version)}, cas=version, mount_point=kv2_mount)
    metadata = client.secrets.kv.v2.read_secret_metadata("app", mount_point=kv2_mount)["data"]
    assert sorted(metadata["versions"]) == ["3", "4", "5"], "the mount's max_versions applies"


def test_subkeys(client: hvac.Client, uid: str) -> None:
    # hvac 2.4 has no helper for `subkeys`; its generic `read` calls the endpoint unchanged.
    path = f"subkeys/{uid}"
    write(client, path, {"user": "app", "nested": {"password": "x", "deep": {"k": 1}}})
    response = client.read(f"secret/subkeys/{path}")
    assert response is not None, "GET secret/subkeys/<path> answered 404"
    assert response["data"]["subkeys"] == {
        "user": None,
        "nested": {"password": None, "deep": {"k": None}},
    }
    assert response["data"]["metadata"]["version"] == 1
    shallow = client.adapter.get(f"/v1/secret/subkeys/{path}", params={"depth": 1})
    assert shallow["data"]["subkeys"] == {"user": None, "nested": None}


@pytest.mark.parametrize(
    "pair", list(itertools.combinations(range(3), 2)), ids=lambda p: f"nodes{p[0] + 1}-{p[1] + 1}"
)
def test_cas_conflict_between_two_nodes(
    node_clients: list[hvac.Client], uid: str, pair: tuple[int, int]
) -> None:
    path = f"race/{uid}"
    write(node_clients[pair[0]], path, {"writer": "setup"})
    for current in range(1, 4):
        winner = race_once(node_clients, path, pair, current)
        for other in node_clients:
            latest = read(other, path)
            assert latest["data"]["metadata"]["version"] == current + 1
            assert latest["data"]["data"] == {"writer": str(winner)}


def race_once(clients: list[hvac.Client], path: str, pair: tuple[int, int], cas: int) -> int:
    """Two clients write `path` with the same `cas` at once; returns the winner's index."""
    start = threading.Barrier(2)
    outcomes: dict[int, object] = {}

    def attempt(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = write(clients[index], path, {"writer": str(index)}, cas=cas)
        except Exception as err:  # noqa: BLE001 - recorded and asserted below
            outcomes[index] = err

    threads = [threading.Thread(target=attempt, args=(index,)) for index in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [index for index in pair if isinstance(outcomes.get(index), dict)]
    losers = [index for index in pair if index not in winners]
    assert len(winners) == 1, f"exactly one writer must win (cas={cas}): {outcomes}"
    error = outcomes[losers[0]]
    assert isinstance(error, exceptions.InvalidRequest) and CAS_MISMATCH in str(error), error
    assert outcomes[winners[0]]["version"] == cas + 1
    return winners[0]
