"""Helpers shared by the transport tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

CLUSTER = "test-cluster"


async def echo(sender_id: int, method: str, payload: memoryview) -> bytes:
    """Test handler: ``echo`` returns the payload, ``whoami`` the sender, ``fail`` raises."""
    if method == "echo":
        return bytes(payload)
    if method == "whoami":
        return str(sender_id).encode()
    if method == "fail":
        raise KeyError(bytes(payload).decode())
    raise ValueError(f"unknown method {method}")
