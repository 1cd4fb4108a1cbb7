"""Stage 1, data: what is tested on what. The board (the SCMI topology, boards/*.toml),
boot specs (BootSpec, Guest) and binding profiles (what each Xen revision expects)."""
