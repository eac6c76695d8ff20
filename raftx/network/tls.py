"""Credentials for raftx: mutual TLS contexts from PEM files, who a certificate says
its owner is, and admin tokens.

A raftx cluster runs mutual TLS with one CA (or a few) that signs every
certificate; what a certificate *allows* comes from the names in it (SAN DNS names
and the subject CN):

* ``raftx-node-<id>`` (`node_name`): the holder is node ``<id>``. On a TLS
  connection a hello must name a sender the certificate names (`raftx.network.server`),
  so a member's certificate cannot speak for another node; a certificate naming no
  node is a *client* certificate and its connection may call client methods only;
* ``raftx-admin`` (`ADMIN_NAME`): the holder may change the membership
  (``kv.member_add`` / ``kv.member_remove``, `raftx.kv.service`).

`server_context` and `client_context` build the two sides from files (TLS 1.3 or
later, peer certificate required on both sides). `read_token_file` reads an admin
token (``--admin-token-file``), the credential for membership changes without an
admin certificate; `token_matches` compares in constant time. `make_test_pki` writes a CA and
such certificates for a test cluster (``raftx certs``; needs the ``cryptography``
package: ``pip install 'raftx[tls]'``, imported only there).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import logging
import os
import ssl
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raftx.errors import ConfigError

__all__ = [
    "ADMIN_NAME",
    "CLIENT_NAME",
    "NODE_NAME_PREFIX",
    "CertIdentity",
    "TestPki",
    "client_context",
    "identity_of",
    "make_test_pki",
    "node_name",
    "read_token_file",
    "server_context",
    "token_matches",
]

logger = logging.getLogger(__name__)

#: Shortest admin token `read_token_file` accepts (bytes).
MIN_TOKEN_BYTES = 16

#: The name prefix that binds a certificate to a node id: ``raftx-node-7`` is node 7.
NODE_NAME_PREFIX = "raftx-node-"
#: The name that makes a certificate an admin credential (membership changes).
ADMIN_NAME = "raftx-admin"
#: The name `make_test_pki` gives its plain client certificate (no special rights).
CLIENT_NAME = "raftx-client"


def node_name(node_id: int) -> str:
    """The certificate name of node ``node_id`` (``raftx-node-<id>``)."""
    return f"{NODE_NAME_PREFIX}{node_id}"


@dataclass(frozen=True)
class CertIdentity:
    """What a peer certificate (``SSLSocket.getpeercert()`` form) names."""

    #: SAN DNS names and the subject common name(s).
    names: frozenset[str]
    #: Node ids from ``raftx-node-<id>`` names (empty: not a node's certificate).
    node_ids: frozenset[int]
    #: The certificate carries `ADMIN_NAME`.
    admin: bool


def identity_of(peercert: dict[str, Any] | None) -> CertIdentity:
    """The names, node ids and admin flag of a verified peer certificate (None: no certificate)."""
    names: set[str] = set()
    if peercert:
        for kind, value in peercert.get("subjectAltName", ()):
            if kind == "DNS" and isinstance(value, str):
                names.add(value)
        for rdn in peercert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName" and isinstance(value, str):
                    names.add(value)
    node_ids: set[int] = set()
    for name in names:
        digits = name[len(NODE_NAME_PREFIX):] if name.startswith(NODE_NAME_PREFIX) else ""
        # Canonical decimal only ("07" or "+7" would let two names mean one node).
        if digits.isdigit() and digits.isascii() and str(int(digits)) == digits and int(digits) < 2**64:
            node_ids.add(int(digits))
    return CertIdentity(frozenset(names), frozenset(node_ids), ADMIN_NAME in names)


def _load(ctx: ssl.SSLContext, cert: str | os.PathLike[str], key: str | os.PathLike[str],
          ca: str | os.PathLike[str]) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_verify_locations(cafile=os.fspath(ca))
        ctx.load_cert_chain(os.fspath(cert), os.fspath(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS files (cert {cert}, key {key}, CA {ca}): {exc}") from exc
    return ctx


def server_context(cert: str | os.PathLike[str], key: str | os.PathLike[str],
                   ca: str | os.PathLike[str]) -> ssl.SSLContext:
    """A listener's context: presents ``cert``/``key``, requires a client certificate
    signed by ``ca`` (mutual TLS, TLS 1.3+). `ConfigError` if a file cannot be loaded."""
    return _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, key, ca)


def client_context(cert: str | os.PathLike[str], key: str | os.PathLike[str],
                   ca: str | os.PathLike[str]) -> ssl.SSLContext:
    """A connecting side's context: presents ``cert``/``key``, verifies the server's
    certificate against ``ca`` and its host name or IP address (TLS 1.3+)."""
    ctx = _load(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), cert, key, ca)
    ctx.check_hostname = True
    return ctx


def read_token_file(path: str | os.PathLike[str]) -> bytes:
    """The admin token in ``path`` (surrounding whitespace stripped). `ConfigError` if
    unreadable or shorter than `MIN_TOKEN_BYTES`; a warning if others may read it."""
    try:
        st = os.stat(path)
        token = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the admin token file {path}: {exc}") from exc
    if len(token) < MIN_TOKEN_BYTES:
        raise ConfigError(f"the admin token in {path} is shorter than {MIN_TOKEN_BYTES} bytes")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("admin token file %s is readable by group or others (chmod 600 it)", path)
    return token


def token_matches(expected: bytes, given: bytes) -> bool:
    """Constant-time comparison of two tokens (their SHA-256, so lengths do not leak either)."""
    return hmac.compare_digest(hashlib.sha256(expected).digest(), hashlib.sha256(given).digest())


# -- a throwaway PKI for test clusters (raftx certs) ------------------------------------


@dataclass
class TestPki:
    """Paths written by `make_test_pki` (``<name>.pem`` certificate, ``<name>.key`` key)."""

    __test__ = False  # not a pytest test class

    directory: Path
    ca: Path
    nodes: dict[int, tuple[Path, Path]]
    admin: tuple[Path, Path]
    client: tuple[Path, Path]


def _crypto() -> Any:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("making certificates needs the 'cryptography' package: "
                          "pip install 'raftx[tls]'") from None
    return x509, hashes, serialization, ec, NameOID, ExtendedKeyUsageOID


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def make_test_pki(directory: str | os.PathLike[str], node_ids: Iterable[int], *,
                  hosts: Iterable[str] = ("127.0.0.1", "localhost"), days: int = 365) -> TestPki:
    """Write a CA and certificates for a test cluster into ``directory``.

    ``ca.pem`` (+ ``ca.key``, kept to sign more later: an existing pair is reused, so
    a node added later gets a certificate from the same CA), ``node<id>.pem/.key``
    for each id (names ``raftx-node-<id>`` plus ``hosts`` as DNS / IP SANs, usable as
    server and client certificate), ``admin.pem/.key`` (``raftx-admin``) and
    ``client.pem/.key`` (``raftx-client``, no rights beyond the key-value methods).
    Keys are ECDSA P-256, written with mode 0600. For tests and trials: a production
    PKI keeps the CA key offline.
    """
    x509, hashes, serialization, ec, NameOID, EKU = _crypto()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ids = sorted(set(node_ids))
    for i in ids:
        if not (isinstance(i, int) and 0 <= i < 2**63):
            raise ConfigError(f"node id must be an int in 0..2**63-1, not {i!r}")
    now = datetime.datetime.now(datetime.timezone.utc)
    pem = serialization.Encoding.PEM

    def name(cn: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def save_key(path: Path, key: Any) -> None:
        _write_private(path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))

    ca_pem, ca_key_path = out / "ca.pem", out / "ca.key"
    if ca_pem.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (x509.CertificateBuilder().subject_name(name("raftx test CA")).issuer_name(name("raftx test CA"))
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .sign(ca_key, hashes.SHA256()))
        save_key(ca_key_path, ca_key)
        ca_pem.write_bytes(ca_cert.public_bytes(pem))

    sans: list[Any] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))

    def issue(stem: str, cn: str, extra: list[Any]) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([EKU.SERVER_AUTH, EKU.CLIENT_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn), *extra]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path, key_path = out / f"{stem}.pem", out / f"{stem}.key"
        save_key(key_path, key)
        cert_path.write_bytes(cert.public_bytes(pem))
        return cert_path, key_path

    nodes = {i: issue(f"node{i}", node_name(i), sans) for i in ids}
    admin = issue("admin", ADMIN_NAME, [])
    client = issue("client", CLIENT_NAME, [])
    return TestPki(out, ca_pem, nodes, admin, client)
