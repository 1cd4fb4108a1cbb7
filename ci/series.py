"""Makes the shipped SUTs' inputs reachable when ../shared is not beside the checkout
(hosted runners): the RFC v5 series (V5_SERIES, for the v5 SUT), or a copy of the whole
shared sut/ directory (SHARED_SUT: the v10 and v11 series, their Xen tarballs and Xen 4.22.0,
for the v10, v11 and upstream-4.22 SUTs; its v5 series serves v5 too).

    python3 ci/series.py SPEC [SHA256]             # V5_SERIES
    python3 ci/series.py --shared SPEC [SHA256]    # SHARED_SUT

SPEC is a directory of format-patch files or an mbox (relative to the checkout or absolute),
or an https:// (or file://) URL of such an mbox or of a tarball of the directory; a URL needs
SHA256, checked before anything is unpacked (into .ci-series/ in the checkout). Then links
the series where images/xen/suts.toml names it. Exit status 1 with one line on stderr on
any error.
"""
import hashlib
import shutil
import sys
import tarfile
import tomllib
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / ".ci-series"


WHAT = ["V5_SERIES"]       # the variable being resolved, for messages


def die(msg):
    sys.exit(f"ci: {WHAT[0]}: {msg}")


def fetch(url, sha256):
    if not sha256 or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        die(f"{url} is a URL: set {WHAT[0]}_SHA256 to its sha256 (64 hex digits)")
    dest = OUT / "fetched" / sha256.lower()
    done = dest / ".done"
    if done.is_file():                               # fetched and checked before
        return Path(done.read_text().strip())
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    name = url.rstrip("/").rsplit("/", 1)[-1] or "series"
    data = dest / name
    try:
        with urllib.request.urlopen(url, timeout=120) as r, open(data, "wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as e:
        die(f"cannot fetch {url}: {e}")
    got = hashlib.sha256(data.read_bytes()).hexdigest()
    if got != sha256.lower():
        die(f"{url} has sha256 {got}, not {WHAT[0]}_SHA256 {sha256}")
    series = data
    if tarfile.is_tarfile(data):
        tree = dest / "tree"
        with tarfile.open(data) as t:
            t.extractall(tree, filter="data")        # no absolute paths, links out or devices
        data.unlink()
        tops = [p for p in tree.iterdir()]
        series = tops[0] if len(tops) == 1 and tops[0].is_dir() else tree
    done.write_text(f"{series}\n")
    return series


def located(spec, sha256):
    """The local path of SPEC: fetched and checked when it is a URL, else relative to the checkout."""
    if spec.startswith(("https://", "file://")):
        return fetch(spec, sha256)
    if "://" in spec:
        die(f"{spec}: only https:// and file:// URLs")
    return (REPO / spec).resolve()


def main(spec, sha256=""):
    series = located(spec, sha256)
    if not series.exists():
        die(f"{spec}: no such directory or mbox (from {REPO})")
    # A user SUT file may not redefine a shipped SUT, so the series goes where the shipped
    # suts.toml looks for it (../shared/sut/... beside the checkout): a symlink of ours.
    shipped = tomllib.loads((REPO / "images/xen/suts.toml").read_text(encoding="utf-8"))
    for where in sorted({(REPO / "images/xen" / e["series"]).resolve(strict=False)
                         for e in shipped.values() if e.get("series")}):
        if where.is_symlink():
            where.unlink()                           # ours from an earlier job: point it anew
        elif where.exists():
            if where.resolve() != series:
                die(f"{where} is already there (a runner's copy?): unset V5_SERIES to use it, or remove it")
            continue
        where.parent.mkdir(parents=True, exist_ok=True)
        where.symlink_to(series, target_is_directory=series.is_dir())
        print(f"ci: V5_SERIES: {where} -> {series}")


def shared(spec, sha256=""):
    """Link ../shared/sut (where images/xen/suts.toml looks) to a copy of the shared sut/ directory."""
    WHAT[0] = "SHARED_SUT"
    tree = located(spec, sha256)
    if not tree.is_dir():
        die(f"{spec}: not a directory (a copy of the shared sut/ directory: xen/, xen-scmi-ma-*/)")
    if not (tree / "xen").is_dir():
        die(f"{tree} has no xen/ directory: is it a copy of the shared sut/ directory?")
    where = (REPO.parent / "shared" / "sut")
    if where.is_symlink():
        where.unlink()
    elif where.exists():
        if where.resolve() != tree:
            die(f"{where} is already there (a runner's copy?): unset SHARED_SUT to use it, or remove it")
        return
    where.parent.mkdir(parents=True, exist_ok=True)
    where.symlink_to(tree, target_is_directory=True)
    print(f"ci: SHARED_SUT: {where} -> {tree}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--shared"]:
        WHAT[0] = "SHARED_SUT"
        if len(args) not in (2, 3) or not args[1]:
            die("usage: ci/series.py --shared SPEC [SHA256]")
        shared(*args[1:])
    else:
        if len(args) not in (1, 2) or not args[0]:
            die("usage: ci/series.py SPEC [SHA256]")
        main(*args)
