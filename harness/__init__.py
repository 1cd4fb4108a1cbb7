"""A QEMU-backed integration test harness for Xen SCMI multi-agent support."""
