"""`raftx.runtime.fast_new` builds objects equal to the normal constructors' ones."""

from __future__ import annotations

import pytest

from raftx.runtime.fast_new import new_entry, new_response
from raftx.types import ClientWriteResponse, Entry, LogId, Membership


@pytest.mark.parametrize("payload", [None, b"", b"data", Membership.new({1, 2})])
def test_new_entry_equals_entry(payload: object) -> None:
    e = new_entry(LogId(3, 9), payload)  # type: ignore[arg-type]
    normal = Entry(LogId(3, 9), payload)  # type: ignore[arg-type]
    assert e == normal and type(e) is Entry and repr(e) == repr(normal)
    assert e.get_membership() == normal.get_membership()
    with pytest.raises(AttributeError):
        e.payload = b"x"  # type: ignore[misc]  # still frozen


def test_new_response_equals_client_write_response() -> None:
    m = Membership.new({1})
    r = new_response(LogId(2, 4), ("ok", 1), m)
    assert r == ClientWriteResponse(LogId(2, 4), ("ok", 1), m)
    assert r != ClientWriteResponse(LogId(2, 4), ("ok", 1), None)
    assert (r.log_id, r.data, r.membership) == (LogId(2, 4), ("ok", 1), m)
