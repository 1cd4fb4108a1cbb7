# Source me (bash) from the repository root: turns one CI matrix cell, a board and a system
# under test (SUT), into the harness's environment. Shared by ci/gitlab-ci.yml and
# ci/github-actions.yml; on a workstation: `BOARD=rpi5-like SUT=v5 . ci/cell-env.sh`.
#
# In:  BOARD         board name (boards/<BOARD>.toml)                                 default qemu-virt
#      SUT           one SUT name, as `harness sut list` shows it                     default v5
#      SUTS_FILE     your own suts.toml (relative to the checkout, or absolute); exported as
#                    HARNESS_SUTS, the harness's user SUT file (its entries add to or replace
#                    the shipped ones of images/xen/suts.toml). Empty: $HARNESS_SUTS, else the
#                    harness's default user file when present (`harness sut list` names it).
#      PYTEST_MARKS  the pytest -m expression of the boot shards                      default boot
#      WORKERS       boots at once in each boot job: pytest -n (a number, or auto: one per
#                    core, as memory allows; 0: serial)                            default auto
#      V5_SERIES     where the RFC v5 series is, for the shipped SUT v5 when it is not at
#                    ../shared: a directory or mbox, or an https:// URL of an mbox or tarball
#                    with V5_SERIES_SHA256 (ci/series.py)
#      SHARED_SUT    where a copy of the shared sut/ directory is (v10, v11 and their Xen
#                    tarballs, Xen 4.22.0: the SUTs v10, v11, upstream-4.22) when ../shared is
#                    not beside the checkout: a directory, or an https:// URL of a tarball of it
#                    with SHARED_SUT_SHA256 (ci/series.py --shared)
# Out: HARNESS_BOARD HARNESS_SUT HARNESS_CACHE, and HARNESS_SUTS when a user SUT file is in
#      use (exported; the harness and its pytest plugin read them), CELL (<board>.<sut>: the
#      JUnit suite name, artifact names), CACHE_KEY (harness-<board>-<sut>-<hash of images/**,
#      boards/**, the user SUT file and the SUT's patch series>), CACHE_KEY_PREFIX, PYTEST_MARKS,
#      WORKERS.
# On GitHub Actions the same variables are also appended to $GITHUB_ENV.
# An unknown SUT, or one that cannot be built here (its series or tree is missing), fails at once.

ci_die() { echo "ci: $*" >&2; return 1; }

[ -f ci/cell-env.sh ] && [ -f harness/images/sut.py ] || { ci_die "source ci/cell-env.sh from the repository root (not $PWD)"; return 1; }

# The old matrix axes: refuse them rather than silently test something else.
for ci_v in XEN_SRC XEN_SERIES XEN_GIT_SRC SUT_SERIES PROFILE HARNESS_XEN_SRC HARNESS_XEN_PATCHES; do
    if [ -n "${!ci_v:-}" ]; then
        ci_die "$ci_v is set, but a CI cell is now BOARD x SUT: the SUT names the Xen source, the patch \
series and the binding profile. Unset $ci_v; for another tree or series add a SUT entry to a suts.toml \
and set SUTS_FILE (see ci/README.md)"
        return 1
    fi
done

BOARD=${BOARD:-qemu-virt}
SUT=${SUT:-v5}
PYTEST_MARKS=${PYTEST_MARKS:-boot}
WORKERS=${WORKERS:-auto}
if [[ ! $WORKERS =~ ^(auto|[0-9]+)$ ]]; then
    ci_die "WORKERS=$WORKERS: give a number of boots at once (pytest -n), auto (one per core), or 0 (serial)"
    return 1
fi

if [[ ! $BOARD =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || [ ! -f "boards/$BOARD.toml" ]; then
    ci_boards=$(cd boards && for f in *.toml; do printf '%s ' "${f%.toml}"; done)
    ci_die "BOARD=$BOARD: no board of that name; valid: ${ci_boards% }"
    return 1
fi
if [[ ! $SUT =~ ^[A-Za-z0-9][A-Za-z0-9_.+-]*$ ]]; then
    ci_die "SUT=$SUT: not one SUT name (one per cell: letters, digits, '.', '_', '+', '-'; see \`harness sut list\`)"
    return 1
fi

if [ -n "${SUTS_FILE:-}" ]; then
    case $SUTS_FILE in *$'\n'*) ci_die "SUTS_FILE has a newline in it"; return 1 ;; esac
    [ -f "$SUTS_FILE" ] || { ci_die "SUTS_FILE=$SUTS_FILE: no such file (from $PWD)"; return 1; }
    HARNESS_SUTS=$(cd -- "$(dirname -- "$SUTS_FILE")" && pwd)/$(basename -- "$SUTS_FILE")
    export HARNESS_SUTS
fi

ci_py=.venv/bin/python
[ -x "$ci_py" ] || ci_py=python3
command -v "$ci_py" >/dev/null || { ci_die "no python3 (>= 3.11) to read the SUTs with: install it first"; return 1; }

# The RFC v5 series from where the adopter says (hosted runners have no ../shared): linked
# where the shipped SUTs look for it (ci/series.py checks a fetched one's sha256).
if [ -n "${SHARED_SUT:-}" ]; then
    "$ci_py" ci/series.py --shared "$SHARED_SUT" "${SHARED_SUT_SHA256:-}" || return 1
fi
if [ -n "${V5_SERIES:-}" ]; then
    "$ci_py" ci/series.py "$V5_SERIES" "${V5_SERIES_SHA256:-}" || return 1
fi

# Ask the harness (not a TOML parser in bash) what the SUT is: shell assignments, quoted.
ci_sut=$("$ci_py" - "$SUT" <<'PY'
import shlex, sys
from harness.images import sut
from harness.errors import HarnessError

name = sys.argv[1]
try:
    suts = sut.load_suts()
except HarnessError as e:
    sys.exit(f"ci: SUT={name}: cannot read the SUT files: {e}")
own = sut.user_file()
files = "images/xen/suts.toml" + (f" and {own}" if own.is_file() else "")
if name not in suts:
    sys.exit(f"ci: SUT={name}: no system under test of that name in {files}; valid: {', '.join(suts)}. "
             f"Add yours to a suts.toml and set SUTS_FILE to it (see ci/README.md)")
s = suts[name]
if s.missing:
    sys.exit(f"ci: SUT={name}: cannot be built here: {s.missing} (defined in {s.origin})")
for key, value in (("series", s.series or ""), ("source", s.source), ("profile", s.profile.name),
                   ("variant", s.variant), ("user_file", str(own) if own.is_file() else "")):
    print(f"ci_sut_{key}={shlex.quote(value)}")
PY
) || return 1
eval "$ci_sut"

HARNESS_BOARD=$BOARD
HARNESS_SUT=$SUT
HARNESS_CACHE=${HARNESS_CACHE:-$PWD/.harness-cache}
case "$HARNESS_CACHE" in /*) ;; *) HARNESS_CACHE=$PWD/$HARNESS_CACHE ;; esac
CELL=$BOARD.$SUT

# The build cache's key: everything that decides what gets built. The harness's cache is
# content-addressed, so an older cache restored under a prefix match is safe to reuse.
# The series is hashed by relative names (the same series anywhere hashes the same); a SUT
# whose source is a directory or GIT_URL#REF is keyed by that string, not by the tree.
ci_hash_files() { find "$@" -type f ! -path '*/.index-cache/*' ! -path '*/.git/*' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; }
ci_hash_series() { if [ -d "$1" ]; then (cd -- "$1" && ci_hash_files .); else sha256sum < "$1"; fi; }
ci_inputs_hash=$( { ci_hash_files images boards
                    [ -z "$ci_sut_user_file" ] || sha256sum < "$ci_sut_user_file"
                    [ -z "$ci_sut_series" ] || ci_hash_series "$ci_sut_series"
                    printf 'board=%s\nsut=%s\nsource=%s\nprofile=%s\nvariant=%s\n' \
                        "$BOARD" "$SUT" "$ci_sut_source" "$ci_sut_profile" "$ci_sut_variant"; } | sha256sum | cut -c1-16)
CACHE_KEY_PREFIX=harness-$BOARD-$SUT-
CACHE_KEY=$CACHE_KEY_PREFIX$ci_inputs_hash

export HARNESS_BOARD HARNESS_SUT HARNESS_CACHE CELL CACHE_KEY CACHE_KEY_PREFIX PYTEST_MARKS WORKERS
if [ -n "${GITHUB_ENV:-}" ]; then
    for ci_v in HARNESS_BOARD HARNESS_SUT HARNESS_SUTS HARNESS_CACHE CELL CACHE_KEY CACHE_KEY_PREFIX PYTEST_MARKS WORKERS; do
        case ${!ci_v:-} in *$'\n'*) ci_die "$ci_v has a newline in it"; return 1 ;; esac
        [ -z "${!ci_v:-}" ] || echo "$ci_v=${!ci_v}" >> "$GITHUB_ENV"
    done
fi
echo "ci: cell $CELL: board=$HARNESS_BOARD sut=$HARNESS_SUT (source $ci_sut_source, series ${ci_sut_series:-none}, \
profile $ci_sut_profile, variant $ci_sut_variant) suts-file=${ci_sut_user_file:-none} tests='$PYTEST_MARKS' \
cache=$HARNESS_CACHE key=$CACHE_KEY"
unset -v ci_v ci_py ci_sut ci_boards ci_inputs_hash ci_sut_series ci_sut_source ci_sut_profile ci_sut_variant ci_sut_user_file
unset -f ci_hash_files ci_hash_series
