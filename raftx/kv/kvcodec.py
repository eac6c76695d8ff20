"""The key-value service's PUT command bytes: the fast path of `raftx.kv.commands`.

Two twins with one surface, as in `raftx._core`: ``kvcodec_c`` (Cython) and
``kvcodec_py`` (pure Python: the spec, with the byte layout and the docstrings).
This module holds the one of them that `raftx._core.select_twins` picks (compiled
when `raftx._core.IMPLEMENTATION` is ``"c"``): `encode_put`, `decode_put`,
`MAX_KEY_BYTES`, `MAX_VALUE_BYTES`; `IMPLEMENTATION` says which. `load` gives
either twin (the tests run both). Nothing else imports a twin directly.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from raftx import _core

__all__ = ["IMPLEMENTATION", "MAX_KEY_BYTES", "MAX_VALUE_BYTES", "MODULES", "decode_put", "encode_put", "load"]

#: The twin pairs of this package (``kvcodec_c`` / ``kvcodec_py``).
MODULES = ("kvcodec",)


def load(implementation: str) -> dict[str, ModuleType]:
    """Both twins' modules of one implementation (``"c"`` or ``"py"``): ``{"kvcodec": module}``."""
    return _core.load_twins(__package__ or "raftx.kv", MODULES, implementation)


if TYPE_CHECKING:
    from raftx.kv.kvcodec_py import MAX_KEY_BYTES, MAX_VALUE_BYTES, decode_put, encode_put

    IMPLEMENTATION: str
else:
    _twin = _core.select_twins(__package__, MODULES)["kvcodec"]
    IMPLEMENTATION = "c" if _twin.__name__.endswith("_c") else "py"
    MAX_KEY_BYTES = _twin.MAX_KEY_BYTES
    MAX_VALUE_BYTES = _twin.MAX_VALUE_BYTES
    encode_put = _twin.encode_put
    decode_put = _twin.decode_put
    del _twin
