"""``raftx serve``'s credential options (`raftx.cli_tls`), without starting a node."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from raftx.cli_tls import is_loopback, serve_credentials
from raftx.errors import ConfigError
from raftx.kv.server import build_parser
from raftx.network import tls


def _args(*extra: str):
    return build_parser().parse_args(["--id", "1", "--listen", "127.0.0.1:7001", "--data-dir", "d", *extra])


def _tls(pki: tls.TestPki, node: int) -> list[str]:
    cert, key = pki.nodes[node]
    return ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(pki.ca)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tls.TestPki:
    return tls.make_test_pki(tmp_path_factory.mktemp("pki"), [1, 2])


def test_no_tls_on_a_non_loopback_address_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="raftx.cli_tls"):
        assert serve_credentials(_args(), 1, "127.0.0.1") == (None, None, None)
        assert not caplog.records
        serve_credentials(_args(), 1, "0.0.0.0")
    assert "SECURITY: listening on 0.0.0.0 without TLS" in caplog.text
    assert is_loopback("::1") and is_loopback("localhost") and not is_loopback("10.0.0.1")


def test_tls_options_build_both_contexts_and_check_the_node_name(pki: tls.TestPki,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="raftx.cli_tls"):
        server, client, token = serve_credentials(_args(*_tls(pki, 1)), 1, "0.0.0.0")
    assert server is not None and client is not None and token is None
    assert "SECURITY" not in caplog.text
    with pytest.raises(ConfigError, match="does not name raftx-node-1"):
        serve_credentials(_args(*_tls(pki, 2)), 1, "127.0.0.1")  # node 2's certificate for node 1
    with pytest.raises(ConfigError, match="go together"):
        serve_credentials(_args("--tls-cert", str(pki.nodes[1][0])), 1, "127.0.0.1")
    with pytest.raises(ConfigError, match="needs --tls-cert"):
        cert, key = pki.nodes[1]
        serve_credentials(_args("--client-tls-cert", str(cert), "--client-tls-key", str(key),
                                "--client-tls-ca", str(pki.ca)), 1, "127.0.0.1")


def test_admin_token_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "token"
    f.write_text("short\n")
    with pytest.raises(ConfigError, match="shorter than 16 bytes"):
        serve_credentials(_args("--admin-token-file", str(f)), 1, "127.0.0.1")
    f.write_text("0123456789abcdef0123\n")
    f.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="raftx.network.tls"):
        assert serve_credentials(_args("--admin-token-file", str(f)), 1, "127.0.0.1")[2] == b"0123456789abcdef0123"
    assert "readable by group or others" in caplog.text
    assert tls.token_matches(b"0123456789abcdef0123", b"0123456789abcdef0123")
    assert not tls.token_matches(b"0123456789abcdef0123", b"0123456789abcdef012")


def test_identity_of_reads_node_ids_and_admin_from_san_and_cn() -> None:
    cert = {"subject": ((("commonName", "raftx-admin"),),),
            "subjectAltName": (("DNS", "raftx-node-7"), ("DNS", "raftx-node-007"), ("DNS", "raftx-node-x"),
                               ("IP Address", "127.0.0.1"))}
    ident = tls.identity_of(cert)
    assert ident.node_ids == {7} and ident.admin
    assert tls.identity_of(None).node_ids == frozenset() and not tls.identity_of(None).admin
