"""hvac's `sys.initialize(pgp_keys=[...], root_token_pgp_key=...)` against a fresh cluster.

The module starts its own uninitialized 3-node cluster. The holder keys are the test-only key
pairs in `fixtures/` (made with GnuPG; see fixtures/README.md). A bad key is refused with 400
before anything changes; then init with two holder keys returns each share as the base64 of an
OpenPGP message (and `keys` as its hex), never a plaintext share.

The shares and the root token are decrypted exactly as an operator would (`base64 -d | gpg
-dq`, in a throwaway GnuPG home with the fixture secret keys) and the decrypted shares unseal
every node through hvac. A rekey through hvac with `pgp_keys` and `backup` stores the encrypted
new shares for `sys.read_backup_keys()`. `gpg` comes from the `gnupg` package that scripts/setup.sh installs;
without it the test fails rather than skipping the decryption.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
from hvac import exceptions

from cluster import Cluster, start_cluster, wait_for

FIXTURES = Path(__file__).parent / "fixtures"
HOLDERS = ["holder1", "holder2"]
GPG = shutil.which("gpg")
#: The decrypted unseal shares, kept by the unseal test for the rekey test after it.
DECRYPTED: dict[str, list[str]] = {}


def public_key(name: str) -> str:
    return (FIXTURES / f"{name}.pub.b64").read_text().strip()


@pytest.fixture(scope="module")
def fresh() -> Iterator[Cluster]:
    """A 3-node cluster that nobody has initialized."""
    started = start_cluster()
    try:
        yield started
    finally:
        started.stop(keep_logs=True)


@pytest.fixture(scope="module")
def gnupg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway GnuPG home holding the fixture secret keys."""
    assert GPG is not None, "gpg is not installed: run scripts/setup.sh (package gnupg)"
    home = tmp_path_factory.mktemp("gnupg")
    os.chmod(home, 0o700)
    for name in HOLDERS:
        subprocess.run(
            [GPG, "--batch", "--quiet", "--homedir", str(home), "--import",
             str(FIXTURES / f"{name}.sec.asc")],
            check=True,
            capture_output=True,
        )
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   check=False, capture_output=True)


def gpg_decrypt(home: Path, encoded: str) -> str:
    """`echo ENCODED | base64 -d | gpg -dq`."""
    result = subprocess.run(
        [GPG, "--batch", "--quiet", "--homedir", str(home), "--decrypt"],
        input=base64.b64decode(encoded),
        capture_output=True,
        check=True,
    )
    return result.stdout.decode()


def anonymous(node_url: str) -> hvac.Client:
    return hvac.Client(url=node_url, timeout=30)


def test_a_bad_key_is_refused_and_changes_nothing(fresh: Cluster) -> None:
    client = anonymous(fresh.nodes[0].url)

    def attempt() -> str | None:
        try:
            client.sys.initialize(
                secret_shares=2, secret_threshold=2,
                pgp_keys=[public_key("holder1"), "bm90IGEga2V5"],
            )
        except exceptions.InvalidRequest as err:
            return str(err)
        except (exceptions.VaultDown, exceptions.InternalServerError, exceptions.UnexpectedError):
            return None
        raise AssertionError("an invalid PGP key was accepted")

    message = wait_for("sys/init refusing a bad key", attempt)
    assert "pgp_keys[1]" in message and "not an OpenPGP public key" in message
    with pytest.raises(exceptions.InvalidRequest, match="keybase"):
        client.sys.initialize(
            secret_shares=2, secret_threshold=2,
            pgp_keys=[public_key("holder1"), "keybase:someone"],
        )
    with pytest.raises(exceptions.InvalidRequest, match="root_token_pgp_key"):
        client.sys.initialize(
            secret_shares=2, secret_threshold=2,
            pgp_keys=[public_key("holder1"), public_key("holder2")],
            root_token_pgp_key="not base64 !",
        )
    for node in fresh.nodes:
        assert anonymous(node.url).sys.is_initialized() is False


@pytest.fixture(scope="module")
def init_result(fresh: Cluster) -> dict:
    """`sys.initialize(2, 2, pgp_keys=[holder1, holder2], root_token_pgp_key=holder1)`."""
    client = anonymous(fresh.nodes[0].url)

    def attempt() -> dict | None:
        try:
            return client.sys.initialize(
                secret_shares=2, secret_threshold=2,
                pgp_keys=[public_key(name) for name in HOLDERS],
                root_token_pgp_key=public_key("holder1"),
            )
        except (exceptions.VaultDown, exceptions.InternalServerError, exceptions.UnexpectedError):
            return None

    return wait_for("sys/init with pgp_keys through hvac", attempt)


def test_initialize_returns_encrypted_shares(fresh: Cluster, init_result: dict) -> None:
    assert len(init_result["keys_base64"]) == 2
    assert len(init_result["keys"]) == 2
    for hex_key, b64_key in zip(init_result["keys"], init_result["keys_base64"]):
        message = base64.b64decode(b64_key, validate=True)
        assert binascii.hexlify(message).decode() == hex_key
        # An OpenPGP message (a packet with the "new/old format" bit set), far longer than a
        # plaintext share.
        assert message[0] & 0x80 and len(message) > 100
    token = base64.b64decode(init_result["root_token"], validate=True)
    assert token[0] & 0x80 and not init_result["root_token"].startswith("hvs.")
    for node in fresh.nodes:
        assert anonymous(node.url).sys.is_initialized() is True
    # The encrypted form is not a share.
    with pytest.raises(exceptions.InvalidRequest):
        anonymous(fresh.nodes[1].url).sys.submit_unseal_key(key=init_result["keys_base64"][0])
    anonymous(fresh.nodes[1].url).sys.submit_unseal_key(reset=True)


def test_decrypted_shares_unseal_every_node(
    fresh: Cluster, init_result: dict, gnupg_home: Path
) -> None:
    shares = [gpg_decrypt(gnupg_home, key) for key in init_result["keys_base64"]]
    for share in shares:
        assert all(c in "0123456789abcdef" for c in share) and len(share) > 32
    root_token = gpg_decrypt(gnupg_home, init_result["root_token"])
    assert root_token.startswith("hvs.")
    for node in fresh.nodes:
        status = anonymous(node.url).sys.submit_unseal_keys(keys=shares)
        assert status["sealed"] is False
    fresh.root_token = root_token
    DECRYPTED["shares"] = shares
    leader = fresh.wait_leader()
    fresh.wait_serving(leader)
    me = hvac.Client(url=fresh.nodes[leader].url, token=root_token, timeout=30)
    assert me.auth.token.lookup_self()["data"]["policies"] == ["root"]


def test_rekey_with_pgp_keys_and_backup(fresh: Cluster, gnupg_home: Path) -> None:
    """`sys.start_rekey(pgp_keys=..., backup=True)`, then `sys.read_backup_keys()`: the same
    encrypted shares by fingerprint; they decrypt to shares; DELETE removes the backup."""
    shares = DECRYPTED["shares"]
    leader = fresh.wait_leader()
    client = hvac.Client(url=fresh.nodes[leader].url, token=fresh.root_token, timeout=30)
    started = client.sys.start_rekey(
        secret_shares=2, secret_threshold=2,
        pgp_keys=[public_key(name) for name in HOLDERS], backup=True,
    )
    assert started["backup"] is True and len(started["pgp_fingerprints"]) == 2
    done = client.sys.rekey_multi(shares, nonce=started["nonce"])
    assert done["complete"] is True and done["backup"] is True
    fingerprints = done["pgp_fingerprints"]

    backup = client.sys.read_backup_keys()["data"]
    assert backup["nonce"] == started["nonce"]
    for index, fingerprint in enumerate(fingerprints):
        assert backup["keys"][fingerprint] == [done["keys"][index]]
        assert backup["keys_base64"][fingerprint] == [done["keys_base64"][index]]
    new_shares = [gpg_decrypt(gnupg_home, key) for key in done["keys_base64"]]
    assert all(len(share) > 32 for share in new_shares) and new_shares != shares
    DECRYPTED["shares"] = new_shares

    # Without a token the backup is refused; after DELETE it is gone.
    with pytest.raises(exceptions.Forbidden):
        anonymous(fresh.nodes[leader].url).sys.read_backup_keys()
    response = client.adapter.delete("/v1/sys/rekey/backup")
    assert response.status_code == 204
    with pytest.raises(exceptions.InvalidRequest, match="no backed-up keys"):
        client.sys.read_backup_keys()
