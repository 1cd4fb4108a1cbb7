"""Named systems under test: Xen source + optional patch series + binding profile +
hypervisor variant, from images/xen/suts.toml (shipped) and the user's own file
(~/.config/xen-scmi-harness/suts.toml or $HARNESS_SUTS, written by `harness sut add`).
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import HarnessError
from ..data.profiles import PROFILES, Profile, profile

SHIPPED = Path(__file__).resolve().parents[2] / "images" / "xen" / "suts.toml"
USER_ENV = "HARNESS_SUTS"
KEYS = ("description", "source", "sha256", "series", "profile", "variant", "record", "default")
BOOL_KEYS = ("default",)


def user_file() -> Path:
    env = os.environ.get(USER_ENV)
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "xen-scmi-harness" / "suts.toml"


@dataclass(frozen=True)
class Sut:
    name: str
    description: str
    source: str                 # as --xen-src: lock | DIR | URL#REF | FILE.tar.xz (absolute)
    sha256: str | None
    series: str | None          # absolute path, or None
    profile: Profile
    variant: str
    origin: Path                # the file that defines it
    shipped: bool
    record: str = ""            # records/<record>.toml: what this revision did (default: the profile's name)
    default: bool = True        # runs when no --sut is given (shipped SUTs: suts.toml's `default`)

    @property
    def missing(self) -> str | None:
        """Why this SUT cannot be built here (a series or tree that is not on this machine)."""
        how = (f"put it there (the shared inputs beside this checkout: ../shared/sut, see its README.md), or "
               f"define the SUT with your copy in {user_file()} (harness sut add)")
        if self.series and not Path(self.series).exists():
            return f"its patch series {self.series} is not here: {how}"
        if self.source not in ("lock",) and "://" not in self.source and "@" not in self.source \
                and not Path(self.source).exists():
            sha = f" (sha256 {self.sha256})" if self.sha256 else ""
            return f"its source {self.source}{sha} is not here: {how}"
        return None

    def describe(self) -> str:
        series = f" + {Path(self.series).name}" if self.series else ""
        return f"{self.name}: {self.source}{series}, profile {self.profile.name}, variant {self.variant}"


def _resolve(value: str, base: Path) -> str:
    if value == "lock" or re.match(r"^\w[\w+.-]*://", value) or re.match(r"^[\w.-]+@[\w.-]+:", value):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _load_file(path: Path, shipped: bool) -> dict[str, Sut]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise HarnessError(f"not valid TOML: {e}", where=str(path), fix="fix the syntax") from None
    except OSError as e:
        raise HarnessError(f"cannot read the SUT file: {e.strerror or e}", where=str(path),
                           fix=f"point {USER_ENV} at a readable suts.toml file") from None
    return _entries(raw, path, shipped)


def _enables(variant: str, kconfig: str) -> bool:
    """Whether a hypervisor variant's Kconfig fragments switch kconfig on."""
    from .build.xen import XEN_DIR, variants
    return any(f"{kconfig}=y" in (XEN_DIR / frag).read_text().split()
               for frag in variants()[variant].get("fragments", []))


def _entries(raw: dict, path: Path, shipped: bool) -> dict[str, Sut]:
    """The SUTs of one file's TOML, each field checked for what it means."""
    out = {}
    for name, entry in raw.items():
        where = f"[{name}]"
        check_name(name, where=str(path))
        if not shipped and name in shipped_names():
            raise HarnessError(f"SUT {name!r} is a shipped SUT's name: yours would silently replace it (and "
                               f"change what runs by default)", where=str(path), field=where,
                               fix=f"rename yours (e.g. [my-{name}])")
        if not isinstance(entry, dict):
            raise HarnessError(f"{name!r} is not a table", where=str(path), field=name,
                               fix=f'write it as [{name}] with source = ..., profile = ...')
        for key, value in entry.items():
            if key not in KEYS:
                raise HarnessError(f"unknown key {key!r}", where=str(path), field=f"{where}.{key}",
                                   fix="use " + ", ".join(KEYS))
            if key in BOOL_KEYS:
                if not isinstance(value, bool):
                    raise HarnessError(f"{key} must be true or false, not {value!r}", where=str(path),
                                       field=f"{where}.{key}", fix=f"write {key} = true (or false)")
            elif not isinstance(value, str):
                raise HarnessError(f"{key} must be a string, not {type(value).__name__}", where=str(path),
                                   field=f"{where}.{key}", fix=f'write {key} = "..."')
        if "profile" not in entry:
            raise HarnessError("a SUT needs a binding profile", where=str(path), field=f"{where}.profile",
                               fix="add profile = one of " + ", ".join(PROFILES))
        try:
            prof = profile(entry["profile"], where=f"{where}.profile")
        except HarnessError as e:
            raise HarnessError(str(e.args[0]), where=str(path), field=f"{where}.profile",
                               fix="use one of " + ", ".join(PROFILES)) from None
        from .build.xen import variants
        variant = entry.get("variant", prof.variant)
        if variant not in variants():
            raise HarnessError(f"unknown hypervisor variant {variant!r}", where=str(path), field=f"{where}.variant",
                               fix="use one of " + ", ".join(variants()))
        if not _enables(variant, prof.kconfig):
            raise HarnessError(f"variant {variant!r} does not build {prof.kconfig}, which profile {prof.name} needs: "
                               "the build would end in the profile check", where=str(path), field=f"{where}.variant",
                               fix=f"drop variant (profile {prof.name} builds {prof.variant!r}) or pick a variant "
                                   f"with {prof.kconfig}")
        _check_sha256(entry.get("sha256"), entry.get("source", "lock"), where=str(path), field=f"{where}.sha256")
        if "default" in entry and not shipped:
            raise HarnessError("default is read for shipped SUTs only: yours run when named (--sut NAME)",
                               where=str(path), field=f"{where}.default",
                               fix=f"drop it and run yours with --sut {name}")
        series = entry.get("series")
        out[name] = Sut(name, entry.get("description", ""), _resolve(entry.get("source", "lock"), path.parent),
                        entry.get("sha256"), _resolve(series, path.parent) if series and series != "none" else None,
                        prof, variant, path, shipped, record=_record_name(entry, prof, path, where),
                        default=entry.get("default", True))
    return out


def _check_sha256(sha256: str | None, source: str, where: str | None, field: str) -> None:
    """A sha256 says what a tarball must hold: anything else would ignore it."""
    if not sha256:
        return
    from .sources import TARBALL
    if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise HarnessError(f"{sha256!r} is not a sha256 digest", where=where, field=field,
                           fix="give the 64 hex digits `sha256sum FILE` prints")
    if not TARBALL.search(source) or re.match(r"^\w[\w+.-]*://", source):
        what = "the lock (its entries carry their own sha256)" if source == "lock" else repr(source)
        raise HarnessError(f"a sha256 checks a tarball; the source is {what}, so it would be ignored",
                           where=where, field=field,
                           fix="drop the sha256, or give a FILE.tar.xz source it is the digest of")


def _record_name(entry: dict, prof: Profile, path: Path, where: str) -> str:
    """The record's name (records/<name>.toml): the rules of a SUT name."""
    return check_name(entry.get("record") or prof.name, where=str(path), field=f"{where}.record",
                      what="record name (it names records/<record>.toml)")


SUT_NAME = re.compile(r"[A-Za-z0-9][\w.+-]{0,63}")


def check_name(name: str, where: str | None = None, field: str | None = None, what: str = "SUT name") -> str:
    """A SUT name is part of test ids and of artifact paths: no '/', no '..', no blanks."""
    if not SUT_NAME.fullmatch(name) or ".." in name:
        raise HarnessError(f"{name!r} is not a usable {what}", where=where,
                           field=field or (f"[{name}]" if where else "NAME"),
                           fix="letters, digits, '.', '_', '+', '-', at most 64, no '..' (it is part of test ids "
                               "and artifact paths)")
    return name


def shipped_names() -> set[str]:
    """The names images/xen/suts.toml ships: a user's file may not redefine them."""
    return set(tomllib.loads(SHIPPED.read_text(encoding="utf-8")))


def load_suts() -> dict[str, Sut]:
    """Every SUT: the shipped ones, then the user's (which may replace a shipped name)."""
    suts = _load_file(SHIPPED, True)
    uf = user_file()
    if uf.exists() and not uf.is_file():
        raise HarnessError("the user's SUT file is not a file", where=str(uf),
                           fix=f"point {USER_ENV} at a suts.toml file (or remove what is there)")
    if uf.is_file():
        suts.update(_load_file(uf, False))
    return suts


def get(name: str) -> Sut:
    suts = load_suts()
    if name not in suts:
        raise HarnessError(f"no system under test named {name!r}", field="--sut",
                           fix=f"use one of {', '.join(suts)}, or add yours with `harness sut add {name} "
                           f"--xen-src DIR|URL#REF|FILE.tar.xz --profile {'|'.join(PROFILES)}` "
                           f"(it goes to {user_file()})")
    return suts[name]


def default_names() -> list[str]:
    """What runs when no --sut is given: the shipped SUTs marked default that can be built here
    (the others run when named: `pytest --sut v5`, and in CI)."""
    here = {n: s for n, s in load_suts().items() if s.shipped and s.missing is None}
    return [n for n, s in here.items() if s.default] or list(here)      # no ../shared here: what can be built


def add(name: str, source: str, profile_name: str, *, series: str | None = None, sha256: str | None = None,
        variant: str | None = None, description: str = "", path: Path | None = None,
        record: str | None = None) -> Path:
    """Append a SUT to the user's file (made if absent); refuse a name that exists there."""
    check_name(name)
    if record:
        check_name(record, field="--record", what="record name (it names records/<record>.toml)")
    if name in shipped_names():
        raise HarnessError(f"SUT {name!r} is shipped already", field="NAME", fix=f"pick another name (e.g. my-{name})")
    profile(profile_name, where="--profile")
    _check_sha256(sha256, source, where=None, field="--sha256")
    from . import sources
    sources.check_tree(sources.parse_source("xen", source, "--xen-src", sha256), "--xen-src")   # exists, parses, is Xen
    path = path or user_file()
    if path.exists() and not path.is_file():
        raise HarnessError("the user's SUT file is not a file", where=str(path),
                           fix=f"point {USER_ENV} at a suts.toml file (or remove what is there)")
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    existing = _load_file(path, False) if path.is_file() else {}
    if name in existing:
        raise HarnessError(f"SUT {name!r} is already defined", where=str(path), field=f"[{name}]",
                           fix="pick another name, or edit the file")
    fields = {"description": description, "source": _resolve(source, Path.cwd()), "profile": profile_name,
              "series": _resolve(series, Path.cwd()) if series else None, "sha256": sha256, "variant": variant,
              "record": record}
    lines = [f"\n[{_toml_str(name)}]"] + [f"{k} = {_toml_str(v)}" for k, v in fields.items() if v]
    block = "\n".join(lines) + "\n"
    try:        # checked as the file will read, before a byte is written: a refused entry leaves it as it was
        _entries(tomllib.loads(old + block), path, False)
    except HarnessError as e:
        flag = {"variant": "--variant", "sha256": "--sha256", "record": "--record", "profile": "--profile"}
        raise HarnessError(e.problem, where=e.where, field=flag.get((e.field or "").rsplit(".", 1)[-1], e.field),
                           fix=e.fix) from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(block)
    except OSError as e:
        raise HarnessError(f"cannot write the SUT file: {e.strerror or e}", where=str(path),
                           fix=f"free space or fix its permissions, or point {USER_ENV} at a writable file") from None
    return path


def _toml_str(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's: quotes, backslashes, newlines)."""
    import json
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
