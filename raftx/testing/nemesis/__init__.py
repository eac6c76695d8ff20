"""A nemesis on real processes: 3 ``raftx serve`` nodes, concurrent clients, faults.

The faults (`raftx.testing.nemesis.faults`): kill -9 of the leader, of a follower,
of two nodes at once and of a node during its restart; SIGSTOP/SIGCONT of the
leader or a follower; and, as root with ``ip netns`` and ``tc``, network partitions
of the leader or a follower (`raftx.testing.nemesis.netns`: one network namespace
per node, veth pairs into a bridge, addresses from 198.18.0.0/15, ``tc qdisc ...
pfifo limit 0`` drops a node's packets). Snapshots are frequent
(``raftx serve --snapshot-every``) so that lagging nodes are caught up by snapshot.
The client history is checked for linearizability; after healing every node must
catch up, stop cleanly and pass ``raftx inspect --verify``.

From Python: ``report = run_nemesis(NemesisConfig(duration=60)); assert report.ok,
report.summary()``. From the shell::

    python -m raftx.testing.nemesis --duration 600 --out ./nemesis-run

writes the data dirs and node logs to ``--out`` and, on failure, the history
(``history.json``); it prints the report (ops, faults, recovery times) and exits 1
on failure.
"""

from raftx.testing.nemesis.netns import Network, unavailable_reason
from raftx.testing.nemesis.runner import (
    FaultRecord, NemesisConfig, NemesisFailure, NemesisReport, report_json, run_nemesis, write_history,
)

__all__ = [
    "FaultRecord", "NemesisConfig", "NemesisFailure", "NemesisReport", "Network", "report_json",
    "run_nemesis", "unavailable_reason", "write_history",
]
