#!/usr/bin/env bash
# The nightly report job: adds tonight's JUnit files (all shards of all matrix cells, one
# cell = a board x a SUT, its JUnit suite named <board>.<sut>) to the report history, keeps
# the newest $REPORT_HISTORY_NIGHTS nights, and runs `harness report` over the history: text
# table on stdout, report/summary.md, report/boot-times.svg; and the revision matrix
# (report/revision-matrix.md, .html: every recorded behaviour across the SUTs, tonight's
# broken ones marked). A scenario is a cell + a test id
# (which starts with the SUT: test_x[v5-xl-domu]), so the same test under two SUTs or on two
# boards is two time series.
# Needs only python3 (>= 3.11) and this checkout. Exit status: harness report's (3: a
# scenario's total boot time grew by more than $REPORT_THRESHOLD percent).
#   JUNIT_DIR       tonight's JUnit files                  default junit
#   HISTORY_DIR     one subdirectory per night, kept in the CI cache   default report-history
#   REPORT_DIR      where the summary and the plot go       default report
set -euo pipefail
cd "$(dirname "$0")/.."
junit_dir=${JUNIT_DIR:-junit}
history=${HISTORY_DIR:-report-history}
out=${REPORT_DIR:-report}
keep=${REPORT_HISTORY_NIGHTS:-30}

shopt -s nullglob
files=("$junit_dir"/*.xml)
[ ${#files[@]} -gt 0 ] || { echo "ci: no JUnit files in $junit_dir/: did the boot jobs run?" >&2; exit 1; }
night=$(date -u +%Y-%m-%d_%H%M)
[ ! -e "$history/$night" ] || night=${night}_${CI_PIPELINE_ID:-${GITHUB_RUN_ID:-$$}}
mkdir -p "$history/$night" "$out"
cp "${files[@]}" "$history/$night/"
# keep the newest nights only (names sort by date)
mapfile -t old < <(find "$history" -mindepth 1 -maxdepth 1 -type d | LC_ALL=C sort | head -n "-$keep")
[ ${#old[@]} -eq 0 ] || rm -rf "${old[@]}"

harness=(python3 -m harness.run.cli)
[ -x .venv/bin/harness ] && harness=(.venv/bin/harness)
set +e
"${harness[@]}" report --history-dir "$history" --threshold "${REPORT_THRESHOLD:-20}" \
    --plot "$out/boot-times.svg" --markdown "$out/summary.md" --fail-on-regression | tee "$out/report.txt"
rc=${PIPESTATUS[0]}
"${harness[@]}" matrix --out "$out" --junit "$junit_dir" || rc=1
set -e
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$out/summary.md" ]; then
    cat "$out/summary.md" >> "$GITHUB_STEP_SUMMARY"
fi
if [ "$rc" -eq 3 ]; then
    msg="boot time regression: a scenario's total grew by more than ${REPORT_THRESHOLD:-20}% (see $out/report.txt)"
    if [ -n "${GITHUB_ACTIONS:-}" ]; then echo "::warning::$msg"; else echo "ci: $msg" >&2; fi
fi
exit "$rc"
