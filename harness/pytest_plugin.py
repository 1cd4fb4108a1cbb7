"""pytest plugin: markers and options of the harness (fixtures grow with the boot tests)."""
