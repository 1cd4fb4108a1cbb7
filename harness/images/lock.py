"""The sources lock (images/sources.lock.toml): every upstream input pinned by
Debian suite, package, version and SHA-256.

`harness lock update` re-reads the suites' indexes and re-pins the same packages.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from . import debian
from ..errors import HarnessError

LOCK_PATH = Path(__file__).resolve().parents[2] / "images" / "sources.lock.toml"
KINDS = ("source", "deb")


@dataclass(frozen=True)
class LockEntry:
    name: str        # key in the lock: "xen", "kernel", "libs.libc6", ...
    kind: str        # "source": one file of a source package; "deb": a binary package
    suite: str
    package: str
    version: str
    path: str        # pool path below the mirror
    sha256: str
    size: int
    arch: str = ""   # for kind = "deb"

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def describe(self) -> str:
        return f"{self.package} {self.version} ({self.suite}{'/' + self.arch if self.arch else ''})"


@dataclass(frozen=True)
class Lock:
    path: Path
    entries: dict[str, LockEntry]

    def __getitem__(self, name: str) -> LockEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise HarnessError(f"no entry '{name}'", where=str(self.path), field=name,
                               fix=f"add a [{name}] table (see the other entries)") from None

    def group(self, prefix: str) -> list[LockEntry]:
        return [e for n, e in self.entries.items() if n.startswith(prefix + ".")]

    def select(self, names: list[str] | None) -> list[LockEntry]:
        """The entries named (a group name such as `libs` stands for all of its entries);
        all of them for no names. An unknown name is an error listing the known ones."""
        if not names:
            return list(self.entries.values())
        groups = sorted({n.split(".", 1)[0] for n in self.entries if "." in n})
        unknown = [n for n in names if n not in self.entries and not self.group(n)]
        if unknown:
            raise HarnessError(f"no entry {', '.join(repr(n) for n in unknown)} in the lock",
                               where=str(self.path), field="NAME",
                               fix="use one of: " + ", ".join(n for n in self.entries if "." not in n)
                               + (", or a group: " + ", ".join(groups) if groups else "")
                               + " (`harness lock show` lists every entry)")
        return [e for n, e in self.entries.items()
                if n in names or any(n.startswith(g + ".") for g in names)]


def _entry(path: Path, name: str, table: dict) -> LockEntry:
    required = {"kind": str, "suite": str, "package": str, "version": str, "path": str,
                "sha256": str, "size": int}
    for key, typ in required.items():
        if key not in table:
            raise HarnessError("missing", where=str(path), field=f"{name}.{key}",
                               fix=f"add {key} (or run `harness lock update {name}`)")
        if not isinstance(table[key], typ) or isinstance(table[key], bool):
            raise HarnessError(f"is {table[key]!r}, expected a {typ.__name__}", where=str(path),
                               field=f"{name}.{key}", fix=f"write {key} as a TOML {typ.__name__}")
    unknown = set(table) - {f.name for f in fields(LockEntry)}
    if unknown:
        raise HarnessError(f"unknown keys {sorted(unknown)}", where=str(path), field=name,
                           fix="remove them; allowed: " + ", ".join(f.name for f in fields(LockEntry)[1:]))
    if table["kind"] not in KINDS:
        raise HarnessError(f"kind {table['kind']!r} is unknown", where=str(path), field=f"{name}.kind",
                           fix="use kind = \"source\" or kind = \"deb\"")
    sha = table["sha256"]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise HarnessError(f"sha256 {sha!r} is not 64 lower-case hex digits", where=str(path),
                           field=f"{name}.sha256", fix="copy the SHA-256 from the suite's index "
                           "(or run `harness lock update`)")
    if table["kind"] == "deb" and not table.get("arch"):
        raise HarnessError("a deb entry needs its architecture", where=str(path), field=f"{name}.arch",
                           fix="add arch = \"arm64\"")
    if not table["path"].startswith("pool/"):
        raise HarnessError(f"path {table['path']!r} is not a pool path", where=str(path),
                           field=f"{name}.path", fix="use the pool/... path from the suite's index")
    return LockEntry(name=name, **table)


def load_lock(path: Path = LOCK_PATH) -> Lock:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError("lock file not found", where=str(path),
                           fix="run from a checkout of the harness, or pass --lock") from None
    except tomllib.TOMLDecodeError as e:
        raise HarnessError(f"is not valid TOML: {e}", where=str(path), fix="correct the TOML syntax") from None
    entries = {}
    for name, table in data.items():
        if isinstance(table, dict) and "kind" not in table:   # a group such as [libs.*]
            for sub, subtable in table.items():
                if not isinstance(subtable, dict):
                    raise HarnessError("is not a table", where=str(path), field=f"{name}.{sub}",
                                       fix=f"write it as [{name}.{sub}]")
                entries[f"{name}.{sub}"] = _entry(path, f"{name}.{sub}", subtable)
        elif isinstance(table, dict):
            entries[name] = _entry(path, name, table)
        else:
            raise HarnessError("is not a table", where=str(path), field=name, fix=f"write it as [{name}]")
    return Lock(path=path, entries=entries)


def _toml_value(v) -> str:
    return str(v) if isinstance(v, int) else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_key(name: str) -> str:
    group, _, sub = name.partition(".")   # groups ([libs.*]) nest one level
    def q(k):
        return k if k and all(c.isalnum() or c in "-_" for c in k) else f'"{k}"'
    return q(group) + (f".{q(sub)}" if sub else "")


def dump_lock(lock: Lock, header: str) -> str:
    out = [header.rstrip(), ""]
    for name, e in lock.entries.items():
        out.append(f"[{_toml_key(name)}]")
        for f in fields(LockEntry)[1:]:
            v = getattr(e, f.name)
            if v != "" or f.name != "arch":
                out.append(f"{f.name} = {_toml_value(v)}")
        out.append("")
    return "\n".join(out)


def _header(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def update_lock(path: Path = LOCK_PATH, names: list[str] | None = None, log=print) -> Lock:
    """Re-pin entries to what their suites hold now (same package names)."""
    lock = load_lock(path)
    indexes: dict[tuple, list[dict]] = {}
    new = dict(lock.entries)
    wanted = lock.select(names)
    cache = path.parent / ".index-cache"
    cache.mkdir(exist_ok=True)
    try:
        for e in wanted:
            name = e.name
            idx_key = (e.suite, e.kind, e.arch)
            if idx_key not in indexes:
                log(f"reading {e.suite} {'Sources' if e.kind == 'source' else 'Packages/' + e.arch} "
                    "(checked against the suite's signed Release file)")
                indexes[idx_key] = debian.read_index(e.suite, "source" if e.kind == "source" else "binary",
                                                     e.arch or "arm64", cache)
            new[name] = _repin(lock.path, e, indexes[idx_key])
            if new[name].version != e.version:
                log(f"{name}: {e.version} -> {new[name].version}")
    finally:
        for f in cache.iterdir():
            f.unlink()
        cache.rmdir()
    updated = Lock(path=path, entries=new)
    path.write_text(dump_lock(updated, _header(path)))
    return updated


def _newest(records: list[dict]) -> dict:
    import functools, subprocess

    def cmp(a, b):   # dpkg's version order, which Python cannot reproduce by sorting strings
        if a["Version"] == b["Version"]:
            return 0
        r = subprocess.run(["dpkg", "--compare-versions", a["Version"], "gt", b["Version"]])
        return 1 if r.returncode == 0 else -1
    return max(records, key=functools.cmp_to_key(cmp))


def _repin(path: Path, e: LockEntry, index: list[dict]) -> LockEntry:
    cands = [r for r in index if r.get("Package") == e.package]
    if not cands:
        raise HarnessError(f"package {e.package} is not in {e.suite}", where=str(path), field=f"{e.name}.package",
                           fix="pick a package name the suite has (for the kernel: the new ABI's name)")
    rec = _newest(cands)
    if e.kind == "deb":
        return LockEntry(name=e.name, kind=e.kind, suite=e.suite, package=e.package, arch=e.arch,
                         version=rec["Version"], path=rec["Filename"], sha256=rec["SHA256"], size=int(rec["Size"]))
    files = debian.source_files(rec)
    old_suffix = e.filename.split(".orig", 1)[-1] if ".orig" in e.filename else None
    pick = [f for f in files if old_suffix is not None and ".orig" in f and f.endswith(old_suffix)]
    if not pick:
        raise HarnessError(f"no orig tarball in {e.package} {rec['Version']}", where=str(path),
                           field=f"{e.name}.path", fix="pin the file by hand")
    fname = pick[0]
    sha, size = files[fname]
    return LockEntry(name=e.name, kind=e.kind, suite=e.suite, package=e.package, version=rec["Version"],
                     path=f"{rec['Directory']}/{fname}", sha256=sha, size=size)
