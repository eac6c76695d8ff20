"""Which cluster configuration is in force: effective and committed (thesis §4.3).

A membership entry takes effect as soon as it is *appended* (thesis §4.1,
openraft "effective when appended"), not when committed; so a node may have to
fall back to an older configuration when its log is truncated (§5.3). The state
therefore keeps the latest configuration at or below the commit index plus every
later one, in log order:

* ``effective`` is the last of them (what the node acts on);
* ``committed`` is the last one at or below the commit index.

Invariant: ``entries`` is never empty and its log ids strictly increase; only
``entries[0]`` may be at or below the commit index.
"""

from __future__ import annotations

from typing import Sequence

from raftx.types import LogId, Membership, StoredMembership

__all__ = ["MembershipState"]


def _index(sm: StoredMembership) -> int:
    return -1 if sm.log_id is None else sm.log_id.index


class MembershipState:
    """The committed and the effective membership; see the module docstring."""

    __slots__ = ("entries", "committed_index")

    def __init__(self, entries: Sequence[StoredMembership] = (), committed_index: int = -1) -> None:
        #: Membership configs in log order; see the invariant above.
        self.entries: list[StoredMembership] = list(entries) or [StoredMembership()]
        #: The commit index the state was last told about.
        self.committed_index = committed_index
        self.update_committed(committed_index)

    @property
    def effective(self) -> StoredMembership:
        return self.entries[-1]

    @property
    def committed(self) -> StoredMembership:
        for sm in reversed(self.entries):
            if _index(sm) <= self.committed_index:
                return sm
        return self.entries[0]

    def is_effective_committed(self) -> bool:
        """True iff the effective configuration is committed (no change in flight)."""
        return _index(self.effective) <= self.committed_index

    def append(self, log_id: LogId, membership: Membership) -> None:
        """A membership entry was appended at ``log_id``: it is effective now."""
        self.entries.append(StoredMembership(log_id, membership))

    def update_committed(self, committed_index: int) -> None:
        """The commit index moved to ``committed_index``: drop superseded configs."""
        self.committed_index = max(self.committed_index, committed_index)
        keep = 0
        for k, sm in enumerate(self.entries):
            if _index(sm) <= self.committed_index:
                keep = k
        del self.entries[:keep]

    def truncate(self, since_index: int) -> bool:
        """Entries ``>= since_index`` were deleted; fall back. True if effective changed."""
        before = self.effective
        while len(self.entries) > 1 and _index(self.entries[-1]) >= since_index:
            self.entries.pop()
        return self.effective is not before

    def install(self, stored: StoredMembership) -> None:
        """A snapshot carrying ``stored`` was installed: it replaces older configs (§7).

        A snapshot without a membership (no log id, no voters) leaves them as they are.
        """
        if stored.log_id is None and not stored.membership.configs:
            return
        later = [sm for sm in self.entries if _index(sm) > _index(stored)]
        self.entries = [stored, *later]
        self.committed_index = max(self.committed_index, _index(stored))

    def __repr__(self) -> str:
        return f"MembershipState(committed_index={self.committed_index}, entries={self.entries!r})"
