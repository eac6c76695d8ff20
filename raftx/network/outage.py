"""Rate-limited logging of a peer that stays unreachable.

A peer that is down makes its client fail a connection attempt on every backoff
step (about once a second, forever). `OutageLog` turns that into one WARNING
when the peer goes down, one summary WARNING per ``interval`` while it stays
down (attempts and the last error), and one WARNING when it is back; the single
attempts are DEBUG. Each line carries ``peer``, ``outage`` (down / still down /
back), ``failures``, ``down_seconds`` and ``error`` as ``extra`` fields (the
``fields`` of ``raftx serve --log-format json``).
"""

from __future__ import annotations

import logging

__all__ = ["OUTAGE_SUMMARY_SECONDS", "OutageLog"]

#: Seconds between two summaries of a peer that stays unreachable.
OUTAGE_SUMMARY_SECONDS = 60.0


class OutageLog:
    """The outage state of one peer, for its log lines (module docstring). ``now``
    arguments are seconds on any monotonic clock."""

    __slots__ = ("logger", "subject", "interval", "down_since", "failures", "_reported_at", "_since_report")

    def __init__(self, logger: logging.Logger, subject: str, interval: float = OUTAGE_SUMMARY_SECONDS) -> None:
        self.logger = logger
        self.subject = subject
        self.interval = interval
        #: Clock time of the first failure of the current outage (None: not down).
        self.down_since: float | None = None
        #: Failed attempts in the current outage.
        self.failures = 0
        self._reported_at = 0.0
        self._since_report = 0

    def failure(self, now: float, error: str) -> None:
        """An attempt to reach the peer failed with ``error``."""
        if self.down_since is None:
            self.down_since, self.failures, self._reported_at, self._since_report = now, 1, now, 0
            self.logger.warning("%s is unreachable: %s (retrying; a summary every %gs while it stays down)",
                                self.subject, error, self.interval,
                                extra={"peer": self.subject, "outage": "down", "error": error})
            return
        self.failures += 1
        self._since_report += 1
        if now - self._reported_at >= self.interval:
            self.logger.warning("%s still unreachable (down %.0fs): %d failed attempts in the last %.0fs; "
                                "last error: %s", self.subject, now - self.down_since, self._since_report,
                                now - self._reported_at, error,
                                extra={"peer": self.subject, "outage": "still down", "failures": self.failures,
                                       "down_seconds": round(now - self.down_since, 3), "error": error})
            self._reported_at, self._since_report = now, 0
        else:
            self.logger.debug("%s: %s", self.subject, error)

    def success(self, now: float) -> None:
        """The peer answered: ends an outage (logged) if there was one."""
        if self.down_since is not None:
            self.logger.warning("%s is reachable again after %.0fs (%d failed attempts)", self.subject,
                                now - self.down_since, self.failures,
                                extra={"peer": self.subject, "outage": "back", "failures": self.failures,
                                       "down_seconds": round(now - self.down_since, 3)})
            self.down_since, self.failures = None, 0
