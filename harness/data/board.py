"""Board files (boards/<name>.toml): the single source of truth for the SCMI topology.

A board is parsed with tomllib and validated into frozen dataclasses; every
problem is reported as a HarnessError naming the file, the key and the fix.
"""
from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import HarnessError, read_text_file

BOARDS_DIR = Path(__file__).resolve().parents[2] / "boards"
PAGE = 0x1000
ROLES = ("dom0", "management", "guest")

# Where the boot flow puts images in QEMU virt's RAM: QEMU writes the host DTB at RAM base,
# TF-A jumps to BL33 (Xen, or Linux without Xen) that QEMU's loader put at BL33_BASE
# (PRELOADED_BL33_BASE in build/tfa.py), and boot modules (dom0's kernel and initrd,
# dom0less images) are placed from ram_base + MODULES_FROM up, skipping the carve-out
# (system.place_modules). Only the first two are fixed, so a carve-out must avoid them.
BL33_BASE = 0x40200000
BL33_ROOM = 64 << 20        # Xen is ~1.5 MiB, Linux's Image ~37 MiB (BSS included); prepare() checks
MODULES_FROM = 0x08000000


VIRT_RAM_BASE = 0x40000000     # QEMU's virt machine: RAM starts here, whatever its size


def fixed_images(ram_base: int) -> list[tuple[str, int, int]]:
    """(what, base, size) of the RAM the boot flow uses at fixed addresses."""
    return [("the host DTB", ram_base, BL33_BASE - ram_base),
            ("Xen or Linux (BL33)", BL33_BASE, BL33_ROOM)]


# A device's node: a top-level node with a unit address; never the root, RAM or what Xen reads
DEVICE_NODE = re.compile(r"/[A-Za-z0-9][A-Za-z0-9,._+-]*@[0-9a-f]+")
NOT_DEVICES = {"/memory", "/chosen", "/reserved-memory", "/firmware", "/cpus", "/psci"}
XEN_CONSOLE_NODE = "/pl011@9000000"   # QEMU virt's UART0: /chosen's stdout-path, Xen's dtuart

# board, agent, device and resource names (no blanks, quotes or comment delimiters)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:,+-]{0,63}")

@dataclass(frozen=True)
class Agent:
    id: int
    name: str
    role: str          # dom0 | management | guest
    func_id: int       # SMC function id ringing this agent's doorbell
    shmem: int         # physical address of its 4 KiB SMT page
    devices: tuple[str, ...] = ()   # SCMI devices granted at firmware boot

    @property
    def privileged(self) -> bool:
        return self.role == "management"


@dataclass(frozen=True)
class Clock:
    id: int
    name: str
    rates_hz: tuple[int, ...]
    default_rate_hz: int
    enabled: bool


@dataclass(frozen=True)
class Reset:
    id: int
    name: str
    asserted: bool


@dataclass(frozen=True)
class PowerDomain:
    id: int
    name: str
    on: bool


@dataclass(frozen=True)
class Sensor:
    id: int
    name: str
    unit: str
    value: int


@dataclass(frozen=True)
class Device:
    id: int
    name: str
    node: str          # path of the QEMU virt DT node this SCMI device stands for
    clocks: tuple[int, ...] = ()
    resets: tuple[int, ...] = ()
    power_domains: tuple[int, ...] = ()
    sensors: tuple[int, ...] = ()


@dataclass(frozen=True)
class Qemu:
    machine: str
    cpu: str
    memory_mib: int
    smp: int


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    path: Path
    qemu: Qemu
    ram_base: int
    ram_size: int
    shmem_base: int
    shmem_size: int
    agents: tuple[Agent, ...]
    clocks: tuple[Clock, ...] = ()
    resets: tuple[Reset, ...] = ()
    power_domains: tuple[PowerDomain, ...] = ()
    sensors: tuple[Sensor, ...] = ()
    devices: tuple[Device, ...] = ()
    # DEN0056 4.1.2: agent id 0 identifies the platform, real agents number from 1. A board
    # that reproduces firmware giving id 0 to a real agent (the Xen series' doc example)
    # says so with [scmi] allow_agent_id_0 = true; the server then traces the deviation.
    allow_agent_id_0: bool = False
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def agent(self, role: str) -> Agent | None:
        """The first agent with this role (dom0, management), or None."""
        return next((a for a in self.agents if a.role == role), None)

    def agent_named(self, name: str) -> Agent:
        """The agent called name; a clear error naming the board's agents otherwise."""
        for a in self.agents:
            if a.name == name:
                return a
        raise HarnessError(f"board {self.name!r} has no SCMI agent named {name!r}", where=str(self.path),
                           field="scmi.agents.name", fix="use one of " + ", ".join(a.name for a in self.agents))

    @property
    def management(self) -> Agent:
        return self.agent("management")

    @property
    def fault_page(self) -> int:
        """The carve-out's last page: no agent's; where the SCMI server reads a boot's fault
        table (images/tf-a/scmi-server/scmi_fault.c, harness/plan/plan.py fault_table)."""
        return self.shmem_base + self.shmem_size - PAGE

    @property
    def guests(self) -> tuple[Agent, ...]:
        return tuple(a for a in self.agents if a.role == "guest")

    def device(self, name: str) -> Device:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)


class _Reader:
    """Typed access to a TOML table that reports file and dotted key on error."""

    def __init__(self, path: Path, table: dict, prefix: str):
        self.path, self.table, self.prefix = path, table, prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str, fix: str) -> HarnessError:
        return HarnessError(problem, where=str(self.path), field=self.key(name), fix=fix)

    def get(self, name: str, kind, default=..., fix: str | None = None):
        if name not in self.table:
            if default is ...:
                raise self.fail(name, "missing", fix or f"add '{name} = ...' to [{self.prefix or 'top level'}]")
            return default
        value = self.table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is a subclass of int: do not accept true where a number is due
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            want = " or ".join(k.__name__ for k in kinds)
            raise self.fail(name, f"is {type(value).__name__} {value!r}, expected {want}",
                            fix or f"write {name} as a TOML {want}")
        return value

    def name(self, key: str = "name") -> str:
        """A name: it reaches C (the server's tables), DT node names, the trace and test ids."""
        value = self.get(key, str)
        if not NAME.fullmatch(value):
            raise self.fail(key, f"{value!r} is not a usable name",
                            "letters, digits and _ . : , + - (a letter or digit first, at most 64)")
        return value

    def ints(self, name: str) -> tuple[int, ...]:
        values = self.get(name, list, [])
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool):
                raise self.fail(name, f"holds {v!r}, expected integers", "list resource ids as integers")
        return tuple(values)

    def strs(self, name: str) -> tuple[str, ...]:
        values = self.get(name, list, [], fix=f'write {name} as a TOML list of strings: {name} = ["..."]')
        for v in values:
            if not isinstance(v, str):
                raise self.fail(name, f"holds {v!r}, expected strings", 'list names as strings: ["uart"]')
        return tuple(values)

    def only(self, known, title: str) -> None:
        """Reject a key this table does not have (a typo would otherwise be a silent default)."""
        for k in self.table:
            if k not in known:
                near = difflib.get_close_matches(k, known, n=1)
                raise self.fail(k, f"unknown key {k!r} {title}" + (f"; did you mean {near[0]!r}?" if near else ""),
                                "use one of " + ", ".join(sorted(known)))

    def sub(self, name: str, index: int | None = None, known=None) -> "_Reader":
        table = self.table[name] if index is None else self.table[name][index]
        key = self.key(name) + (f"[{index}]" if index is not None else "")
        if not isinstance(table, dict):
            raise HarnessError("is not a table", where=str(self.path), field=key,
                               fix=f"write it as [{key}] / [[{key}]]")
        r = _Reader(self.path, table, key)
        if known is not None:
            r.only(known, f"in [{key}]" if index is None else f"in [[{self.key(name)}]]")
        return r

    def array(self, name: str, record) -> list["_Reader"]:
        """The entries of [[name]], each holding only the fields of the dataclass record."""
        if name not in self.table:
            return []
        if not isinstance(self.table[name], list):
            raise self.fail(name, "is not an array of tables", f"write each entry as [[{self.key(name)}]]")
        known = [f.name for f in fields(record)]
        return [self.sub(name, i, known) for i in range(len(self.table[name]))]


def _unique(items, attr: str, path: Path, key: str, fix: str | None = None):
    seen = {}
    for i, item in enumerate(items):
        v = getattr(item, attr)
        if v in seen:
            shown = hex(v) if isinstance(v, int) and attr in ("func_id", "shmem") else repr(v)
            raise HarnessError(f"duplicate {attr} {shown} (also in {key}[{seen[v]}])",
                               where=str(path), field=f"{key}[{i}].{attr}",
                               fix=fix or f"give every entry of {key} its own {attr}")
        seen[v] = i


# What the boot flow needs of QEMU's machine: TF-A at EL3 (secure=on), Xen at EL2
# (virtualization=on), and the GIC TF-A is built for (build/tfa.py: QEMU_USE_GIC_DRIVER=QEMU_GICV3;
# on another GIC BL31 hangs silently after its banner)
MACHINE_NEEDS = {"secure": "on", "virtualization": "on", "gic-version": "3"}
QEMU_TRUE = ("on", "yes", "true", "y")
# TF-A 2.12's plat/qemu (AArch64): PLATFORM_CORE_COUNT = 2 clusters of 16; more CPUs never come up
MAX_SMP = 32
# QEMU CPU models without AArch64 (or without EL2/EL3): TF-A's BL1 cannot run on them
CPU_32BIT = re.compile(r"arm\d.*|cortex-[mr]\d.*|cortex-a(5|7|8|9|15)|pxa\d.*|sa1\d+|ti925t|any")


def check_qemu(q: "_Reader", qemu: Qemu) -> None:
    """[qemu] as QEMU and the firmware read it: a virt machine with EL3, EL2 and GICv3, an
    AArch64 CPU, a CPU count TF-A brings up, some memory."""
    model, *opts = qemu.machine.split(",")
    if not re.fullmatch(r"virt(-\d+\.\d+)?", model):
        raise q.fail("machine", f"machine {model!r} is not QEMU's virt machine: TF-A's plat/qemu, the "
                     "memory map and the DT composer are virt's", 'use machine = "virt,secure=on,virtualization=on,'
                     'gic-version=3"')
    given = dict(o.partition("=")[::2] for o in opts)
    for key, want in MACHINE_NEEDS.items():
        value = given.get(key, "")
        ok = value.lower() in QEMU_TRUE if want == "on" else value == want
        if not ok:
            why = {"secure": "TF-A runs at EL3 (the SCMI server is part of it)",
                   "virtualization": "Xen runs at EL2",
                   "gic-version": "TF-A is built for GICv3 (QEMU_USE_GIC_DRIVER=QEMU_GICV3): BL31 hangs on another"}[key]
            raise q.fail("machine", f"{qemu.machine!r} " + (f"has {key}={value}" if value else f"lacks {key}={want}")
                         + f": {why}", f"write {key}={want} in machine (e.g. \"virt,secure=on,virtualization=on,"
                         "gic-version=3\")")
    cpu = qemu.cpu.split(",")[0]
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", cpu) or CPU_32BIT.fullmatch(cpu):
        raise q.fail("cpu", f"{qemu.cpu!r} is not an AArch64 CPU model with EL2 and EL3",
                     'use cpu = "max,pauth-impdef=on" (or e.g. "cortex-a57", "cortex-a72")')
    if not 1 <= qemu.smp <= MAX_SMP:
        why = "QEMU takes 0 as 'pick a count yourself'" if qemu.smp < 1 else \
            f"TF-A's plat/qemu brings up at most {MAX_SMP}"
        raise q.fail("smp", f"{qemu.smp} CPUs: {why}", f"give 1..{MAX_SMP} (qemu-virt uses 2)")
    if qemu.memory_mib <= 0:
        raise q.fail("memory_mib", f"{qemu.memory_mib} MiB is no memory", "give the RAM in MiB, e.g. 2048 "
                     "(and memory.ram_size to match)")


def load_board(name_or_path: str | Path) -> Board:
    """Load and validate a board by name (boards/<name>.toml) or by path."""
    if not str(name_or_path).strip():
        raise HarnessError("the board is an empty name", field="--board (env HARNESS_BOARD)",
                           fix="give a board name (" + ", ".join(sorted(p.stem for p in BOARDS_DIR.glob("*.toml")))
                               + ") or the path of a .toml board file")
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        path = BOARDS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in BOARDS_DIR.glob("*.toml")))
        raise HarnessError("no such board file", where=str(path),
                           fix=f"use one of: {known}, or give the path of a .toml board file")
    try:
        data = tomllib.loads(read_text_file(path, "board file"))
    except tomllib.TOMLDecodeError as e:
        raise HarnessError(f"is not valid TOML: {e}", where=str(path), fix="correct the TOML syntax") from None
    return parse_board(data, path)


def parse_board(data: dict, path: Path) -> Board:
    top = _Reader(path, data, "")
    sections = ("board", "qemu", "memory", "scmi")
    top.only(sections, "at the top level")
    for section in sections:
        if section not in data:
            raise top.fail(section, "missing section", f"add a [{section}] table (see boards/qemu-virt.toml)")
    b, q = top.sub("board", known=("name", "description")), top.sub("qemu", known=[f.name for f in fields(Qemu)])
    m = top.sub("memory", known=("ram_base", "ram_size"))
    s = top.sub("scmi", known=("shmem_base", "shmem_size", "allow_agent_id_0", "agents", "clocks", "resets",
                               "power_domains", "sensors", "devices"))

    qemu = Qemu(machine=q.get("machine", str), cpu=q.get("cpu", str),
                memory_mib=q.get("memory_mib", int), smp=q.get("smp", int, 1))
    check_qemu(q, qemu)
    ram_base, ram_size = m.get("ram_base", int), m.get("ram_size", int)
    if qemu.machine.split(",")[0] == "virt" and ram_base != VIRT_RAM_BASE:
        raise m.fail("ram_base", f"{ram_base:#x} is not where QEMU's virt machine puts RAM",
                     f"set ram_base = {VIRT_RAM_BASE:#x} (QEMU virt's RAM always starts there)")
    if ram_size != qemu.memory_mib << 20:
        raise m.fail("ram_size", f"{ram_size:#x} does not match qemu.memory_mib = {qemu.memory_mib}",
                     f"set ram_size = {qemu.memory_mib << 20:#x} or change qemu.memory_mib")

    shmem_base, shmem_size = s.get("shmem_base", int), s.get("shmem_size", int)
    if shmem_base % PAGE or shmem_size % PAGE or shmem_size <= 0:
        raise s.fail("shmem_base", f"carve-out {shmem_base:#x}+{shmem_size:#x} is not page aligned",
                     "use multiples of 0x1000 for shmem_base and shmem_size")
    if not (ram_base <= shmem_base and shmem_base + shmem_size <= ram_base + ram_size):
        raise s.fail("shmem_base", f"carve-out {shmem_base:#x}+{shmem_size:#x} is outside RAM "
                     f"{ram_base:#x}+{ram_size:#x}", "move the carve-out inside [memory]")
    for what, base, size in fixed_images(ram_base):
        if shmem_base < base + size and base < shmem_base + shmem_size:
            raise s.fail("shmem_base", f"carve-out {shmem_base:#x}+{shmem_size:#x} overlaps {what} at "
                         f"{base:#x}+{size:#x}", f"move it to {BL33_BASE + BL33_ROOM:#x} or above "
                         "(qemu-virt uses 0x47ff0000) and its agents' shmem pages with it")

    clocks = tuple(Clock(id=r.get("id", int), name=r.name(),
                         rates_hz=r.ints("rates_hz"), default_rate_hz=r.get("default_rate_hz", int),
                         enabled=r.get("enabled", bool, False)) for r in s.array("clocks", Clock))
    for i, c in enumerate(clocks):
        if not c.rates_hz or c.default_rate_hz not in c.rates_hz:
            raise HarnessError(f"default_rate_hz {c.default_rate_hz} is not one of rates_hz {list(c.rates_hz)}",
                               where=str(path), field=f"scmi.clocks[{i}].default_rate_hz",
                               fix="list the default rate in rates_hz")
    resets = tuple(Reset(id=r.get("id", int), name=r.name(), asserted=r.get("asserted", bool, False))
                   for r in s.array("resets", Reset))
    pds = tuple(PowerDomain(id=r.get("id", int), name=r.name(), on=r.get("on", bool, False))
                for r in s.array("power_domains", PowerDomain))
    sensors = tuple(Sensor(id=r.get("id", int), name=r.name(), unit=r.get("unit", str, "none"),
                           value=r.get("value", int, 0)) for r in s.array("sensors", Sensor))
    devices = tuple(Device(id=r.get("id", int), name=r.name(), node=r.get("node", str),
                           clocks=r.ints("clocks"), resets=r.ints("resets"),
                           power_domains=r.ints("power_domains"), sensors=r.ints("sensors"))
                    for r in s.array("devices", Device))
    for i, d in enumerate(devices):
        if not DEVICE_NODE.fullmatch(d.node) or d.node.split("@")[0] in NOT_DEVICES:
            raise HarnessError(f"device {d.name!r} stands on {d.node!r}, which is no device node: access-controllers "
                               f"there would give SCMI the root, RAM or Xen's own configuration",
                               where=str(path), field=f"scmi.devices[{i}].node",
                               fix="name the QEMU virt device node it stands for, e.g. /virtio_mmio@a000000")
    agents = tuple(Agent(id=r.get("id", int), name=r.name(), role=r.get("role", str),
                         func_id=r.get("func_id", int), shmem=r.get("shmem", int),
                         devices=r.strs("devices"))
                   for r in s.array("agents", Agent))

    for key, items in (("scmi.clocks", clocks), ("scmi.resets", resets), ("scmi.power_domains", pds),
                       ("scmi.sensors", sensors), ("scmi.devices", devices), ("scmi.agents", agents)):
        _unique(items, "id", path, key)
        _unique(items, "name", path, key)
        for i, item in enumerate(items):
            if not 0 <= item.id <= 254:
                raise HarnessError(f"id {item.id} is out of range", where=str(path), field=f"{key}[{i}].id",
                                   fix="use ids 0..254")
            if len(item.name) > 15 or not item.name.isascii():
                raise HarnessError(f"name {item.name!r} is longer than 15 ASCII characters",
                                   where=str(path), field=f"{key}[{i}].name",
                                   fix="SCMI names are 16 bytes with the NUL: shorten it")
    _unique(agents, "func_id", path, "scmi.agents")
    _unique(agents, "shmem", path, "scmi.agents")
    _unique(devices, "node", path, "scmi.devices",
            "one SCMI device per DT node: the DT composer would write one's properties over the other's")

    if not agents:
        raise s.fail("agents", "no agents", "add [[scmi.agents]] entries")
    device_names = {d.name for d in devices}
    for i, a in enumerate(agents):
        key = f"scmi.agents[{i}]"
        if a.role not in ROLES:
            raise HarnessError(f"role {a.role!r} is unknown", where=str(path), field=f"{key}.role",
                               fix=f"use one of {', '.join(ROLES)}")
        if a.shmem % PAGE:
            raise HarnessError(f"shmem {a.shmem:#x} is not page aligned", where=str(path),
                               field=f"{key}.shmem", fix="use a multiple of 0x1000 (Xen maps whole pages)")
        if not (shmem_base <= a.shmem and a.shmem + PAGE <= shmem_base + shmem_size):
            raise HarnessError(f"shmem {a.shmem:#x} is outside the carve-out {shmem_base:#x}+{shmem_size:#x}",
                               where=str(path), field=f"{key}.shmem",
                               fix="put every agent's page inside [scmi] shmem_base/shmem_size")
        if a.shmem == shmem_base + shmem_size - PAGE:       # Board.fault_page
            raise HarnessError(f"shmem {a.shmem:#x} is the carve-out's last page, where the SCMI server reads a "
                               f"boot's fault table (Board.fault_page)", where=str(path),
                               field=f"{key}.shmem", fix="use another page, or make the carve-out a page larger")
        if not (0x82000000 <= a.func_id <= 0x8200FFFF or 0xC2000000 <= a.func_id <= 0xC200FFFF):
            raise HarnessError(f"func_id {a.func_id:#x} is not a SiP fast call", where=str(path),
                               field=f"{key}.func_id", fix="use 0x82000000..0x8200ffff (SMC32 SiP)")
        if a.func_id & 0xFFFF >= 0xFF00:
            raise HarnessError(f"func_id {a.func_id:#x} is in SMCCC's reserved general-query range "
                               f"(0x..ff00-0x..ffff: call count, UID, revision)", where=str(path),
                               field=f"{key}.func_id", fix="use 0x82000000..0x8200feff")
        for d in a.devices:
            if d not in device_names:
                raise HarnessError(f"device {d!r} is not defined", where=str(path), field=f"{key}.devices",
                                   fix=f"name one of [[scmi.devices]]: {', '.join(sorted(device_names))}")
    allow_agent_id_0 = s.get("allow_agent_id_0", bool, False)
    for i, a in enumerate(agents):
        if a.id == 0 and not allow_agent_id_0:
            raise HarnessError("agent id 0 is the platform's (DEN0056 4.1.2: real agents number from 1)",
                               where=str(path), field=f"scmi.agents[{i}].id",
                               fix="number the agents from 1, or set [scmi] allow_agent_id_0 = true to "
                                   "reproduce firmware that gives id 0 to a real agent (a traced deviation)")
    if sum(a.role == "management" for a in agents) != 1:
        raise s.fail("agents", "needs exactly one agent with role = \"management\" (Xen's privileged agent)",
                     "mark Xen's agent with role = \"management\"")
    if sum(a.role == "dom0" for a in agents) > 1:
        raise s.fail("agents", "has more than one agent with role = \"dom0\"", "keep one dom0 agent")

    for i, d in enumerate(devices):
        for attr, pool in (("clocks", clocks), ("resets", resets), ("power_domains", pds), ("sensors", sensors)):
            ids = {r.id for r in pool}
            for rid in getattr(d, attr):
                if rid not in ids:
                    raise HarnessError(f"names unknown {attr[:-1]} id {rid}", where=str(path),
                                       field=f"scmi.devices[{i}].{attr}",
                                       fix=f"define it in [[scmi.{attr}]] or remove it")

    board = Board(name=b.name(), description=b.get("description", str, ""), path=path,
                  qemu=qemu, ram_base=ram_base, ram_size=ram_size, shmem_base=shmem_base,
                  shmem_size=shmem_size, agents=agents, clocks=clocks, resets=resets,
                  power_domains=pds, sensors=sensors, devices=devices, allow_agent_id_0=allow_agent_id_0,
                  raw=data)
    check_board(board)     # what the firmware's tables need: said now, not in TF-A's build
    return board


# Board sensor unit -> (SCMI sensor type, unit exponent), DEN0056 table 4.7.
SENSOR_UNITS = {
    "none": (0, 0),
    "celsius": (2, 0), "millicelsius": (2, -3),
    "volts": (5, 0), "millivolts": (5, -3),
    "amps": (6, 0), "milliamps": (6, -3),
    "watts": (7, 0), "milliwatts": (7, -3),
    "rpm": (18, 0),
    "percent": (15, 0),
}


def _fail(board: Board, field: str, problem: str, fix: str) -> HarnessError:
    return HarnessError(problem, where=str(board.path), field=field, fix=fix)


def check_board(board: Board) -> None:
    """What our SCMI server's tables (harness/images/scmi/tables.py) need beyond the checks
    above, as HarnessErrors: said when the board loads, not in TF-A's build."""
    for i, a in enumerate(board.agents):
        if a.id == 0 and not board.allow_agent_id_0:
            raise _fail(board, f"scmi.agents[{i}].id", "agent id 0 is the platform's (DEN0056 4.1.2)",
                        "number the agents from 1, or opt in with [scmi] allow_agent_id_0 = true")
    # SCMI enumerates every resource kind as 0..N-1: ids must be exactly that
    for key, items in (("scmi.clocks", board.clocks), ("scmi.resets", board.resets),
                       ("scmi.power_domains", board.power_domains), ("scmi.sensors", board.sensors)):
        ids = sorted(r.id for r in items)
        if ids != list(range(len(ids))):
            raise _fail(board, f"{key}[].id", f"ids {ids} are not 0..{len(ids) - 1}",
                        "number each resource kind from 0 without gaps (SCMI enumerates them so)")
    for i, c in enumerate(board.clocks):
        if len(set(c.rates_hz)) > 255:
            raise _fail(board, f"scmi.clocks[{i}].rates_hz", "lists more than 255 rates",
                        "keep at most 255 discrete rates per clock")
        if len(set(c.rates_hz)) != len(c.rates_hz):
            raise _fail(board, f"scmi.clocks[{i}].rates_hz", f"lists a rate twice: {list(c.rates_hz)}",
                        "list each discrete rate once (CLOCK_DESCRIBE_RATES would return it twice)")
        if any(r <= 0 or r >= 1 << 64 for r in c.rates_hz):
            raise _fail(board, f"scmi.clocks[{i}].rates_hz", "holds a rate <= 0 or >= 2^64 Hz",
                        "use positive rates in Hz")
    for i, s in enumerate(board.sensors):
        if s.unit not in SENSOR_UNITS:
            raise _fail(board, f"scmi.sensors[{i}].unit", f"unit {s.unit!r} is unknown",
                        f"use one of: {', '.join(sorted(SENSOR_UNITS))}")
        if not -(1 << 63) <= s.value < 1 << 63:
            raise _fail(board, f"scmi.sensors[{i}].value", "does not fit in 64 bits",
                        "use a smaller reading")
