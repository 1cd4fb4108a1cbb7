# Source me (bash) from the repository root: turns one CI matrix cell into the harness's
# environment. Shared by ci/gitlab-ci.yml and ci/github-actions.yml.
#
# In:  BOARD       board name (boards/<BOARD>.toml)                        default qemu-virt
#      XEN_SRC     'lock' (the pinned Xen) or 'git' (the Xen in $XEN_GIT_SRC)  default lock
#      XEN_SERIES  'sut' (the series in $SUT_SERIES), 'none', or a path        default sut
#      PROFILE     binding profile of the boot tests: single | v5 | all        default all
#      SUT_SERIES  the SUT patch series (dir or mbox), relative to the checkout or absolute
#      XEN_GIT_SRC GIT_URL#REF, only for XEN_SRC=git
# Out: HARNESS_BOARD HARNESS_XEN_SRC HARNESS_XEN_PATCHES HARNESS_CACHE (exported; the harness
#      and its pytest plugin read them), CELL (a name for the cell: JUnit suite name, artifact
#      names), CACHE_KEY (harness-<board>-<xen>-<series>-<hash of the lock, images/**, boards/**
#      and the series>), CACHE_KEY_PREFIX, PROFILE_MARKS (the pytest -m expression).
# On GitHub Actions the same variables are also appended to $GITHUB_ENV.

BOARD=${BOARD:-qemu-virt}
XEN_SRC=${XEN_SRC:-lock}
XEN_SERIES=${XEN_SERIES:-sut}
PROFILE=${PROFILE:-all}
SUT_SERIES=${SUT_SERIES:-../shared/sut/xen-scmi-ma-rfc-v5}

ci_die() { echo "ci: $*" >&2; return 1; }

case "$XEN_SRC" in
    lock) HARNESS_XEN_SRC=lock ;;
    git)  [ -n "${XEN_GIT_SRC:-}" ] || { ci_die "XEN_SRC=git needs XEN_GIT_SRC=GIT_URL#REF (a CI variable)"; return 1; }
          HARNESS_XEN_SRC=$XEN_GIT_SRC ;;
    *)    ci_die "XEN_SRC=$XEN_SRC: expected 'lock' or 'git' (with XEN_GIT_SRC=GIT_URL#REF)"; return 1 ;;
esac

case "$XEN_SERIES" in
    none) HARNESS_XEN_PATCHES=none; series_path=""; series_name=none ;;
    sut)  series_path=$SUT_SERIES; series_name=sut ;;
    *)    series_path=$XEN_SERIES; series_name=$(basename "$XEN_SERIES" | tr -c 'A-Za-z0-9_-\n' '_') ;;
esac
if [ -n "$series_path" ]; then
    [ -e "$series_path" ] || { ci_die "patch series '$series_path' (XEN_SERIES=$XEN_SERIES) not found from $PWD: \
put it beside the checkout (../shared) or set SUT_SERIES to its path"; return 1; }
    HARNESS_XEN_PATCHES=$(cd "$(dirname "$series_path")" && pwd)/$(basename "$series_path")
fi

case "$PROFILE" in
    single) PROFILE_MARKS="boot and not multiagent" ;;   # native + upstream single-agent Xen
    v5)     PROFILE_MARKS="boot and multiagent" ;;       # the SUT, v5 binding (the tests' BootSpecs)
    all)    PROFILE_MARKS="boot" ;;
    *)      ci_die "PROFILE=$PROFILE: expected single, v5 or all (the boot tests choose their binding; \
see ci/README.md about HARNESS_PROFILE)"; return 1 ;;
esac

HARNESS_BOARD=$BOARD
HARNESS_CACHE=${HARNESS_CACHE:-$PWD/.harness-cache}
case "$HARNESS_CACHE" in /*) ;; *) HARNESS_CACHE=$PWD/$HARNESS_CACHE ;; esac
CELL=$BOARD.$XEN_SRC.$series_name.$PROFILE

# The build cache's key: everything that decides what gets built. The harness's cache is
# content-addressed, so an older cache restored under a prefix match is safe to reuse.
ci_hash_files() { find "$@" -type f ! -path '*/.index-cache/*' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; }
inputs_hash=$( { ci_hash_files images boards
                 [ -z "$series_path" ] || ci_hash_files "$HARNESS_XEN_PATCHES" | sed 's|  .*/|  |'
                 echo "xen=$HARNESS_XEN_SRC"; } | sha256sum | cut -c1-16)
CACHE_KEY_PREFIX=harness-$BOARD-$XEN_SRC-$series_name-
CACHE_KEY=$CACHE_KEY_PREFIX$inputs_hash

export HARNESS_BOARD HARNESS_XEN_SRC HARNESS_XEN_PATCHES HARNESS_CACHE CELL CACHE_KEY CACHE_KEY_PREFIX PROFILE_MARKS
[ -n "${HARNESS_XEN_PATCHES:-}" ] || unset HARNESS_XEN_PATCHES
if [ -n "${GITHUB_ENV:-}" ]; then
    for v in HARNESS_BOARD HARNESS_XEN_SRC HARNESS_XEN_PATCHES HARNESS_CACHE CELL CACHE_KEY CACHE_KEY_PREFIX PROFILE_MARKS; do
        [ -z "${!v:-}" ] || echo "$v=${!v}" >> "$GITHUB_ENV"
    done
fi
echo "ci: cell $CELL: board=$HARNESS_BOARD xen=$HARNESS_XEN_SRC patches=${HARNESS_XEN_PATCHES:-none} \
tests='$PROFILE_MARKS' cache=$HARNESS_CACHE key=$CACHE_KEY"
