#!/usr/bin/env bash
# One CI boot job: shard SHARD of SHARDS of the boot tests of one matrix cell.
# Run from the repository root after scripts/setup; the cell comes from the environment
# (see ci/cell-env.sh). Writes junit/<cell>-<shard>.xml and artifacts/<cell>/shard-<shard>/.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/cell-env.sh
shard=${SHARD:-1}/${SHARDS:-1}
junit=junit/$CELL-${SHARD:-1}.xml
mkdir -p junit
set +e
.venv/bin/pytest -v -m "$PROFILE_MARKS" --shard "$shard" \
    -o junit_suite_name="$CELL" --junitxml="$junit" \
    --artifacts "artifacts/$CELL/shard-${SHARD:-1}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then       # more shards than tests in this cell: nothing to do is fine
    echo "ci: shard $shard of $CELL selected no test"
    rc=0
fi
exit "$rc"
