"""A QEMU-backed integration test harness for Xen SCMI multi-agent support.

One subpackage per stage, in the order a boot flows through them; a module imports only
from its own stage or an earlier one (tests/unit/test_layers.py checks it with
import-linter, contract in pyproject.toml):

  data -> images -> plan -> machine -> checks -> run

errors.py (HarnessError) sits below them all. docs/architecture.md says what each module does.
"""
