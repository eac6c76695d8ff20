"""Public test kits for raftx and for users' own stores and services.

* storage conformance suite: `run_log_store_suite`, `run_log_store_case`,
  `log_store_suite_cases`, `StoreCapabilities` (see `raftx.testing.log_suite`).
* `FaultInjector`: a `raftx.storage.FileIO` over real files that fails an operation,
  tears a write or "crashes" the process (`SimulatedCrash`) at the n-th file
  operation, on request (see `raftx.testing.faultio`).
* `SimFS`: an in-memory file system that loses power like a disk (unsynced
  writes and directory entries dropped, sector tears, fsync failures), to run the
  real `SegmentedLogStore` over (see `raftx.testing.simfs`).
* linearizability checker: `check_operations`, `History`, models `REGISTER`,
  `CAS_REGISTER`, `KV` (see `raftx.testing.linearizability`).
"""

from raftx.testing.log_suite import (
    StoreCapabilities,
    SuiteReport,
    log_store_suite_cases,
    run_log_store_case,
    run_log_store_suite,
)
from raftx.testing.faultio import FaultGate, FaultInjector, SimulatedCrash
from raftx.testing.simfs import SimFS
from raftx.testing.linearizability import (
    CAS_REGISTER,
    KV,
    REGISTER,
    UNKNOWN,
    CheckResult,
    History,
    Model,
    Operation,
    Verdict,
    check_operations,
    parse_jepsen_register_log,
    parse_kv_edn,
)

__all__ = [
    "StoreCapabilities",
    "SuiteReport",
    "log_store_suite_cases",
    "run_log_store_case",
    "run_log_store_suite",
    "FaultGate",
    "FaultInjector",
    "SimulatedCrash",
    "SimFS",
    "CAS_REGISTER",
    "KV",
    "REGISTER",
    "UNKNOWN",
    "CheckResult",
    "History",
    "Model",
    "Operation",
    "Verdict",
    "check_operations",
    "parse_jepsen_register_log",
    "parse_kv_edn",
]
