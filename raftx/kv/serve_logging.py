"""``raftx serve``'s logs: ``--log-format text|json``, ``--log-file``, ``--log-level``.

``json`` writes one object per line::

    {"time": "2026-12-01T22:40:00.123Z", "level": "INFO", "node": 1,
     "logger": "raftx.engine.election", "message": "node 1 is leader of term 3",
     "fields": {...}}

``fields`` holds what the call passed in ``extra=`` (and ``exception``, the
traceback, when there is one). ``text`` is the classic one-line format. Logs go to
stderr, or to ``--log-file`` (appended), which SIGHUP reopens (after a logrotate
move) while `ServeLogging.reload` also re-reads the log level from the flags, the
environment and the config file, with the same precedence as at start.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["JsonFormatter", "ServeLogging", "add_options"]

#: Attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime"}


def add_options(ap: Any) -> None:
    """``--log-format`` and ``--log-file`` (``--log-level`` is the server's own)."""
    ap.add_argument("--log-format", choices=("text", "json"), default="text",
                    help="text (one line per record) or json (one JSON object per line: time, level, node, "
                         "logger, message, fields)")
    ap.add_argument("--log-file", type=Path, metavar="FILE",
                    help="append logs to FILE instead of stderr; SIGHUP reopens it (log rotation)")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (module docstring)."""

    def __init__(self, node: int | None) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: _plain(v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        t = time.gmtime(record.created)
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "node": self.node,
            "logger": record.name,
            "message": record.getMessage(),
            "fields": fields,
        }
        return json.dumps(doc, default=str)


def _plain(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v)


class ServeLogging:
    """The process's root logging set-up for one node; `reload` is SIGHUP's."""

    def __init__(self, node: int, fmt: str, level: str, log_file: Path | None,
                 read_level: Callable[[], str] | None = None) -> None:
        self.node = node
        self.fmt = fmt
        self.log_file = log_file
        self._read_level = read_level
        self.handler = self._open()
        root = logging.getLogger()
        for h in list(root.handlers):
            root.removeHandler(h)
        root.addHandler(self.handler)
        root.setLevel(level.upper())

    def _open(self) -> logging.Handler:
        handler: logging.Handler = (logging.FileHandler(self.log_file) if self.log_file is not None
                                    else logging.StreamHandler(sys.stderr))
        handler.setFormatter(JsonFormatter(self.node) if self.fmt == "json" else logging.Formatter(
            f"%(asctime)s node{self.node} %(levelname)s %(name)s: %(message)s"))
        return handler

    def reload(self) -> None:
        """Reopen ``--log-file`` and re-read the log level (a bad new level keeps the old)."""
        root = logging.getLogger()
        if isinstance(self.handler, logging.FileHandler):
            new = self._open()
            root.addHandler(new)
            root.removeHandler(self.handler)
            self.handler.close()
            self.handler = new
        level = logging.getLevelName(root.level)
        if self._read_level is not None:
            try:
                wanted = self._read_level().upper()
                root.setLevel(wanted)
                level = wanted
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - a bad edit of the file must not kill the node
                logging.getLogger(__name__).error("SIGHUP: keeping log level %s: %s", level, exc)
        logging.getLogger(__name__).info("SIGHUP: log level %s, logs %s", level,
                                         f"reopened ({self.log_file})" if self.log_file else "on stderr")
