"""Sphinx configuration for the raftx documentation (``bash scripts/build-docs.sh``)."""

from __future__ import annotations

import os
import sys

# Document the raftx of this checkout (the compiled twins if built, else the pure ones).
sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("RAFTX_NO_EXTENSIONS", "1")  # document the pure twins: they carry the docstrings

import raftx  # noqa: E402

project = "raftx"
author = "the raftx authors"
copyright = "the raftx authors, Apache-2.0"  # noqa: A001  (Sphinx's name)
release = raftx.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Docstrings write `name` for a Python object: resolve it as one where possible, plain
# text otherwise (no nitpicky mode: an unresolvable name is not a warning).
default_role = "py:obj"

autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"raftx {release}"
html_static_path: list[str] = []

#: The packages whose public names (``__all__``, or for `raftx.errors` every class it
#: defines) the API reference must document; `check_api_reference` enforces it.
API_PACKAGES = ("raftx", "raftx.errors", "raftx.storage", "raftx.network", "raftx.kv", "raftx.objects",
                "raftx.testing")


def public_names(modname: str) -> list[str]:
    """The public names of ``modname``: its ``__all__``, else what it defines itself."""
    import importlib

    module = importlib.import_module(modname)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items()
                 if not n.startswith("_") and getattr(v, "__module__", None) == modname]
    return list(names)


def check_api_reference(app: object, env: object) -> None:
    """Warn (an error under ``-W``) for each public name the API reference lacks."""
    from sphinx.util import logging as sphinx_logging

    documented = env.get_domain("py").objects  # type: ignore[attr-defined]
    log = sphinx_logging.getLogger("raftx.docs")
    for modname in API_PACKAGES:
        for name in public_names(modname):
            if f"{modname}.{name}" not in documented:
                log.warning("public name %s.%s is missing from the API reference (docs/api/)", modname, name)


def _link_literals() -> type:
    """A post-transform: inline code in the guides that names a documented object
    (``raftx.Raft``, ``SegmentedLogStore``, ``Config.max_payload_entries``,
    ``raftx.Raft.new(...)``) becomes a link to its API entry, so the Markdown stays
    plain for readers of the repository and the site still cross-links.

    A full ``raftx.`` name links if documented; a dotted or capitalised name links if
    exactly one documented object ends with it; a bare lowercase name (``apply``,
    ``state(...)``) stays plain text: too often it is another object's method.
    """
    import re

    from docutils import nodes
    from sphinx.transforms.post_transforms import SphinxPostTransform

    ident = re.compile(r"[A-Za-z_][\w.]*")

    class LinkLiterals(SphinxPostTransform):
        default_priority = 5
        builders = ("html", "dirhtml", "singlehtml")

        def run(self, **kwargs: object) -> None:
            objects = self.env.get_domain("py").objects
            by_suffix: dict[str, list[str]] = {}
            for full in objects:
                parts = full.split(".")
                for i in range(1, len(parts)):
                    by_suffix.setdefault(".".join(parts[i:]), []).append(full)
            for node in list(self.document.findall(nodes.literal)):
                if isinstance(node.parent, (nodes.reference, nodes.literal_block)):
                    continue
                text = node.astext()
                name = text.split("(", 1)[0]
                if not ident.fullmatch(name):
                    continue
                if name.startswith("raftx."):
                    target = name if name in objects else None
                elif "." in name or name[0].isupper():
                    found = by_suffix.get(name, [])
                    target = found[0] if len(found) == 1 else None
                else:
                    target = None
                if target is None:
                    continue
                entry = objects[target]
                uri = self.app.builder.get_relative_uri(self.env.docname, entry.docname) + "#" + entry.node_id
                ref = nodes.reference("", "", internal=True, refuri=uri, reftitle=target)
                node.replace_self(ref)
                ref.append(node)

    return LinkLiterals


def setup(app: object) -> dict[str, bool]:
    app.connect("env-check-consistency", check_api_reference)  # type: ignore[attr-defined]
    app.add_post_transform(_link_literals())  # type: ignore[attr-defined]
    return {"parallel_read_safe": True}
