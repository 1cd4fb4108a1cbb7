"""Stage 5, checks: what the tests assert on a running system (waits end on evidence) and
the per-revision records of what each Xen was seen to do."""
