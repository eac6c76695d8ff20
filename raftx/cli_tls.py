"""The ``--tls-*`` and ``--admin-token-file`` options of the ``raftx`` commands.

``raftx serve`` (`add_serve_options`, `serve_credentials`):

* ``--tls-cert FILE --tls-key FILE --tls-ca FILE``: mutual TLS for all traffic. The
  node presents this certificate (it must name ``raftx-node-<id>``, see
  `raftx.network.tls`) and requires every peer and client to present one signed by
  the CA. The three go together.
* ``--client-tls-cert / --client-tls-key / --client-tls-ca``: the node's identity
  when *it* connects to its peers (default: the ``--tls-*`` files), for a PKI that
  issues separate server and client certificates; the certificate must name the
  same ``raftx-node-<id>``.
* ``--admin-token-file FILE``: the token that allows membership changes
  (besides a ``raftx-admin`` certificate).

``raftx status / member / bench`` (`add_client_options`, `client_credentials`):
``--tls-cert / --tls-key / --tls-ca`` is the client's identity (use a certificate
naming no node: ``raftx certs`` writes ``admin.pem`` and ``client.pem``);
``raftx member`` also takes ``--admin-token-file``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import ssl
from pathlib import Path
from typing import Any, cast

from raftx.errors import ConfigError
from raftx.network import tls

__all__ = ["add_client_options", "add_serve_options", "client_credentials", "is_loopback",
           "serve_credentials"]

logger = logging.getLogger(__name__)


def _tls_triplet(p: Any, prefix: str, cert_help: str, ca_help: str) -> None:
    p.add_argument(f"--{prefix}tls-cert", type=Path, metavar="FILE", help=cert_help)
    p.add_argument(f"--{prefix}tls-key", type=Path, metavar="FILE", help=f"the private key of --{prefix}tls-cert (PEM)")
    p.add_argument(f"--{prefix}tls-ca", type=Path, metavar="FILE", help=ca_help)


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """``raftx serve``'s credential options (module docstring)."""
    g = p.add_argument_group("security", "mutual TLS and the admin credential (see SECURITY.md)")
    _tls_triplet(g, "", "mutual TLS: this node's certificate (PEM, naming raftx-node-<id>)",
                 "the CA (PEM) every peer's and client's certificate must chain to")
    _tls_triplet(g, "client-", "the certificate the node presents to its peers (default: --tls-cert)",
                 "the CA the peers' certificates must chain to (default: --tls-ca)")
    g.add_argument("--admin-token-file", type=Path, metavar="FILE",
                   help="a file holding the token that allows membership changes (raftx member --admin-token-file)")


def add_client_options(p: argparse.ArgumentParser, *, admin: bool = False) -> None:
    """A client command's credential options (module docstring)."""
    _tls_triplet(p, "", "mutual TLS with the nodes: a client (or raftx-admin) certificate (PEM)",
                 "the CA (PEM) the nodes' certificates must chain to")
    if admin:
        p.add_argument("--admin-token-file", type=Path, metavar="FILE",
                       help="the nodes' admin token (else --tls-cert must be a raftx-admin certificate)")


def _context(args: argparse.Namespace, prefix: str, server: bool) -> ssl.SSLContext | None:
    attr = prefix.replace("-", "_")
    files = [getattr(args, f"{attr}tls_{k}") for k in ("cert", "key", "ca")]
    if not any(files):
        return None
    if not all(files):
        raise ConfigError(f"--{prefix}tls-cert, --{prefix}tls-key and --{prefix}tls-ca go together")
    cert, key, ca = files
    return tls.server_context(cert, key, ca) if server else tls.client_context(cert, key, ca)


def client_credentials(args: argparse.Namespace) -> tuple[ssl.SSLContext | None, bytes | None]:
    """``(ssl context or None, admin token or None)`` from a client command's options."""
    token_file = getattr(args, "admin_token_file", None)
    return _context(args, "", server=False), (tls.read_token_file(token_file) if token_file else None)


def serve_credentials(args: argparse.Namespace, node_id: int, listen_host: str
                      ) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None, bytes | None]:
    """``(listener context, peer-client context, admin token)`` for ``raftx serve``.

    Checks that the certificates name ``raftx-node-<node_id>`` and warns when the
    node listens on a non-loopback address without TLS. `ConfigError` if not usable.
    """
    server_ctx = _context(args, "", server=True)
    client_ctx = _context(args, "client-", server=False)
    if client_ctx is not None and server_ctx is None:
        raise ConfigError("--client-tls-* needs --tls-cert, --tls-key and --tls-ca as well")
    if server_ctx is not None:
        if client_ctx is None:
            client_ctx = tls.client_context(args.tls_cert, args.tls_key, args.tls_ca)
        for flag, path in (("--tls-cert", args.tls_cert), ("--client-tls-cert", args.client_tls_cert or args.tls_cert)):
            decoded = _decoded(path)
            ids = tls.identity_of(decoded).node_ids
            if decoded is not None and node_id not in ids:
                raise ConfigError(f"{flag} {path} does not name {tls.node_name(node_id)} (it names nodes "
                                  f"{sorted(ids) or 'none'}); peers would refuse it")
    elif not is_loopback(listen_host):
        logger.warning("SECURITY: listening on %s without TLS: anyone who can reach this port and knows the "
                       "cluster name can connect; use --tls-cert/--tls-key/--tls-ca (see SECURITY.md)",
                       listen_host)
    token = tls.read_token_file(args.admin_token_file) if args.admin_token_file else None
    return server_ctx, client_ctx, token


def _decoded(path: Path) -> dict[str, Any] | None:
    """A certificate file in ``getpeercert()`` form, for its names (already loaded and
    checked by the context); None where this Python cannot decode one."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)  # CPython's, undocumented
    if decode is None:
        return None
    try:
        return cast(dict[str, Any], decode(str(path)))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read certificate {path}: {exc}") from exc


def is_loopback(host: str) -> bool:
    """``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
