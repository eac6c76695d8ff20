"""A linearizability checker for client histories (Wing & Gong / Porcupine style).

Record what clients did (`History`, or build `Operation` lists yourself), pick a
sequential `Model` (`REGISTER`, `CAS_REGISTER`, `KV`, `TXN_KV` for revisions and
multi-key transactions, or your own), and ask whether
some order of the operations that respects real time is legal for the model:

>>> from raftx.testing.linearizability import History, REGISTER
>>> h = History()
>>> w = h.invoke("a", ("write", 1), time=0)
>>> r = h.invoke("b", ("read",), time=1)
>>> h.complete(w, None, time=2)
>>> h.complete(r, 1, time=3)
>>> r2 = h.invoke("b", ("read",), time=4)
>>> h.complete(r2, None, time=5)              # stale read: the write had returned
>>> result = h.check(REGISTER)
>>> result.verdict.value, [op.output for op in result.longest_prefix]
('illegal', [None, 1])

The search is Porcupine's (anishathalye/porcupine, after Lowe and Horn & Kroening):
`checker` documents it. Histories are split by `Model.partition`
(P-compositionality: a key-value history is linearizable iff each key's is).
Operations with an unknown outcome (`UNKNOWN` output, ``math.inf`` return) may take
effect at any time after their call, or never. A step ``budget`` or ``timeout``
turns an undecided search into `Verdict.UNKNOWN`.
"""

from raftx.testing.linearizability.checker import CheckResult, Verdict, check_operations
from raftx.testing.linearizability.history import History
from raftx.testing.linearizability.model import UNKNOWN, Model, Operation
from raftx.testing.linearizability.models import CAS_REGISTER, KV, REGISTER, partition_by_key
from raftx.testing.linearizability.parsers import parse_jepsen_register_log, parse_kv_edn
from raftx.testing.linearizability.txn_model import TXN_KV

__all__ = [
    "CAS_REGISTER",
    "KV",
    "REGISTER",
    "TXN_KV",
    "UNKNOWN",
    "CheckResult",
    "History",
    "Model",
    "Operation",
    "Verdict",
    "check_operations",
    "parse_jepsen_register_log",
    "parse_kv_edn",
    "partition_by_key",
]
