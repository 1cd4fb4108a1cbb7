"""Per-revision records: what one revision of Xen was seen to do under this harness, as data.

A binding profile (profiles.py) says what a revision *expects* (its DT binding, options, id
range); its record (records/<name>.toml) says what it *did* on real boots: the crash or the
exact lines Xen printed for each firmware fault and broken configuration, the errnos of the
assign domctl, what xl said. The boot tests assert the record exactly; nobody writes it by
hand. The flow (after insta / syrupy):

  pytest -m boot --sut v12 --record      boots what the record lacks (or where it differs)
                                          and writes records/v12.pending.toml
  harness record diff v12                 what accepting would change, as a unified diff
  harness record accept v12               pending -> records/v12.toml (a reviewer's `defect`
                                          and `defect_line` of an entry are kept)

A normal run never writes a record (CI refuses --record), and `harness record check` names
the entries no test reads any more (a scenario renamed or gone).

Lines are kept as templates: Xen's line exactly, with `{placeholders}` for what differs from
boot to boot or board to board ({vcpu}; and what the test names: {dom0_func_id}, {domid},
{agent}, {device}); `{{` and `}}` are literal braces. template_regex() turns one into the
regex the test searches for.
"""
from __future__ import annotations

import difflib
import fcntl
import os
import re
import tomllib
from contextlib import contextmanager
from pathlib import Path

from ..errors import HarnessError

# the records directory; HARNESS_RECORDS points a run elsewhere (the round-trip test records into a copy)
RECORDS = Path(os.environ.get("HARNESS_RECORDS") or Path(__file__).resolve().parents[2] / "records")
HUMAN = ("defect", "defect_line")     # a reviewer's words about an entry: kept when it is recorded again
# [broken.*] entries are a reviewer's too (which failure is the SUT's, with the evidence from
# a real boot's failure message): --record never writes them
SECTIONS = {
    "fault": "a firmware fault scenario (scenarios/fault-*.toml): tests/boot/test_faults.py",
    "bad-config": "a broken SCMI configuration (scenarios/bad-*.toml): test_scenarios.py::test_bad_config_is_refused",
    "xl-dtdev": "xl create with dtdev on a host without an IOMMU, per board: "
                "test_scenarios.py::test_xl_dtdev_is_refused_without_an_iommu",
    "assign-domctl": "XEN_DOMCTL_assign_device without an IOMMU, per board: test_assign_domctl.py",
    "assign-denied": "the assign domctl when the firmware refuses the grant, per board: test_assign_domctl.py",
    "broken": "a check the revision is known to fail, with the evidence it fails with: a strict xfail "
              "(known_broken in harness/run/pytest_plugin.py)",
}
# the checks a [broken.<check>] entry may name, and the tests that run them
BROKEN_CHECKS = {
    "guest-scmi": "a Linux guest (or dom0) probes SCMI through its agent: checks.guest_probed_scmi in "
                  "test_forwarding and test_single_passthrough_refuses_a_second_domain",
}
# the test (node id part) that reads each section: the revision matrix's reproducer
READERS = {
    "fault": "test_faults.py",
    "bad-config": "test_bad_config_is_refused",
    "xl-dtdev": "test_xl_dtdev_is_refused_without_an_iommu",
    "assign-domctl": "test_assign_domctl_without_an_iommu",
    "assign-denied": "test_assign_domctl_refused_by_the_firmware",
    "broken": "test_forwarding",
}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# what any test may leave open in a line: the vcpu a line was printed on varies between boots
GENERIC = {"vcpu": r"\d+", "addr": r"[0-9a-f]{16}", "off": r"0x[0-9a-f]+/0x[0-9a-f]+"}


def path(name: str) -> Path:
    return RECORDS / f"{name}.toml"


def pending_path(name: str) -> Path:
    return RECORDS / f"{name}.pending.toml"


# ---- line templates -------------------------------------------------------------------------

def template(line: str, context: dict | None = None) -> str:
    """An observed console line as a template: braces doubled, the vcpu number of Xen's
    d<N>v<M> left open, and each context value named where the line says what it is: a domid
    as d<N>, an id after ':' or after "agent_id "/"agent " (not "agent_id = 1", the
    management channel's), an SMC id as a word of its own."""
    t = line.rstrip().replace("{", "{{").replace("}", "}}")
    t = re.sub(r"\bd(\d+)v\d+\b", r"d\1v{vcpu}", t)
    # a crash's addresses and symbol offsets belong to one build, its function names do not
    t = re.sub(r"\b[0-9a-f]{16}\b", "{addr}", t)
    t = re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+\b", "+{off}", t)
    for name, value in (context or {}).items():
        if value in ("", None):
            continue
        v = re.escape(str(value))
        if name == "domid":
            pattern = rf"(?<=\bd){v}\b"
        elif str(value).isdigit():
            pattern = rf"(?:(?<=:)|(?<=agent_id )|(?<=agent )){v}\b"
        else:
            pattern = rf"(?<![0-9A-Za-z_]){v}(?![0-9A-Za-z_])"
        t = re.sub(pattern, "{" + name + "}", t)
    return t


def template_regex(t: str, context: dict | None = None) -> str:
    """The regex of a template: the text exact, each {name} the context's value (escaped) or,
    for {vcpu}, any number."""
    context = {k: str(v) for k, v in (context or {}).items()}
    out, pos = [], 0
    literal = t.replace("{{", "\0").replace("}}", "\1")
    for m in _PLACEHOLDER.finditer(literal):
        out.append(re.escape(literal[pos:m.start()]))
        key = m.group(1)
        if key in context:
            out.append(re.escape(context[key]))
        elif key in GENERIC:
            out.append(GENERIC[key])
        else:
            raise HarnessError(f"the record's line {t!r} names {{{key}}}, which this test does not give",
                               field=key, fix="record it again (pytest --record) or name one of "
                               + ", ".join([*context, *GENERIC]))
        pos = m.end()
    out.append(re.escape(literal[pos:]))
    return "".join(out).replace("\0", r"\{").replace("\1", r"\}")


# Xen's lines worth recording: the SCMI/SCI code's, the SMCs it did not handle, and a crash's
# headline. Its debug chatter about things that worked ("scmi: Agent 5 SMC ..." on every boot)
# is kept out unless it says something failed, so a record reads as what went wrong.
XEN_LINE = re.compile(r"^\(XEN\) ")
SCMI_WORDS = re.compile(r"(?i)\b(scmi|sci|smc|arm_sci)\b|SMC/HVC|access.controller")
TROUBLE = re.compile(r"(?i)fail|error|invalid|could not|couldn't|can't|cannot|unable|unhandled|not found|"
                     r"not supported|no \S+ (property|node)|refus|denied|busy|not aligned|res=-\d|\(-\d+\)|: -\d+\b")
CRASH = re.compile(r"Panic on CPU|Unexpected Trap|^\(XEN\) PC: |Assertion '|BUG at|Xen BUG|FATAL|"
                   r"Reboot in|Device tree generation failed|Could not set up DOM0|Failed to assign device")


# an SMC Xen did not handle is SCMI's only in the SiP range the agents' doorbells use; Linux
# probes others on every boot (SMCCC TRNG 0x84000050, the vendor hypervisor UID 0x8600ff01)
UNHANDLED = re.compile(r"Unhandled SMC/HVC: (0x[0-9a-fA-F]+|\{\w+\})")
SIP = re.compile(r"0x[8c]2[0-9a-fA-F]{6}$")


def notable(text: str, context: dict | None = None, *, crash: bool = False, watch=()) -> list[str]:
    """Xen's lines of text that say what its SCMI code did wrong or refused (for a crash, its
    headline lines too; and those matching a scenario's `watch` regexes), as templates, in
    first-seen order without repeats."""
    seen: dict[str, None] = {}
    watch = [re.compile(w) for w in watch]
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        at = line.find("(XEN) ")
        if at < 0:
            continue
        line = line[at:]                    # Xen's part: what dom0 printed before it (prompt, echo) is not Xen's
        wanted = (SCMI_WORDS.search(line) and TROUBLE.search(line)) or (crash and CRASH.search(line)) \
            or any(w.search(line) for w in watch)
        smc = UNHANDLED.search(line)
        if smc and not SIP.match(smc.group(1)):
            continue
        if wanted:
            seen.setdefault(template(_xen_part(line), context))
    return list(seen)


def _xen_part(line: str) -> str:
    """Xen's message without what the next writer appended to it: a printk without '\\n' is
    joined by dom0's next output; the record keeps Xen's text up to its errno "(-N)"."""
    m = re.search(r"\(-\d+\)", line)
    return line[:m.end()] if m else line


# ---- the record files -----------------------------------------------------------------------

def _read(p: Path) -> dict:
    if not p.is_file():
        return {}
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise HarnessError(f"not valid TOML: {e}", where=str(p), fix="fix the syntax, or record it again "
                           "(pytest --record) and accept it (harness record accept)") from None


def load(name: str) -> dict:
    """The accepted record of revision `name`: section -> key -> entry ({} when there is none)."""
    data = _read(path(name))
    for section in data:
        if section not in SECTIONS:
            raise HarnessError(f"unknown section [{section}]", where=str(path(name)), field=section,
                               fix="use " + ", ".join(SECTIONS))
    return data


def entry(name: str, section: str, key: str) -> dict | None:
    return load(name).get(section, {}).get(key)


@contextmanager
def _locked(p: Path):
    """One writer at a time (pytest -n workers recording into one pending file)."""
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.with_suffix(p.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_pending(name: str, section: str, key: str, observed: dict) -> Path:
    p = pending_path(name)
    with _locked(p):
        data = _read(p)
        data.setdefault(section, {})[key] = observed
        _write(p, data, f"pending record of {name}: review with `harness record diff {name}`, "
                        f"accept with `harness record accept {name}`")
    return p


def accept(name: str) -> tuple[Path, list[str]]:
    """Merge the pending record into the accepted one, keeping a reviewer's HUMAN fields of
    each entry; the pending file goes. Returns (the record, the entries taken)."""
    p, pend = path(name), pending_path(name)
    if not pend.is_file():
        raise HarnessError(f"nothing pending for {name}", where=str(pend),
                           fix=f"record first: pytest -m boot --sut <a SUT whose record is {name}> --record")
    with _locked(pend):
        merged, taken = _merged(name)
        _write(p, merged, HEADER.format(name=name))
        pend.unlink()
    return p, taken


def _merged(name: str) -> tuple[dict, list[str]]:
    merged, taken = load(name), []
    for section, entries in _read(pending_path(name)).items():
        for key, observed in entries.items():
            old = merged.setdefault(section, {}).get(key, {})
            merged[section][key] = {**observed, **{h: old[h] for h in HUMAN if h in old}}
            taken.append(f"[{section}.{key}]")
    return merged, taken


def diff(name: str) -> str:
    """What `accept` would change in records/<name>.toml, as a unified diff ('' when nothing)."""
    if not pending_path(name).is_file():
        return ""
    before = path(name).read_text(encoding="utf-8") if path(name).is_file() else ""
    after = render(_merged(name)[0], HEADER.format(name=name))
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        f"records/{name}.toml", f"records/{name}.toml (accepted)"))


HEADER = ("What Xen revision {name} was seen to do under this harness (records.py): written by\n"
          "`pytest -m boot --sut ... --record`, accepted by `harness record accept {name}`. Edit only\n"
          "`defect` and `defect_line` (a reviewer's words, kept when an entry is recorded again).")


def _write(p: Path, data: dict, header: str) -> None:
    tmp = p.with_suffix(".tmp")
    tmp.write_text(render(data, header), encoding="utf-8")
    os.replace(tmp, p)


def render(data: dict, header: str) -> str:
    """TOML, sections and keys sorted, one entry per table, lines one per row: diffs stay small."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    for section in sorted(data):
        for key in sorted(data[section]):
            out += ["", f"[{_key(section)}.{_key(key)}]"]
            for field, value in sorted(data[section][key].items(), key=lambda kv: (kv[0] in HUMAN, kv[0])):
                out.append(f"{_key(field)} = {_value(value)}")
    return "\n".join(out) + "\n"


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _str(k)


def _str(s: str) -> str:
    if "'" not in s and "\n" not in s and not any(ord(c) < 32 for c in s):
        return f"'{s}'"                    # literal: a line reads as Xen printed it
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, (list, tuple)):
        return "[]" if not v else "[\n" + "".join(f"    {_value(x)},\n" for x in v) + "]"
    raise TypeError(f"a record holds strings, numbers, booleans and lists, not {type(v).__name__}")


# ---- comparing --------------------------------------------------------------------------------

def compare(expected: dict, observed: dict, text: str = "", context: dict | None = None) -> list[str]:
    """What differs between the record and a boot, one line each ([] when it holds). Every
    field but the HUMAN ones must be equal, except `xen_lines`: each recorded line must show
    in text (Xen's console) - a line the boot printed besides them is no difference."""
    problems = []
    for field in sorted(set(expected) | set(observed)):
        if field in HUMAN:
            continue
        want, got = expected.get(field), observed.get(field)
        if field == "xen_lines":
            for t in want or []:
                if not re.search(template_regex(t, context), text, re.M):
                    problems.append(f"xen_lines: Xen never printed {t!r}")
        elif want != got:
            problems.append(f"{field}: recorded {want!r}, observed {got!r}")
    return problems


def sut_record(sut) -> str:
    """The record a SUT is asserted against: its own `record` (suts.toml), else its profile's."""
    return getattr(sut, "record", None) or sut.profile.name


def unread(known: dict[str, set[str]]) -> list[str]:
    """Entries of every record that no test reads: `known` maps a section to the keys that
    exist now (scenario names of its family, board names)."""
    out = []
    for p in sorted(RECORDS.glob("*.toml")):
        if p.name.endswith(".pending.toml"):
            continue
        for section, entries in load(p.stem).items():
            for key in entries:
                if key not in known.get(section, set()):
                    out.append(f"{p.relative_to(RECORDS.parent)}: [{section}.{key}] ({SECTIONS[section]}) "
                               f"is read by no test: no such {'board' if section.startswith(('xl', 'assign')) else 'scenario'}")
    return out
