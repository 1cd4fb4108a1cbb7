"""Stage 3, plan: scenario files -> BootSpecs, and a BootSpec + board + profile + images ->
a boot plan (loaders, host DT, guest DTs, command lines, xl configs)."""
