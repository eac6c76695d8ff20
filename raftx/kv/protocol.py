"""The key-value client protocol: what ``kv.*`` requests and responses carry.

They travel as ordinary requests of raftx's RPC layer (`raftx.network.RpcServer` /
`RpcClient`) on the node's own TCP port, so they get the peer traffic's framing,
hello check (cluster name, target node id, optional mutual TLS), frame-size limits
and flow control. Payloads are msgpack:

``kv.write``  request ``[command, ...]``: a batch of `raftx.kv.commands` command bytes,
              proposed together (one `raftx.Raft.client_write_many`);
``kv.read``   request ``[linearizable, [key, ...]]``: linearizable reads confirm
              leadership first (ReadIndex, thesis §6.4); otherwise any node answers
              from its applied state (possibly stale);
``kv.range``  request ``[linearizable, start, end, limit, keys_only]`` (``end`` nil: to the
              last key; ``limit`` 0: all); one item ``[OK, [revision, [[key, value, mod_revision],
              ...]]]`` (values nil with ``keys_only``; ``revision``: the node's applied one);
``kv.watch``  request ``[prefix, start_revision, max_wait_ms, max_events]`` (``start_revision``
              0: from the node's next revision): a long poll, answered once there are changes
              of keys under ``prefix`` from ``start_revision`` on, or after ``max_wait_ms``
              (at most `MAX_WATCH_WAIT_MS`); one item ``[OK, [next_revision, [[type, key, value,
              mod_revision], ...]]]`` (type `EVENT_PUT` / `EVENT_DELETE`; ask from
              ``next_revision`` next time), or ``[ITEM_COMPACTED, compact_revision]``. Any node
              answers (its applied state holds committed changes only, §5.4);
``kv.status`` request empty; response a map (`STATUS_FIELDS`).
``kv.member_add``     request ``[node_id, "host:port"(, token)]``: add the node as a learner,
              wait until it caught up, then make it a voter (joint consensus,
              thesis §4.3); response ``[REPLY_RESULTS, [[OK, membership]]]`` with
              ``membership = {"members": [...], "learners": [...], "nodes": [[id, addr], ...]}``.
``kv.member_remove``  request ``[node_id(, token)]``: change the membership without it (a
              voter leaves through joint consensus; a learner is dropped); same response.
              Both admin methods redirect from a follower like writes do, and need an
              admin credential: a TLS certificate named ``raftx-admin`` or the optional
              ``token`` (bytes) equal to the node's ``raftx serve --admin-token-file``
              (else `raftx.errors.NotAuthorized`, nothing changed).

The response to ``kv.write`` / ``kv.read`` is ``[REPLY_RESULTS, [[status, value], ...]]``
(one per item, in order) or ``[REPLY_REDIRECT, leader_id, leader_addr]`` when this
node is not the leader (either may be nil: no leader known, an election is running).
Per-item statuses are `raftx.kv.commands` statuses plus `ITEM_REDIRECT` (value
``[leader_id, leader_addr]``: the leader changed during the batch) and
`ITEM_UNAVAILABLE` (value: the reason; the outcome of a write is unknown). Both mean
"retry": retrying a write with the same ``(client_id, serial)`` is safe (§8).
A malformed request is answered with an error (`raftx.errors.BadCommand`) and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from raftx.errors import BadCommand
from raftx.kv.commands import MAX_KEY_BYTES

__all__ = [
    "EVENT_DELETE",
    "EVENT_PUT",
    "ITEM_COMPACTED",
    "ITEM_REDIRECT",
    "ITEM_UNAVAILABLE",
    "MAX_BATCH",
    "MAX_WATCH_WAIT_MS",
    "RANGE",
    "WATCH",
    "READ",
    "REPLY_REDIRECT",
    "REPLY_RESULTS",
    "MEMBER_ADD",
    "MEMBER_REMOVE",
    "STATUS",
    "STATUS_FIELDS",
    "WRITE",
    "decode_read",
    "decode_reply",
    "decode_status",
    "decode_member",
    "decode_range",
    "decode_watch",
    "decode_write",
    "encode_read",
    "encode_write",
    "pack",
]

WRITE = "kv.write"
READ = "kv.read"
STATUS = "kv.status"
RANGE = "kv.range"
WATCH = "kv.watch"
MEMBER_ADD = "kv.member_add"
MEMBER_REMOVE = "kv.member_remove"

REPLY_RESULTS = 0
REPLY_REDIRECT = 1

ITEM_REDIRECT = 100
ITEM_UNAVAILABLE = 101
ITEM_COMPACTED = 102

EVENT_PUT = 0
EVENT_DELETE = 1

#: Longest a ``kv.watch`` long poll waits for a change.
MAX_WATCH_WAIT_MS = 60_000

#: Most items in one request.
MAX_BATCH = 65_536

#: The keys of a ``kv.status`` response.
STATUS_FIELDS = ("id", "state", "term", "leader", "leader_addr", "last_log_index", "committed",
                 "last_applied", "members", "learners", "nodes", "keys", "sessions", "bad_commands",
                 "running", "replication", "revision", "compact_revision", "leases")

pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack


def _unpack(payload: Any, what: str, max_bin: int) -> Any:
    try:
        return msgpack.unpackb(payload, raw=False, use_list=True, max_array_len=MAX_BATCH, max_map_len=64,
                               max_ext_len=0, max_str_len=4096, max_bin_len=max_bin)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise BadCommand(f"undecodable {what}: {exc!r:.200}") from None


def encode_write(commands: list[bytes]) -> bytes:
    """The payload of a ``kv.write`` request: a batch of `raftx.kv.commands` bytes."""
    return pack(commands)


def decode_write(payload: Any) -> list[bytes]:
    """The command batch of a ``kv.write`` (each still to be validated by `commands.decode`)."""
    obj = _unpack(payload, "kv.write request", 64 * 1024 * 1024)
    if not isinstance(obj, list) or not obj or not all(type(c) is bytes for c in obj):
        raise BadCommand("kv.write takes a non-empty array of command bytes")
    return obj


def encode_read(linearizable: bool, keys: list[bytes], *, lease: bool = False) -> bytes:
    """The payload of a ``kv.read`` request (``linearizable``: read index first, §8;
    ``lease``: from the leader's read lease, a third element sent only when true)."""
    return pack([linearizable, keys, True] if lease else [linearizable, keys])


def decode_read_lease(payload: Any) -> tuple[bool, list[bytes], bool]:
    """``(linearizable, keys, lease)`` of a ``kv.read`` request; `BadCommand` if malformed."""
    obj = _unpack(payload, "kv.read request", MAX_KEY_BYTES)
    if not (isinstance(obj, list) and len(obj) in (2, 3) and isinstance(obj[0], bool) and isinstance(obj[1], list)
            and obj[1] and all(type(k) is bytes for k in obj[1]) and (len(obj) == 2 or isinstance(obj[2], bool))):
        raise BadCommand("kv.read takes [linearizable, [key, ...], lease?] with at least one key")
    return obj[0], obj[1], len(obj) == 3 and obj[2]


def decode_read(payload: Any) -> tuple[bool, list[bytes]]:
    """``(linearizable, keys)`` of a ``kv.read`` request; `BadCommand` if malformed."""
    linearizable, keys, _ = decode_read_lease(payload)
    return linearizable, keys


def decode_range(payload: Any) -> tuple[bool, bytes, bytes | None, int, bool]:
    """``(linearizable, start, end, limit, keys_only)`` of a ``kv.range``; `BadCommand` if malformed."""
    obj = _unpack(payload, "kv.range request", MAX_KEY_BYTES + 1)  # end may be a longest key + b"\0"
    if not (isinstance(obj, list) and len(obj) == 5 and isinstance(obj[0], bool) and type(obj[1]) is bytes
            and (obj[2] is None or type(obj[2]) is bytes) and type(obj[3]) is int and 0 <= obj[3] < 2**63
            and isinstance(obj[4], bool)):
        raise BadCommand("kv.range takes [linearizable, start, end or nil, limit, keys_only]")
    return obj[0], obj[1], obj[2], obj[3], obj[4]


def decode_watch(payload: Any) -> tuple[bytes, int, int, int]:
    """``(prefix, start_revision, max_wait_ms, max_events)`` of a ``kv.watch``; `BadCommand` if malformed."""
    obj = _unpack(payload, "kv.watch request", MAX_KEY_BYTES)
    if not (isinstance(obj, list) and len(obj) == 4 and type(obj[0]) is bytes
            and all(type(x) is int for x in obj[1:]) and 0 <= obj[1] < 2**63
            and 0 <= obj[2] <= MAX_WATCH_WAIT_MS and 1 <= obj[3] <= MAX_BATCH):
        raise BadCommand(f"kv.watch takes [prefix, start_revision, max_wait_ms <= {MAX_WATCH_WAIT_MS}, "
                         f"max_events in 1..{MAX_BATCH}]")
    return obj[0], obj[1], obj[2], obj[3]


def decode_reply(payload: Any) -> list[Any]:
    """A ``kv.write`` / ``kv.read`` response; `BadCommand` if it is not one."""
    obj = _unpack(payload, "kv reply", 64 * 1024 * 1024)
    if not (isinstance(obj, list) and obj and obj[0] in (REPLY_RESULTS, REPLY_REDIRECT)):
        raise BadCommand(f"malformed kv reply {obj!r:.100}")
    if obj[0] == REPLY_RESULTS and not (len(obj) == 2 and isinstance(obj[1], list)):
        raise BadCommand("malformed kv results")
    if obj[0] == REPLY_REDIRECT and len(obj) != 3:
        raise BadCommand("malformed kv redirect")
    return obj


def decode_status(payload: Any) -> dict[str, Any]:
    """The status map of a ``kv.status`` response; `BadCommand` if it is not one."""
    obj = _unpack(payload, "kv.status reply", 4096)
    if not isinstance(obj, dict):
        raise BadCommand("malformed kv.status reply")
    return obj


def decode_member(payload: Any, with_addr: bool) -> tuple[int, str | None, bytes | None]:
    """``[node_id, "host:port"(, token)]`` (``with_addr``) or ``[node_id(, token)]`` ->
    ``(node_id, addr, token)``; `BadCommand` if malformed."""
    obj = _unpack(payload, "kv membership request", 1024)
    n = 2 if with_addr else 1
    if not (isinstance(obj, list) and len(obj) in (n, n + 1) and type(obj[0]) is int and 0 <= obj[0] < 2**63
            and (not with_addr or (isinstance(obj[1], str) and obj[1]))
            and (len(obj) == n or type(obj[n]) is bytes)):
        shape = f"{len(obj)} items" if isinstance(obj, list) else type(obj).__name__
        # Not echoed: the request may carry a token.
        raise BadCommand(f"membership request takes [node_id{', host:port' if with_addr else ''}(, token)], "
                         f"not {shape}")
    return obj[0], (obj[1] if with_addr else None), (obj[n] if len(obj) > n else None)
