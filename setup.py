"""Build raftx's compiled hot paths (``raftx/_core/*_c.pyx``, ``raftx/kv/*_c.pyx``).

Environment:
  RAFTX_NO_EXTENSIONS=1  build nothing; the pure-Python twins are used at import.
  RAFTX_DEBUG=1          annotate HTML, line tracing, -O0 -g (a debug build).
  Release builds (the default) compile with -O3 -g0: no debug info in the wheel.
  RAFTX_ONLY=a,b         compile only these modules (e.g. ``codec``), for quick iteration.
"""

import glob
import os
import platform
import sys

from setuptools import setup

ext_modules = []
if os.environ.get("RAFTX_NO_EXTENSIONS") != "1" and platform.python_implementation() == "CPython":
    from Cython.Build import cythonize
    from setuptools import Extension

    debug = os.environ.get("RAFTX_DEBUG") == "1"
    only = {s for s in os.environ.get("RAFTX_ONLY", "").split(",") if s}
    macros = [("RAFTX_DEBUG", "1"), ("CYTHON_TRACE_NOGIL", "1")] if debug else []
    cflags = ["-O0", "-g"] if debug else ["-O3", "-g0"]
    if sys.platform == "win32":
        cflags = []
    extensions = []
    for pyx in sorted(glob.glob("raftx/_core/*_c.pyx") + glob.glob("raftx/kv/*_c.pyx")):
        name = os.path.basename(pyx)[: -len("_c.pyx")]
        if only and name not in only:
            continue
        package = os.path.dirname(pyx).replace("/", ".")
        extensions.append(
            Extension(
                f"{package}.{name}_c",
                [pyx],
                include_dirs=[os.path.dirname(pyx)],
                define_macros=macros,
                extra_compile_args=cflags,
            )
        )
    directives = {"language_level": 3, "embedsignature": True}
    if debug:
        directives["linetrace"] = True
    ext_modules = cythonize(extensions, compiler_directives=directives, annotate=debug)

setup(ext_modules=ext_modules)
