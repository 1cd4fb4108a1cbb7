"""Stage 6, run: what drives the stages. The `harness` command, the pytest plugin and one
boot's life behind its fixtures, sharding and -n scheduling, coverage, reports, the
revision matrix and the benchmarks."""
