#!/usr/bin/env bash
# One CI boot job: shard SHARD of SHARDS of the boot tests of one matrix cell (a board and a
# system under test). Run from the repository root after scripts/setup; the cell comes from
# the environment (BOARD, SUT, SUTS_FILE: see ci/cell-env.sh). Every test runs under the
# cell's SUT (ids like test_reset_on_destroy[v5-xl-domu]); a scenario the SUT cannot run
# skips with the reason. WORKERS (ci/cell-env.sh) boots run at once (pytest -n; a scenario's
# tests stay on one worker). Writes junit/<cell>-<shard>.xml and artifacts/<cell>/shard-<shard>/.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/cell-env.sh
shard=${SHARD:-1}/${SHARDS:-1}
junit=junit/$CELL-${SHARD:-1}.xml
mkdir -p junit
set +e
.venv/bin/pytest -v -m "$PYTEST_MARKS" --sut="$HARNESS_SUT" --shard "$shard" -n "$WORKERS" \
    -o junit_suite_name="$CELL" --junitxml="$junit" \
    --artifacts "artifacts/$CELL/shard-${SHARD:-1}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then       # more shards than tests in this cell: nothing to do is fine
    echo "ci: shard $shard of $CELL selected no test"
    rc=0
fi
exit "$rc"
