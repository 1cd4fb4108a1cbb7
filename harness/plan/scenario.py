"""Scenarios as data: `scenarios/<name>.toml` says what to boot on a board.

    description = "one line a human reads in the test id's docs"
    families = ["forwarding", "reset"]        # which test families run it
    boards = ["qemu-virt"]                    # boards whose agent/device names it uses (default)
    needs = ["multiagent"]                    # what the SUT's profile must do (harness/data/profiles.py
                                              #   CAPABILITIES); a SUT that cannot skips, saying why
    [boot]                                    # BootSpec fields (harness/machine/system.py); the Xen variant
    dom0_scmi = true                          #   and binding profile come from the SUT
    secondary_cells = 3
    [expect] xen_log = ["..."]                # lines Xen's console must show (bad-config)
    [expect] watch = ['regex']                # Xen's lines a record keeps besides its failures
             misconfig = "duplicate-agent-id" # what Xen does with it is the SUT profile's record
    [[dom0less]] / [[xl]]                     # Guest fields: name, agent, dt_agent, image,
    name = "driver"                           #   passthrough, uses, bootargs, memory_mib
    agent = "guest3"                          # an agent *name* of the board file

Agents and devices are named, never numbered: the board file stays the single
source of truth for ids, function ids and shmem pages. Every value is checked against
its dataclass field's type (a string is no array, "no" no boolean) and guest names
against system.GUEST_NAME, each with one HarnessError naming file, key and fix.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path

from ..data.board import Board
from ..errors import HarnessError, read_text_file
from ..data.profiles import CAPABILITIES, MISCONFIGS
from .plan import secondary_id_overrides
from ..data.spec import FAULT_KINDS, GUEST_NAME, BootSpec, Fault, Guest

SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "scenarios"
FAMILIES = ("forwarding", "isolation", "reset", "permissions", "bad-config", "fault")
IMAGES = ("linux", "scmi-probe")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    families: tuple[str, ...]
    spec: BootSpec
    path: Path
    expect_xen_log: tuple[str, ...] = ()   # lines Xen's boot log must show (bad-config refusals)
    boards: tuple[str, ...] = ("qemu-virt",)  # the boards whose agent and device names it uses
    needs: tuple[str, ...] = ("multiagent",)  # capabilities the SUT's profile must have
    expect_misconfig: str | None = None    # a misconfiguration of profiles.MISCONFIGS: its outcome
                                           # (a known crash, or a refusal) is the SUT's record
    expect_watch: tuple[str, ...] = ()     # regexes of Xen's lines a record keeps besides its failures

    def guests(self) -> tuple[Guest, ...]:
        return self.spec.dom0less + self.spec.xl

    def unmet(self, sut) -> str | None:
        """Why sut cannot run this scenario (None: it can)."""
        missing = [n for n in self.needs if not sut.profile.can(n)]
        if not missing:
            return None
        return f"SUT {sut.name} (profile {sut.profile.name}) cannot run {self.name}: it lacks " + \
            "; ".join(f"{n} ({CAPABILITIES[n]})" for n in missing)

    def spec_for(self, sut) -> BootSpec:
        """The boot of this scenario on sut: its Xen variant and binding profile, and a
        name (artifacts, shared boots) that says both: v5-xl-domu."""
        return dataclasses.replace(self.spec, name=f"{sut.name}-{self.name}", xen=sut.variant,
                                   profile=sut.profile.name)


def scenario_path(name: str | Path) -> Path:
    p = Path(name)
    if p.suffix == ".toml":
        return p
    return SCENARIOS_DIR / f"{name}.toml"


def names(family: str | None = None, board: str | None = None, broken: dict | None = None) -> list[str]:
    """Scenario names (sorted), optionally those of one family and one board: pytest's
    parameter ids. With `broken` (a dict), a scenario file that does not load is left out
    and its error put there instead of raised: one bad file must not stop a whole
    collection (tests/unit/test_scenario.py fails on it by name)."""
    out = sorted(p.stem for p in SCENARIOS_DIR.glob("*.toml"))
    if family is None and board is None:
        return out
    keep = []
    for n in out:
        try:
            sc = load_scenario(n)
        except HarnessError as e:
            if broken is None:
                raise
            broken[n] = str(e)
            continue
        if (family is None or family in sc.families) and (board is None or board in sc.boards):
            keep.append(n)
    return keep


def _fail(path: Path, field: str, problem: str, fix: str):
    raise HarnessError(problem, where=str(path), field=field, fix=fix)


# TOML's words for the Python types a field may have, and an example of each
_TOML = {bool: ("a boolean", "true or false"), int: ("an integer", "1234"), str: ("a string", '"..."'),
         float: ("a float", "1.5"), list: ("an array", "[...]"), dict: ("a table", "{...}")}


def _shown(value) -> str:
    """What a TOML value is, for a message: a string 'no', an integer 3."""
    what = _TOML.get(type(value), (f"a {type(value).__name__}",))[0]
    return what if isinstance(value, (list, dict)) else f"{what} {value!r}"


def _typed(path: Path, key: str, value, hint):
    """value checked against a dataclass field's annotation, as the dataclass holds it
    (arrays become tuples). Exact types: TOML's true is no integer, 1 no boolean, and a
    string where an array goes must not be iterated letter by letter."""
    name = key.rsplit(".", 1)[-1]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))   # TOML has no null
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, list) and all(type(v) is item for v in value):
            return tuple(value)
        want = f"an array of {_TOML[item][0].split()[-1]}s"
        fix = f"write {name} = [{_TOML[item][1]}, ...]"
        if isinstance(value, list):
            bad = next(v for v in value if type(v) is not item)
            _fail(path, key, f"holds {_shown(bad)}, expected {want}", fix)
    elif type(value) is hint:
        return value
    else:
        want, fix = _TOML[hint][0], f"write {name} = {_TOML[hint][1]}"
    _fail(path, key, f"is {_shown(value)}, expected {want}", fix)


def _table(path: Path, key: str, value, array: str | None = None) -> dict:
    """A TOML table ([key], or an entry of the array of tables [[array]])."""
    if not isinstance(value, dict):
        _fail(path, key, f"is {_shown(value)}, expected a table",
              f"write it as [[{array}]]" if array else f"write it as [{key}]")
    return value


def _tables(path: Path, key: str, value) -> list[dict]:
    """An array of tables [[key]]."""
    if not isinstance(value, list):
        _fail(path, key, f"is {_shown(value)}, expected an array of tables", f"write each entry as [[{key}]]")
    return [_table(path, f"{key}[{i}]", v, array=key) for i, v in enumerate(value)]


def _fault(path: Path, i: int, raw: dict) -> Fault:
    """One [[faults]] table: a misbehaviour of the SCMI server for this scenario's boot."""
    from ..images.scmi.protocols import BASE_AGENT_MESSAGES, BASE_MESSAGES
    from ..images.scmi.trace import STATUS
    hints = typing.get_type_hints(Fault)
    where = f"faults[{i}]"
    for key in raw:
        if key not in hints:
            _fail(path, f"{where}.{key}", f"unknown fault key {key!r}", "use one of " + ", ".join(sorted(hints)))
    f = Fault(**{k: _typed(path, f"{where}.{k}", v, hints[k]) for k, v in raw.items()})
    if f.kind not in FAULT_KINDS:
        _fail(path, f"{where}.kind", f"unknown fault kind {f.kind!r}", "use one of " + ", ".join(FAULT_KINDS))
    if f.message != "any" and f.message not in BASE_MESSAGES:
        _fail(path, f"{where}.message", f"{f.message!r} is no Base protocol message",
              "use one of " + ", ".join(BASE_MESSAGES) + ", or any")
    if f.status not in STATUS or f.status == "SUCCESS":
        _fail(path, f"{where}.status", f"{f.status!r} is no SCMI error status",
              "use one of " + ", ".join(s for s in STATUS if s != "SUCCESS"))
    if f.kind == "agent-id" and f.message not in ("DISCOVER_AGENT", "any"):
        _fail(path, f"{where}.message", "an agent-id fault lies in DISCOVER_AGENT's answer",
              'set message = "DISCOVER_AGENT"')
    if f.kind == "smc" and f.value >= 0:
        _fail(path, f"{where}.value", f"an smc fault returning {f.value} is no refusal",
              "give the x0 the doorbell SMC returns: -1 (NOT_SUPPORTED) or -3 (INVALID_PARAMETER)")
    if f.target != "any" and f.message not in BASE_AGENT_MESSAGES:
        _fail(path, f"{where}.target", f"{f.message} names no agent in its payload",
              "use target with " + ", ".join(BASE_AGENT_MESSAGES) + ", or leave it out")
    if f.times < 0 or f.times >= 1 << 32:
        _fail(path, f"{where}.times", f"times = {f.times}", "give how many messages it hits (0: all)")
    if not -(1 << 31) <= f.value < 1 << 32:
        _fail(path, f"{where}.value", f"{f.value} does not fit the server's 32-bit word", "give a 32-bit value")
    return f


# Names a guest may not have: what Xen, xl, the DT or the boot's own files use already
RESERVED_GUEST_NAMES = {
    "xen": "v10/v11 put Xen's SCMI configuration in /chosen/xen (xen_scmi_config); a dom0less guest's "
           "node /chosen/xen would be the same node",
    "Domain-0": "it is xl's name for dom0",
    "host": "the boot's directory holds the host DT as host.dtb, where this guest's DT would go",
    "qemu-base": "the boot's directory holds QEMU's base DT as qemu-base.dtb, where this guest's DT would go",
}
# Xen and kernel options the harness sets itself and reads the boot by: a scenario's own value
# would change what the harness relies on (its console, dom0's memory next to the guests')
HARNESS_XEN_OPTIONS = ("console", "dom0_mem", "loglvl", "guest_loglvl")
HARNESS_KERNEL_OPTIONS = ("console", "earlycon", "panic")
# Broken configurations of Xen's SCMI node: only a bad-config scenario (which says how Xen must
# refuse them) may ask for them; anywhere else a test would fail for a reason it does not check
DEFAULT_SECONDARY_CELLS = (2, 3)
DEFAULT_SHMEM_SIZE = 0x1000


def _guest(path: Path, kind: str, i: int, raw: dict) -> Guest:
    hints = typing.get_type_hints(Guest)
    where = f"{kind}[{i}]"
    for key in raw:
        if key not in hints:
            _fail(path, f"{where}.{key}", f"unknown guest key {key!r}", "use one of " + ", ".join(sorted(hints)))
    if "name" not in raw:
        _fail(path, f"{where}.name", "a guest needs a name", 'add name = "domu"')
    raw = {k: _typed(path, f"{where}.{k}", v, hints[k]) for k, v in raw.items()}
    if not GUEST_NAME.fullmatch(raw["name"]):
        _fail(path, f"{where}.name", f"{raw['name']!r} is not a domain name the harness accepts",
              "use a letter, then up to 30 letters, digits, '_', '.' or '-' (e.g. \"domu-2\")")
    if raw["name"] in RESERVED_GUEST_NAMES:
        _fail(path, f"{where}.name", f"{raw['name']!r} is taken: {RESERVED_GUEST_NAMES[raw['name']]}",
              "give the guest another name (e.g. \"domu-2\")")
    if raw.get("image", "linux") not in IMAGES:
        _fail(path, f"{where}.image", f"unknown image {raw['image']!r}", "use " + " or ".join(IMAGES))
    return Guest(**raw)


def load_scenario(name: str | Path, board: Board | None = None) -> Scenario:
    """Read and check a scenario (against board when given: agent and device names;
    a scenario written for other boards is an error naming them)."""
    path = scenario_path(name)
    if not path.is_file():
        _fail(path, "scenario", f"no scenario {str(name)!r}", "use one of " + ", ".join(names()))
    try:
        raw = tomllib.loads(read_text_file(path, "scenario file"))
    except tomllib.TOMLDecodeError as e:
        _fail(path, "toml", f"not valid TOML: {e}", "fix the syntax")
    for key in raw:
        if key not in ("description", "families", "boards", "needs", "boot", "dom0less", "xl", "expect", "faults"):
            _fail(path, key, f"unknown key {key!r}",
                  "use description, families, boards, needs, boot, dom0less, xl, expect, faults")
    hints = typing.get_type_hints(Scenario)
    top = {k: _typed(path, k, raw[k], hints[k]) for k in ("description", "families", "boards", "needs")
           if k in raw}
    needs = top.get("needs", ("multiagent",))
    if any(n not in CAPABILITIES for n in needs):
        _fail(path, "needs", f"needs must be a list of {', '.join(CAPABILITIES)}; got {list(needs)!r}",
              'write e.g. needs = ["multiagent", "dom0-agent-in-dt"]')
    expect = _table(path, "expect", raw.get("expect", {}))
    if set(expect) - {"xen_log", "misconfig", "watch"}:
        _fail(path, "expect", f"unknown keys {sorted(set(expect) - {'xen_log', 'misconfig', 'watch'})}",
              'use xen_log = [lines], misconfig = "NAME" and/or watch = [regexes]')
    xen_log = _typed(path, "expect.xen_log", expect.get("xen_log", []), hints["expect_xen_log"])
    misconfig = _typed(path, "expect.misconfig", expect["misconfig"], str) if "misconfig" in expect else None
    watch = _typed(path, "expect.watch", expect.get("watch", []), hints["expect_watch"])
    for w in watch:
        try:
            re.compile(w)
        except re.error as e:
            _fail(path, "expect.watch", f"{w!r} is not a regex: {e}", "write a Python regex (escape '(' as '\\(')")
    if misconfig is not None and misconfig not in MISCONFIGS:
        _fail(path, "expect.misconfig", f"unknown misconfiguration {misconfig!r}", "use one of " + ", ".join(MISCONFIGS))
    fams = top.get("families", ())
    for f in fams:
        if f not in FAMILIES:
            _fail(path, "families", f"unknown family {f!r}", "use " + ", ".join(FAMILIES))
    boot = dict(_table(path, "boot", raw.get("boot", {})))
    for key in ("xen", "profile"):
        if key in boot:
            _fail(path, f"boot.{key}", f"a scenario does not choose the Xen {'variant' if key == 'xen' else 'profile'}: "
                  "the system under test does (--sut)", f'remove boot.{key}; say what the scenario needs '
                  f'with needs = [...] ({", ".join(CAPABILITIES)})')
    known = {f.name for f in fields(BootSpec)} - {"name", "dom0less", "xl", "xen", "profile", "faults"}
    for key in boot:
        if key not in known:
            _fail(path, f"boot.{key}", f"unknown boot key {key!r}", "use one of " + ", ".join(sorted(known)))
    spec_hints = typing.get_type_hints(BootSpec)
    boot = {k: _typed(path, f"boot.{k}", v, spec_hints[k]) for k, v in boot.items()}
    dom0less, xl = (tuple(_guest(path, kind, i, g) for i, g in enumerate(_tables(path, kind, raw.get(kind, []))))
                    for kind in ("dom0less", "xl"))
    seen = [g.name for g in dom0less + xl]
    if len(set(seen)) != len(seen):
        _fail(path, "name", f"guest names repeat: {seen}", "give every guest its own name")
    check_meaning(path, fams, xen_log, misconfig, dom0less, xl, boot)
    faults = tuple(_fault(path, i, f) for i, f in enumerate(_tables(path, "faults", raw.get("faults", []))))
    from .plan import FAULT_MAX
    if len(faults) > FAULT_MAX:
        _fail(path, "faults", f"{len(faults)} faults: the server's fault table takes at most {FAULT_MAX}",
              f"keep at most {FAULT_MAX} [[faults]] entries")
    if watch and not {"bad-config", "fault"} & set(fams):
        _fail(path, "expect.watch", f"only the bad-config and fault tests read it; in families {list(fams)} it "
              "would be ignored", 'add the family whose tests it is for, or drop it')
    spec = BootSpec(path.stem, dom0less=dom0less, xl=xl, faults=faults, **boot)
    sc = Scenario(path.stem, top.get("description", ""), fams, spec, path, xen_log,
                  top.get("boards", ("qemu-virt",)), needs, misconfig, watch)
    if board is not None:
        if board.name not in sc.boards:
            _fail(path, "boards", f"scenario {sc.name!r} is written for {', '.join(sc.boards)}, not {board.name!r}",
                  f"pick a scenario for {board.name} (harness.plan.scenario.names(board={board.name!r})) or add the "
                  f"board to its boards list if its agent and device names exist there")
        check_against_board(sc, board)
    return sc


MIN_MEMORY_MIB = {"linux": 64, "scmi-probe": 4}   # below this the guest cannot boot at all


def check_meaning(path: Path, families, xen_log, misconfig, dom0less, xl, boot) -> None:
    """What a well-typed scenario may still get wrong: a system that cannot exist, or a
    test that would prove nothing. One error each, naming the key."""
    if "bad-config" in families and not xen_log and misconfig is None:
        _fail(path, "expect", "a bad-config scenario says nothing about how Xen must refuse it",
              'add [expect] xen_log = ["<Xen\'s refusal line>"] or misconfig = "NAME"')
    check_boot(path, families, xen_log, misconfig, boot)
    owners: dict[str, str] = {}
    holders: dict[str, str] = {}
    for kind, guests in (("dom0less", dom0less), ("xl", xl)):
        for i, g in enumerate(guests):
            where = f"{kind}[{i}]"
            if kind == "xl" and g.image != "linux":
                _fail(path, f"{where}.image", f"xl guests boot Linux; image {g.image!r} is for dom0less guests",
                      "make it a [[dom0less]] guest, or drop image")
            if g.ops and g.image != "scmi-probe":
                _fail(path, f"{where}.ops", f"ops are scmi-probe's operations; a {g.image} guest would ignore them",
                      'set image = "scmi-probe" (a dom0less guest), or drop ops')
            bad = next((c for c in g.bootargs if ord(c) < 0x20 or c == "\x7f"), None)
            if bad is not None:
                _fail(path, f"{where}.bootargs", f"holds the control character {bad!r}: a kernel command line "
                      "(and an xl.cfg string) is one line of text", "write the arguments on one line, separated by spaces")
            if g.memory_mib is not None and g.memory_mib < MIN_MEMORY_MIB[g.image]:
                _fail(path, f"{where}.memory_mib", f"{g.memory_mib} MiB is not enough for a {g.image} guest",
                      f"give at least {MIN_MEMORY_MIB[g.image]} (or leave it out for the default)")
            if (g.uses or g.passthrough) and g.agent is None:
                _fail(path, f"{where}.{'uses' if g.uses else 'passthrough'}",
                      f"guest {g.name!r} has no SCMI agent, so it can neither use nor be given SCMI devices",
                      "give it agent = \"<board agent>\", or drop the devices")
            if g.agent is not None:
                if g.agent in owners:
                    _fail(path, f"{where}.agent", f"agent {g.agent!r} is given to {owners[g.agent]!r} and "
                          f"{g.name!r}: one agent serves one domain", "give each guest its own agent")
                owners[g.agent] = g.name
            for d in g.passthrough:
                if d in holders:
                    _fail(path, f"{where}.passthrough", f"device {d!r} is passed to {holders[d]!r} and {g.name!r}",
                          "pass each device to one guest")
                holders[d] = g.name


def check_boot(path: Path, families, xen_log, misconfig, boot: dict) -> None:
    """[boot] and [expect] for what they mean: what only a bad-config scenario may ask for,
    expectations no test of the scenario's families reads, options the harness sets itself."""
    bad_config = "bad-config" in families
    if (xen_log or misconfig is not None) and not bad_config:
        _fail(path, "expect.xen_log" if xen_log else "expect.misconfig", "only the bad-config tests read how Xen "
              f"refuses a configuration; in families {list(families)} it would be ignored",
              'add "bad-config" to families (and break the configuration), or drop it')
    cells = boot.get("secondary_cells", 3)
    if cells not in DEFAULT_SECONDARY_CELLS and not bad_config:
        _fail(path, "boot.secondary_cells", f"{cells} is no #scmi-secondary-agents-cells Xen takes (3: ids given, "
              "2: ids discovered)", "use 2 or 3 (another value only in a bad-config scenario)")
    if not 0 < cells <= 8:
        _fail(path, "boot.secondary_cells", f"{cells} cells per entry", "use 2 or 3 (a bad-config scenario: 1..8)")
    size = boot.get("shmem_size", DEFAULT_SHMEM_SIZE)
    if not 0 < size <= DEFAULT_SHMEM_SIZE:
        _fail(path, "boot.shmem_size", f"{size:#x}: an agent's shared memory is one page at most (0 is none, "
              "more overlaps the next agent's page)", "use 0x1000 (a bad-config scenario: less, e.g. 0x800)")
    if size != DEFAULT_SHMEM_SIZE and not bad_config:
        _fail(path, "boot.shmem_size", f"{size:#x} is not the whole page Xen maps: Xen would refuse the "
              "configuration, which only a bad-config scenario tests", 'leave it out, or make the scenario '
              'families = ["bad-config"] with the refusal in [expect]')
    from .dt import DT_BREAKS
    for b in boot.get("dt_breaks", ()):
        if b not in DT_BREAKS:
            _fail(path, "boot.dt_breaks", f"unknown DT break {b!r}", "use " + ", ".join(DT_BREAKS))
    if boot.get("dt_breaks") and not bad_config:
        _fail(path, "boot.dt_breaks", "breaks Xen's SCMI configuration outside a bad-config scenario",
              'make the scenario families = ["bad-config"] with the refusal in [expect], or drop dt_breaks')
    ac = boot.get("access_controller")
    if ac is not None and ac != "/firmware/scmi":
        _fail(path, "boot.access_controller", f"{ac!r}: access-controllers may point at Xen's management node "
              "(leave it out) or at /firmware/scmi (v10's docs)", 'write access_controller = "/firmware/scmi" or drop it')
    firmware = boot.get("dom0_scmi", True) if boot.get("firmware_scmi") is None else boot["firmware_scmi"]
    if ac is not None and not firmware:
        _fail(path, "boot.access_controller", "points at /firmware/scmi, which this boot leaves out of the host DT "
              "(dom0_scmi / firmware_scmi = false)", "set firmware_scmi = true, or drop access_controller")
    for key, taken in (("xen_args", HARNESS_XEN_OPTIONS), ("kernel_args", HARNESS_KERNEL_OPTIONS)):
        for arg in boot.get(key, ()):
            if not arg or any(c.isspace() for c in arg):
                _fail(path, f"boot.{key}", f"{arg!r} is not one option", f'give one option per entry: {key} = ["a=1", "b"]')
            if arg.split("=", 1)[0] in taken:
                _fail(path, f"boot.{key}", f"{arg!r}: the harness sets {arg.split('=', 1)[0]} itself and reads the "
                      "boot by it", f"drop it (the harness's options: {', '.join(taken)})")


def shared_pages(sc: Scenario, board: Board) -> list[str]:
    """What a passed-through device's 4 KiB page (the iomem a guest gets) also maps: other
    devices of the board, reachable by that guest too. QEMU virt packs virtio-mmio
    transports 8 to a page, so a board with many devices cannot always avoid it; the boot
    tests record these notes (JUnit shared_page_*) instead of hiding them."""
    from .dt import device_page
    notes = []
    for g in sc.guests():
        for d in g.passthrough:
            page = device_page(board.device(d).node)
            near = [o.name for o in board.devices if o.name != d and o.name not in g.passthrough
                    and device_page(o.node) == page]
            if near:
                notes.append(f"{g.name} is given {d} ({board.device(d).node}): its page {page:#x} also maps "
                             f"{', '.join(near)}")
    return notes


def check_against_board(sc: Scenario, board: Board) -> None:
    """Every agent and device a scenario names exists on the board, and the system it
    describes fits the board: no guest takes Xen's agent or the agent dom0 keeps, and
    the guests fit its RAM next to dom0."""
    agents = {a.name for a in board.agents}
    devices = {d.name for d in board.devices}
    for kind, guests in (("dom0less", sc.spec.dom0less), ("xl", sc.spec.xl)):
        for i, g in enumerate(guests):
            for key in ("agent", "dt_agent"):
                v = getattr(g, key)
                if v is not None and v not in agents:
                    _fail(sc.path, f"{kind}[{i}].{key}", f"board {board.name!r} has no agent {v!r}",
                          "use one of " + ", ".join(sorted(agents)))
            for key in ("passthrough", "uses"):
                for d in getattr(g, key):
                    if d not in devices:
                        _fail(sc.path, f"{kind}[{i}].{key}", f"board {board.name!r} has no device {d!r}",
                              "use one of " + ", ".join(sorted(devices)))
    from ..data.spec import DOM0_MEM_MIB
    for kind, guests in (("dom0less", sc.spec.dom0less), ("xl", sc.spec.xl)):
        for i, g in enumerate(guests):
            a = board.agent_named(g.agent) if g.agent else None
            if a is not None and a.role == "management":
                _fail(sc.path, f"{kind}[{i}].agent", f"{a.name!r} is Xen's own management agent on board "
                      f"{board.name!r}; no domain may have it", "give the guest a guest agent")
            if a is not None and a.role == "dom0" and sc.spec.dom0_scmi and "single-passthrough" not in sc.needs:
                _fail(sc.path, f"{kind}[{i}].agent", f"{a.name!r} is dom0's agent and dom0 keeps SCMI "
                      "(boot.dom0_scmi)", "give the guest a guest agent, or set dom0_scmi = false")
    from ..data.board import XEN_CONSOLE_NODE
    for kind, guests in (("dom0less", sc.spec.dom0less), ("xl", sc.spec.xl)):
        for i, g in enumerate(guests):
            for d in g.passthrough:
                dev = board.device(d)
                if dev.node == XEN_CONSOLE_NODE:
                    _fail(sc.path, f"{kind}[{i}].passthrough", f"device {d!r} stands on {dev.node}, Xen's own "
                          "console (dtuart): passing it through takes Xen's console away", "pass another device")
    guest_mib = sum(g.memory for g in sc.guests())
    ram_mib = board.ram_size >> 20
    if guest_mib + DOM0_MEM_MIB > ram_mib:
        _fail(sc.path, "memory_mib", f"the guests need {guest_mib} MiB next to dom0's {DOM0_MEM_MIB} MiB; "
              f"board {board.name!r} has {ram_mib} MiB", "give the guests less memory, or the board more")
    for i, f in enumerate(sc.spec.faults):
        if f.agent != "any" and f.agent not in agents:
            _fail(sc.path, f"faults[{i}].agent", f"board {board.name!r} has no agent {f.agent!r}",
                  "use one of " + ", ".join(sorted(agents)) + ", or any")
        if f.target != "any" and f.target not in agents:
            _fail(sc.path, f"faults[{i}].target", f"board {board.name!r} has no agent {f.target!r}",
                  "use one of " + ", ".join(sorted(agents)) + ", or any")
    for d in sc.spec.passthrough:
        if d not in devices:
            _fail(sc.path, "boot.passthrough", f"board {board.name!r} has no device {d!r}",
                  "use one of " + ", ".join(sorted(devices)))
    try:
        secondary_id_overrides(board, sc.spec)
    except HarnessError as e:
        _fail(sc.path, "boot.secondary_ids", e.problem, e.fix)
