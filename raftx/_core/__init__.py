"""The one switch between raftx's compiled hot paths and their pure-Python twins.

Every hot-path module exists twice with one public surface: ``<name>_c`` (Cython)
and ``<name>_py`` (pure Python, the readable spec that carries the docstrings).
This module picks one implementation for *all* of them at once, so a process never
mixes a compiled module with a pure one:

* ``RAFTX_NO_EXTENSIONS=1`` in the environment, a non-CPython interpreter, or any
  compiled module failing to import selects the pure twins;
* otherwise the compiled twins are used.

``IMPLEMENTATION`` is ``"c"`` or ``"py"``. Nothing else in raftx imports a ``_c`` or
``_py`` module directly; use ``raftx._core.codec`` etc.
"""

from __future__ import annotations

import importlib
import logging
import os
import platform
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["IMPLEMENTATION", "MODULES", "codec", "kvcodec", "logindex", "quorum", "vote", "load"]

MODULES = ("codec", "kvcodec", "logindex", "quorum", "vote")

logger = logging.getLogger(__name__)


def load(implementation: str) -> dict[str, ModuleType]:
    """Import every hot-path module of one implementation (``"c"`` or ``"py"``)."""
    if implementation not in ("c", "py"):
        raise ValueError(f"implementation must be 'c' or 'py', not {implementation!r}")
    return {name: importlib.import_module(f"{__name__}.{name}_{implementation}") for name in MODULES}


def _select() -> tuple[str, dict[str, ModuleType]]:
    if os.environ.get("RAFTX_NO_EXTENSIONS") == "1" or platform.python_implementation() != "CPython":
        return "py", load("py")
    try:
        return "c", load("c")
    except ImportError as exc:
        logger.debug("raftx compiled modules unavailable (%s); using the pure-Python twins", exc)
        return "py", load("py")


if TYPE_CHECKING:
    from . import codec_py as codec
    from . import kvcodec_py as kvcodec
    from . import logindex_py as logindex
    from . import quorum_py as quorum
    from . import vote_py as vote

    IMPLEMENTATION: str
else:
    IMPLEMENTATION, _modules = _select()
    codec = _modules["codec"]
    kvcodec = _modules["kvcodec"]
    logindex = _modules["logindex"]
    quorum = _modules["quorum"]
    vote = _modules["vote"]
    del _modules
