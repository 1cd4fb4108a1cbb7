"""Our multi-agent SCMI server for TF-A plat/qemu: tables, install, trace.

- tables: board -> generated C tables (render_tables)
- tfa: install the server into a TF-A tree, cache fingerprint
- host: build and drive the server natively (unit tests)
- trace: parse the server's trace lines from the secure console
"""
from .tables import render_tables
from .tfa import SERVER_DIR, install_server, server_fingerprint

__all__ = ["SERVER_DIR", "install_server", "render_tables", "server_fingerprint"]
