"""A compiled module that fails to import is never a silent 100x slowdown.

A copy of the installed package with one compiled module broken (its shared object
overwritten, as a build for another Python or a truncated install would be) is
imported in a subprocess: the fallback logs one WARNING naming the module and the
ImportError, `raftx info` prints the same reason, and ``RAFTX_REQUIRE_EXTENSIONS=1``
turns the fallback into an ImportError.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import raftx
from raftx import _core

pytestmark = pytest.mark.skipif(_core.IMPLEMENTATION != "c", reason="compiled twins not built")

BROKEN = "raftx._core.quorum_c"
#: A twin pair outside _core follows the same rule (`raftx._core.select_twins`).
KV_BROKEN = "raftx.kv.kvcodec_c"
#: What reports the implementation in use for a broken module's package.
IMPL_OF = {BROKEN: "raftx._core", KV_BROKEN: "raftx.kv.kvcodec"}


def _broken(tmp_path: Path, module: str) -> Path:
    """A copy of the raftx package whose compiled ``module`` (``raftx.x.name_c``) cannot be loaded."""
    shutil.copytree(Path(raftx.__file__).parent, tmp_path / "raftx")
    *package, name = module.split(".")
    (so,) = glob.glob(str(tmp_path.joinpath(*package) / f"{name}.*.so"))
    Path(so).write_bytes(b"not an ELF file")
    return tmp_path


@pytest.fixture(params=[BROKEN, KV_BROKEN])
def broken(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the raftx package with one compiled extension that cannot be loaded, and its name."""
    return _broken(tmp_path, request.param), request.param


@pytest.fixture
def broken_copy(tmp_path: Path) -> Path:
    """A copy of the raftx package whose quorum_c extension cannot be loaded."""
    return _broken(tmp_path, BROKEN)


def _run(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RAFTX_")}
    environ.update(env, PYTHONPATH=str(root))
    return subprocess.run([sys.executable, *args], cwd=root, env=environ, capture_output=True, text=True, timeout=60)


def test_fallback_warns_and_names_the_module(broken: tuple[Path, str]) -> None:
    root, module = broken
    code = f"import {IMPL_OF[module]} as m, raftx._core as c; print(m.IMPLEMENTATION); print(c.FALLBACK_REASON)"
    out = _run(root, "-c", code)
    assert out.returncode == 0, out.stderr
    impl, reason = out.stdout.splitlines()
    assert impl == "py"
    assert module in reason and "failed to import" in reason
    warnings = [line for line in out.stderr.splitlines() if module in line]
    assert len(warnings) == 1 and "pure-Python" in warnings[0]


def test_info_prints_the_real_reason(broken_copy: Path) -> None:
    out = _run(broken_copy, "-m", "raftx", "info", "--no-bench")
    assert out.returncode == 0, out.stderr
    assert f"compiled hot paths not in use: compiled module {BROKEN} failed to import" in out.stdout


def test_require_extensions_refuses_the_fallback(broken: tuple[Path, str]) -> None:
    root, module = broken
    out = _run(root, "-c", "import raftx.kv", RAFTX_REQUIRE_EXTENSIONS="1")
    assert out.returncode != 0
    assert "ImportError" in out.stderr and module in out.stderr and "RAFTX_REQUIRE_EXTENSIONS" in out.stderr


def test_no_extensions_is_quiet(broken: tuple[Path, str]) -> None:
    root, module = broken
    out = _run(root, "-c", f"import {IMPL_OF[module]} as m; print(m.IMPLEMENTATION)", RAFTX_NO_EXTENSIONS="1")
    assert out.returncode == 0 and out.stdout.strip() == "py"
    assert out.stderr == ""

