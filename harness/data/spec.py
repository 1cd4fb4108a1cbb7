"""What to boot, as data: a BootSpec (dom0, Xen's options, the dom0less and xl guests,
what the host DT gets) and its Guests. Scenario files (harness/plan/scenario.py) load into
these; the boot plan (harness/plan/plan.py) turns one into everything QEMU needs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FAULT_KINDS = ("status", "busy", "agent-id", "length", "smc")   # images/tf-a/scmi-server/scmi_fault.c


@dataclass(frozen=True)
class Fault:
    """A misbehaviour of our SCMI server for one boot (no rebuild: a table QEMU loads):
    answer `message` from `agent` with `status` (kind "status"), never answer it ("busy"),
    answer DISCOVER_AGENT with id `value` ("agent-id"), a reply `value` bytes off
    ("length"), or refuse the doorbell SMC itself with x0 = `value` ("smc": SMCCC's
    NOT_SUPPORTED -1, INVALID_PARAMETER -3; the message is not taken); `times` messages (0: all)."""
    agent: str = "any"                # the caller: a board agent name, or "any"
    target: str = "any"               # the agent a message is about (its first payload word), or "any"
    message: str = "any"              # a Base message name (protocols.BASE_MESSAGES), or "any"
    kind: str = "status"
    status: str = "GENERIC_ERROR"     # kind "status": the SCMI status answered
    value: int = 0                    # kind "agent-id": the id; "length": bytes off; "smc": x0
    times: int = 0


DOM0_MEM_MIB = 768     # dom0_mem: the rest of the board's RAM is the guests' (scenario.py checks it)

# A guest's name: what xl takes as a domain name, a dom0less /chosen/<name> node and a file name
# in dom0 all accept. A letter first: xl reads an all-digit name as a domid, a leading '-' as an
# option; at most 31 characters, a DT node name's limit; nothing a shell would interpret (the
# commands quote it anyway).
GUEST_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,30}")


@dataclass(frozen=True)
class Guest:
    """A domU of a scenario, dom0less (built by Xen at boot) or xl-created (from dom0)."""
    name: str
    agent: str | None = None          # board agent Xen gives it (xen,sci_agent_id / arm_sci); None: no SCMI
    dt_agent: str | None = None       # the agent whose channel its DT describes (default: agent)
    image: str = "linux"              # linux | scmi-probe
    passthrough: tuple[str, ...] = () # SCMI devices (board names) passed through (xen,path / dtdev)
    uses: tuple[str, ...] = ()        # SCMI devices its DT has a consumer for (power-domains)
    bootargs: str = ""                # kernel command line
    ops: tuple[str, ...] = ()         # scmi-probe: its operations, board names in braces
                                      #   ("setperm:{guest4}:{guest_dev}:1" -> agent/device ids)
    memory_mib: int | None = None     # default: 256 for Linux, 16 for scmi-probe (it needs 4)

    @property
    def memory(self) -> int:
        return self.memory_mib or (16 if self.image == "scmi-probe" else 256)


@dataclass(frozen=True)
class BootSpec:
    """What to boot. xen=None boots Linux directly as BL33 (no hypervisor)."""
    name: str
    xen: str | None = "multiagent"       # hypervisor variant (images/xen/variants.toml); a scenario
                                         # gets it, and the profile, from the SUT
    profile: str = "v5"                  # SCMI binding profile (harness/data/profiles.py)
    dom0_scmi: bool = True               # give dom0 (or native Linux) its SCMI agent
    firmware_scmi: bool | None = None    # compose /firmware/scmi (dom0's channel) in the host DT;
                                         # None: when dom0 gets SCMI (v10 drops it from dom0's DT
                                         # itself without xen,dom0-sci-agent-id: True shows that)
    access_controller: str | None = None # node access-controllers point at (None: Xen's management
                                         # node; "/firmware/scmi": what v10's docs show)
    secondary_cells: int = 3             # #scmi-secondary-agents-cells (3: ids given; 2: discovered)
    shmem_size: int = 0x1000             # size of the shmem nodes in Xen's SCMI config (bad-config: 0x800)
    secondary_ids: tuple[str, ...] = ()  # "CHANNEL=AGENT" (board agent names): the scmi-secondary-agents
                                         # entry of CHANNEL's channel gives AGENT's id (bad-config: an id
                                         # the firmware gives another channel; needs secondary_cells = 3)
    xen_args: tuple[str, ...] = ()
    kernel_args: tuple[str, ...] = ()
    dom0less: tuple[Guest, ...] = ()     # domUs Xen builds at boot
    xl: tuple[Guest, ...] = ()           # domUs a test creates from dom0 (System.xl_create)
    passthrough: tuple[str, ...] = ()    # more SCMI devices (board names) kept from dom0 for domUs
    dt_breaks: tuple[str, ...] = ()      # dt.DT_BREAKS applied to Xen's SCMI config (bad-config)
    faults: tuple[Fault, ...] = ()       # our SCMI server's misbehaviour on purpose (plan.fault_table)
    network: bool = True                 # a NIC on QEMU's user network and SSH into dom0 (System.ssh);
                                         # on by default: it adds nothing measurable to a boot

    def describe(self) -> str:
        return f"{self.name}: xen={self.xen or 'none'} profile={self.profile}"
