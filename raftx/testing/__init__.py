"""Public test kits for raftx and for users' own stores and services.

* storage conformance suite: `run_log_store_suite`, `run_log_store_case`,
  `log_store_suite_cases`, `StoreCapabilities` (see `raftx.testing.log_suite`).
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
