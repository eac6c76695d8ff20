"""Node addresses as a key-value client is given them: ``"HOST:PORT"``, ``"ID=HOST:PORT"``
or a mapping ``{id: "host:port"}`` (`raftx.kv.KVClient`, the ``raftx`` client commands)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from raftx.errors import ConfigError, Unreachable
from raftx.network.raft_rpc import parse_addr

__all__ = ["parse_addrs", "parse_client_addrs"]


def parse_addrs(addrs: Iterable[str] | Mapping[int, str]) -> dict[int, str]:
    """``["1=host:port", ...]`` or ``{1: "host:port"}`` -> ``{1: "host:port"}``; `ConfigError` if malformed."""
    out: dict[int, str] = {}
    items: list[tuple[Any, Any]]
    if isinstance(addrs, Mapping):
        items = list(addrs.items())
    elif isinstance(addrs, str):
        raise ConfigError("addrs must be a list of 'ID=HOST:PORT' strings, not one string")
    else:
        items = []
        for a in addrs:
            text, sep, address = str(a).partition("=")
            if not sep:
                raise ConfigError(f"address {a!r} has no node id: write it as ID=HOST:PORT (e.g. 1=127.0.0.1:7001)")
            items.append((text, address))
    for node, addr in items:
        try:
            node_id = int(node)
            if node_id < 0:
                raise ValueError
            parse_addr(str(addr))
        except (ValueError, Unreachable):
            raise ConfigError(f"bad node address {node!r}={addr!r}: expected ID=HOST:PORT") from None
        out[node_id] = str(addr)
    if not out:
        raise ConfigError("KVClient needs at least one node address")
    return out


def parse_client_addrs(addrs: Iterable[str] | Mapping[int, str]) -> tuple[dict[int, str], list[str]]:
    """Client addresses -> ``({id: "host:port"}, ["host:port", ...])``: those given as
    ``ID=HOST:PORT`` (or a mapping) and the plain ``HOST:PORT`` ones; `ConfigError` if
    one is malformed or there are none."""
    if isinstance(addrs, Mapping):
        return parse_addrs(addrs), []
    if isinstance(addrs, str):
        raise ConfigError("addrs must be a list of 'HOST:PORT' or 'ID=HOST:PORT' strings, not one string")
    named: list[str] = []
    plain: list[str] = []
    for a in addrs:
        text = str(a)
        if "=" in text:
            named.append(text)
            continue
        try:
            parse_addr(text)
        except Unreachable:
            raise ConfigError(f"bad node address {text!r}: expected HOST:PORT or ID=HOST:PORT") from None
        if text not in plain:
            plain.append(text)
    if not named and not plain:
        raise ConfigError("KVClient needs at least one node address")
    return (parse_addrs(named) if named else {}), plain
