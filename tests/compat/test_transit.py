"""hvac's transit API (`client.secrets.transit`) against the shared cluster, through a follower:
keys (create, read, list, config, rotate, delete), encrypt / decrypt (single and batch, on every
node), rewrap, min_decryption_version, data keys, ed25519 sign / verify, HMAC (checked against
Python's hmac with the exported key), AEAD ciphertexts opened with the exported key by an
independent implementation (`cryptography`), random bytes and hashing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterator

import hvac
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hvac import exceptions


def b64(data: bytes) -> str:
    """Standard base64 text, as transit expects for plaintext and input."""
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def transit(cluster, root_token: str) -> Iterator[str]:
    """A transit mount for this module."""
    path = f"transit-{uuid.uuid4().hex[:8]}"
    root = hvac.Client(url=cluster.nodes[0].url, token=root_token, timeout=30)
    root.sys.enable_secrets_engine("transit", path=path)
    yield path
    root.sys.disable_secrets_engine(path)


@pytest.fixture
def key(client: hvac.Client, transit: str, uid: str) -> str:
    """A fresh aes256-gcm96 key."""
    name = f"aes-{uid}"
    client.secrets.transit.create_key(name, mount_point=transit)
    return name


def test_create_read_list_keys(client: hvac.Client, transit: str, key: str) -> None:
    data = client.secrets.transit.read_key(key, mount_point=transit)["data"]
    assert data["name"] == key
    assert data["type"] == "aes256-gcm96"
    assert data["latest_version"] == 1
    assert data["min_decryption_version"] == 1
    assert data["min_encryption_version"] == 0
    assert data["deletion_allowed"] is False
    assert data["exportable"] is False
    assert data["supports_encryption"] is True
    assert data["supports_signing"] is False
    assert isinstance(data["keys"]["1"], int)
    assert key in client.secrets.transit.list_keys(mount_point=transit)["data"]["keys"]
    with pytest.raises(exceptions.InvalidPath):
        client.secrets.transit.read_key(f"missing-{key}", mount_point=transit)


def test_encrypt_decrypt_on_every_node(
    client: hvac.Client, node_clients: list[hvac.Client], transit: str, key: str
) -> None:
    plaintext = b64(b"the eagle lands at dawn")
    encrypted = client.secrets.transit.encrypt_data(key, plaintext=plaintext, mount_point=transit)
    ciphertext = encrypted["data"]["ciphertext"]
    assert ciphertext.startswith("vault:v1:")
    assert encrypted["data"]["key_version"] == 1
    for other in node_clients:
        decrypted = other.secrets.transit.decrypt_data(
            key, ciphertext=ciphertext, mount_point=transit
        )
        assert decrypted["data"]["plaintext"] == plaintext
    with pytest.raises(exceptions.InvalidRequest):
        client.secrets.transit.decrypt_data(key, ciphertext="vault:v1:AAAA", mount_point=transit)


def test_batch_encrypt_decrypt(client: hvac.Client, transit: str, key: str) -> None:
    items = [b64(f"item {index}".encode()) for index in range(3)]
    encrypted = client.secrets.transit.encrypt_data(
        key, batch_input=[{"plaintext": item} for item in items], mount_point=transit
    )["data"]["batch_results"]
    assert len(encrypted) == 3
    decrypted = client.secrets.transit.decrypt_data(
        key,
        batch_input=[{"ciphertext": result["ciphertext"]} for result in encrypted],
        mount_point=transit,
    )["data"]["batch_results"]
    assert [result["plaintext"] for result in decrypted] == items


def test_rotate_rewrap_and_min_decryption_version(
    client: hvac.Client, transit: str, key: str
) -> None:
    transit_api = client.secrets.transit
    plaintext = b64(b"rotate me")
    old = transit_api.encrypt_data(key, plaintext=plaintext, mount_point=transit)["data"][
        "ciphertext"
    ]
    transit_api.rotate_key(key, mount_point=transit)
    assert transit_api.read_key(key, mount_point=transit)["data"]["latest_version"] == 2

    new = transit_api.encrypt_data(key, plaintext=plaintext, mount_point=transit)["data"]
    assert new["ciphertext"].startswith("vault:v2:") and new["key_version"] == 2
    assert (
        transit_api.decrypt_data(key, ciphertext=old, mount_point=transit)["data"]["plaintext"]
        == plaintext
    )

    rewrapped = transit_api.rewrap_data(key, ciphertext=old, mount_point=transit)["data"]
    assert rewrapped["ciphertext"].startswith("vault:v2:")
    assert "plaintext" not in rewrapped
    assert (
        transit_api.decrypt_data(key, ciphertext=rewrapped["ciphertext"], mount_point=transit)[
            "data"
        ]["plaintext"]
        == plaintext
    )

    transit_api.update_key_configuration(key, min_decryption_version=2, mount_point=transit)
    assert transit_api.read_key(key, mount_point=transit)["data"]["min_decryption_version"] == 2
    with pytest.raises(exceptions.InvalidRequest):
        transit_api.decrypt_data(key, ciphertext=old, mount_point=transit)


def test_delete_key(client: hvac.Client, transit: str, key: str) -> None:
    with pytest.raises(exceptions.InvalidRequest):
        client.secrets.transit.delete_key(key, mount_point=transit)
    client.secrets.transit.update_key_configuration(key, deletion_allowed=True, mount_point=transit)
    assert client.secrets.transit.delete_key(key, mount_point=transit).status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        client.secrets.transit.read_key(key, mount_point=transit)


def test_data_key(client: hvac.Client, transit: str, key: str) -> None:
    generated = client.secrets.transit.generate_data_key(
        key, key_type="plaintext", mount_point=transit
    )["data"]
    assert len(base64.b64decode(generated["plaintext"])) == 32
    decrypted = client.secrets.transit.decrypt_data(
        key, ciphertext=generated["ciphertext"], mount_point=transit
    )["data"]["plaintext"]
    assert decrypted == generated["plaintext"]
    wrapped = client.secrets.transit.generate_data_key(
        key, key_type="wrapped", mount_point=transit
    )["data"]
    assert "plaintext" not in wrapped and wrapped["ciphertext"].startswith("vault:v1:")


def test_ed25519_sign_verify(client: hvac.Client, transit: str, uid: str) -> None:
    name = f"ed-{uid}"
    transit_api = client.secrets.transit
    transit_api.create_key(name, key_type="ed25519", mount_point=transit)
    data = transit_api.read_key(name, mount_point=transit)["data"]
    assert data["type"] == "ed25519"
    assert data["supports_signing"] is True
    assert data["keys"]["1"]["public_key"]

    message = b64(b"signed statement")
    signature = transit_api.sign_data(name, hash_input=message, mount_point=transit)["data"][
        "signature"
    ]
    assert signature.startswith("vault:v1:")
    verified = transit_api.verify_signed_data(
        name, message, signature=signature, mount_point=transit
    )
    assert verified["data"]["valid"] is True
    forged = transit_api.verify_signed_data(
        name, b64(b"another statement"), signature=signature, mount_point=transit
    )
    assert forged["data"]["valid"] is False
    with pytest.raises(exceptions.InvalidRequest):
        transit_api.encrypt_data(name, plaintext=message, mount_point=transit)


def test_hmac_matches_the_exported_key(client: hvac.Client, transit: str, uid: str) -> None:
    name = f"hmac-{uid}"
    transit_api = client.secrets.transit
    transit_api.create_key(name, exportable=True, mount_point=transit)
    message = b"authenticate me"
    mac = transit_api.generate_hmac(name, b64(message), algorithm="sha2-256", mount_point=transit)
    mac = mac["data"]["hmac"]
    assert mac.startswith("vault:v1:")

    exported = transit_api.export_key(name, key_type="hmac-key", mount_point=transit)["data"]
    raw_key = base64.b64decode(exported["keys"]["1"])
    expected = hmac.new(raw_key, message, hashlib.sha256).digest()
    assert mac == "vault:v1:" + b64(expected)

    assert transit_api.verify_signed_data(name, b64(message), hmac=mac, mount_point=transit)[
        "data"
    ]["valid"]
    wrong = transit_api.verify_signed_data(name, b64(b"tampered"), hmac=mac, mount_point=transit)
    assert wrong["data"]["valid"] is False


@pytest.mark.parametrize(
    ("key_type", "aead"),
    # hvac 2.4.0 refuses aes128-gcm96 client-side; the cluster test t90 covers that type.
    [("aes256-gcm96", AESGCM), ("chacha20-poly1305", ChaCha20Poly1305)],
)
def test_ciphertexts_open_with_the_exported_key(
    client: hvac.Client, transit: str, uid: str, key_type: str, aead: type
) -> None:
    name = f"exp-{key_type}-{uid}"
    transit_api = client.secrets.transit
    transit_api.create_key(name, key_type=key_type, exportable=True, mount_point=transit)
    transit_api.rotate_key(name, mount_point=transit)
    plaintext = b"opened elsewhere " * 64
    ciphertext = transit_api.encrypt_data(name, b64(plaintext), mount_point=transit)["data"][
        "ciphertext"
    ]
    assert ciphertext.startswith("vault:v2:")
    exported = transit_api.export_key(name, key_type="encryption-key", mount_point=transit)
    keys = exported["data"]["keys"]
    assert set(keys) == {"1", "2"}
    raw = base64.b64decode(ciphertext.removeprefix("vault:v2:"))
    nonce, sealed = raw[:12], raw[12:]
    assert aead(base64.b64decode(keys["2"])).decrypt(nonce, sealed, None) == plaintext
    with pytest.raises(Exception):
        aead(base64.b64decode(keys["1"])).decrypt(nonce, sealed, None)


def test_random_and_hash(client: hvac.Client, transit: str) -> None:
    random = client.secrets.transit.generate_random_bytes(n_bytes=16, mount_point=transit)
    assert len(base64.b64decode(random["data"]["random_bytes"])) == 16
    digest = client.secrets.transit.hash_data(
        b64(b"abc"), algorithm="sha2-256", mount_point=transit
    )
    assert digest["data"]["sum"] == hashlib.sha256(b"abc").hexdigest()
