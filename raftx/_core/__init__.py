"""The one switch between raftx's compiled hot paths and their pure-Python twins.

Every hot-path module exists twice with one public surface: ``<name>_c`` (Cython)
and ``<name>_py`` (pure Python, the readable spec that carries the docstrings).
This module picks one implementation for *all* of them at once, so a process never
mixes a compiled module with a pure one:

* ``RAFTX_NO_EXTENSIONS=1`` in the environment or a non-CPython interpreter selects
  the pure twins, on purpose and quietly;
* otherwise the compiled twins are used. If one of them fails to import (a build for
  another Python, a broken install), the pure twins are used and one WARNING names
  the module and its ImportError: they are ~100-500x slower, which a user must not
  discover from a profile. ``FALLBACK_REASON`` keeps that message (``raftx info``
  prints it). ``RAFTX_REQUIRE_EXTENSIONS=1`` turns the fallback into an ImportError
  (CI's compiled run sets it).

``IMPLEMENTATION`` is ``"c"`` or ``"py"``. Nothing else in raftx imports a ``_c`` or
``_py`` module directly; use ``raftx._core.codec`` etc.

A package outside ``_core`` that owns a twin pair (``raftx.kv.kvcodec``: the kv
service's PUT bytes) selects it with `select_twins`, which follows this choice: a
process runs the compiled twins everywhere or nowhere, except that a compiled twin
of such a package that fails to import falls back on its own, under the same rule
(one WARNING, ``FALLBACK_REASON``; an ImportError with ``RAFTX_REQUIRE_EXTENSIONS=1``).
"""

from __future__ import annotations

import importlib
import logging
import os
import platform
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["FALLBACK_REASON", "IMPLEMENTATION", "MODULES", "codec", "iosync", "logindex", "quorum", "vote", "load", "load_twins",
           "select_twins"]

MODULES = ("codec", "iosync", "logindex", "quorum", "vote")

logger = logging.getLogger(__name__)


def load(implementation: str) -> dict[str, ModuleType]:
    """Import every hot-path module of one implementation (``"c"`` or ``"py"``)."""
    return load_twins(__name__, MODULES, implementation)


def load_twins(package: str, names: tuple[str, ...], implementation: str) -> dict[str, ModuleType]:
    """Import ``<package>.<name>_<implementation>`` for each of ``names``: name -> module."""
    if implementation not in ("c", "py"):
        raise ValueError(f"implementation must be 'c' or 'py', not {implementation!r}")
    return {name: importlib.import_module(f"{package}.{name}_{implementation}") for name in names}


def select_twins(package: str, names: tuple[str, ...]) -> dict[str, ModuleType]:
    """The twins ``names`` of ``package`` (outside ``_core``) in this process's
    `IMPLEMENTATION`; see the module docstring for a compiled twin that fails to import."""
    global FALLBACK_REASON
    if IMPLEMENTATION == "py":
        return load_twins(package, names, "py")
    reason = _compiled_failure(package, names)
    if reason is None:
        return load_twins(package, names, "c")
    FALLBACK_REASON = reason
    return load_twins(package, names, "py")


def _compiled_failure(package: str, names: tuple[str, ...]) -> str | None:
    """None if every compiled twin of ``names`` imports; else why the first one does not,
    after the fallback rule: an ImportError under ``RAFTX_REQUIRE_EXTENSIONS=1``, else one
    WARNING (the caller then uses the pure twins)."""
    for name in names:  # one at a time, to name the one that fails
        module = f"{package}.{name}_c"
        try:
            importlib.import_module(module)
        except ImportError as exc:
            reason = f"compiled module {module} failed to import: {exc}"
            break
    else:
        return None
    if os.environ.get("RAFTX_REQUIRE_EXTENSIONS") == "1":
        raise ImportError(f"raftx: {reason} (RAFTX_REQUIRE_EXTENSIONS=1 forbids the pure-Python fallback)")
    logger.warning("raftx: %s; using the pure-Python twins (much slower)", reason)
    return reason


def _select() -> tuple[str, dict[str, ModuleType], str | None]:
    """(implementation, modules, why the compiled twins are not in use or None)."""
    if os.environ.get("RAFTX_NO_EXTENSIONS") == "1":
        return "py", load("py"), "RAFTX_NO_EXTENSIONS=1 is set"
    if platform.python_implementation() != "CPython":
        return "py", load("py"), f"{platform.python_implementation()} runs the pure-Python twins"
    reason = _compiled_failure(__name__, MODULES)
    if reason is None:
        return "c", load("c"), None
    return "py", load("py"), reason


if TYPE_CHECKING:
    from . import codec_py as codec
    from . import iosync_py as iosync
    from . import logindex_py as logindex
    from . import quorum_py as quorum
    from . import vote_py as vote

    IMPLEMENTATION: str
    FALLBACK_REASON: str | None
else:
    IMPLEMENTATION, _modules, FALLBACK_REASON = _select()
    codec = _modules["codec"]
    iosync = _modules["iosync"]
    logindex = _modules["logindex"]
    quorum = _modules["quorum"]
    vote = _modules["vote"]
    del _modules
