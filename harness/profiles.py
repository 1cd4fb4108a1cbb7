"""Binding profiles: everything one revision of Xen's SCMI support expects and does, in
one record. The composer (dt.py), the boot (system.py), xl configs (xl.py), the checks
(checks.py) and the tests read these fields; none of them compares profile names.
A new revision of the series is one new record here plus one SUT line
(images/xen/suts.toml).

Sources: the RFC v5 series (../shared/sut, seed 001), v10 (seeds 000/002,
../shared/sut/v10-binding.md), upstream Xen 4.20 (single agent, hardware domain) and
4.21+ (single-agent passthrough to one domain: v5's patches 0001-0003, upstream since 4.21).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import HarnessError

# What a profile (so a SUT) can do; scenarios list the ones they need (`needs`).
CAPABILITIES = {
    "dom0-scmi": "dom0 talks SCMI through Xen",
    "multiagent": "one SCMI agent per domain (the multi-agent driver)",
    "guest-scmi": "a domU (xl or dom0less) gets SCMI",
    "single-passthrough": "SCMI passed through to exactly one domU, dom0 loses it",
    "reset-revokes-permissions": "RESET_AGENT_CONFIGURATION on destroy also revokes device permissions",
    "dom0-agent-in-dt": "dom0's agent is a DT property of the xen,sci node; without it Xen strips SCMI from dom0",
}

# libxl (libxl__domain_config_setdefault) refuses dtdev when Xen reports no IOMMU, before
# any domctl, and xl create exits 6: seen on v10 (Xen 4.22-dev, libxl_create.c:1162) and on
# v5 (Xen 4.20, line 1204) under QEMU virt (no SMMU)
XL_NO_PASSTHROUGH = "libxl: error: libxl_create.c:{line}:libxl__domain_config_setdefault: " \
                    "passthrough not supported on this platform"
XL_NO_PASSTHROUGH_RC = 6

# Misconfigurations whose outcome depends on the revision: a bad-config scenario names one
# ([expect] misconfig) and each profile records the crash Xen is known to take on it.
MISCONFIGS = {
    "no-secondary-agents": "Xen's SCMI config without scmi-secondary-agents",
    "secondary-agents-short": "scmi-secondary-agents not a whole number of entries",
    "dangling-shmem-phandle": "a secondary agent's shmem phandle that points at no node",
    "no-smc-id": "the management channel's node without arm,smc-id",
    "mgmt-shmem-size": "the management channel's shmem not a whole page",
    "mgmt-dangling-shmem": "the management channel's shmem phandle that points at no node",
    "shmem-no-reg": "a secondary agent's shmem node without reg",
    "duplicate-agent-id": "two channels of Xen's SCMI config carry one agent id "
                          "(a scmi-secondary-agents id that the firmware gives another channel)",
}


@dataclass(frozen=True)
class AssignOutcome:
    """What the DT assign domctl (XEN_DOMCTL_assign_device, called from dom0 by our tool
    xen-assign-dt through libxenctrl) does on a host without an IOMMU, for a device whose
    host node has access-controllers pointing at Xen's management agent: observed per
    revision, asserted exactly (tests/boot/test_assign_domctl.py)."""
    errno: int              # the domctl's errno (0: success)
    grants: bool            # SET_DEVICE_PERMISSIONS flags=1 (SUCCESS) sent for the domain's agent first
    revoked_on_destroy: bool  # destroying the domain takes the grant back (reset flags bit 0)
    missing_node_errno: int = 3   # a DT path that does not exist (ESRCH), nothing sent
    # the firmware answers the grant DENIED (fault scenario data): the domctl's errno and the
    # regex of Xen's line (None: not observed on this revision yet)
    denied: tuple[int, str] | None = None
    defect: str = ""        # what is wrong with it, worth reporting upstream ("" = nothing)


@dataclass(frozen=True)
class FaultOutcome:
    """What Xen was seen to do when our SCMI server misbehaved as a fault scenario
    (scenarios/fault-*.toml) asks: asserted exactly by tests/boot/test_faults.py."""
    crash: str | None = None          # the boot stops with this (regex over Xen's crash report)
    xen_lines: tuple[str, ...] = ()   # regexes Xen's console must show ({dom0_func_id} is dom0's SMC id)
    dom0_scmi: bool = True            # dom0's SCMI still works (its SMCs reach the server)
    facts: tuple[tuple[str, object], ...] = ()   # scenario-specific observations (test_faults.py reads them)
    defect: str = ""                  # what is wrong with it, worth reporting upstream

    def fact(self, key: str, default=None):
        return dict(self.facts).get(key, default)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    kconfig: str                      # the Kconfig option that proves the driver is built in
    variant: str                      # hypervisor variant that enables it (images/xen/variants.toml)
    capabilities: frozenset[str]
    # Where Xen's multi-agent configuration node goes, and how Xen finds it
    config_node: str | None = None    # None: no config node (single agent)
    config_compatible: str | None = None   # found by compatible (v10) rather than by path (v5)
    # dom0's agent: a Xen command-line option (v5) or a property of the config node (v10)
    dom0_agent_option: str | None = None
    dom0_agent_property: str | None = None
    # domU SCMI: the xen,sci_type value (dom0less) = the xl arm_sci type, and the agent-id property
    sci_type: str | None = None
    dom0less_agent_property: str | None = None
    xen_options: tuple[str, ...] = () # Xen command-line options the profile always needs
    agent_ids: range = range(0)       # agent ids Xen and xl accept
    xl_bad_agent_id: str = ""         # xl's refusal of an id outside agent_ids ({id})
    channel_refusal: str = ""         # Xen's log line when an agent id has no channel / is taken ({id}, {err})
    reset_flags: int | None = None    # RESET_AGENT_CONFIGURATION flags Xen sends on destroy
    # C string literals in the Xen tree (xen/arch/arm/**.c) that show it parses this binding
    source_markers: tuple[str, ...] = ()
    # (misconfiguration of MISCONFIGS, regex of the crash Xen is known to take on it); a
    # misconfiguration not listed must be refused without a crash, dom0 booting on
    crashes: tuple[tuple[str, str], ...] = ()
    # (misconfiguration, regexes Xen's console (UART0) must show): how the revision refuses it
    # without crashing; {id} is the agent id given twice, {dom0_func_id} dom0's SMC id (hex)
    refusals: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # `xl create` of a guest with dtdev on a host without an IOMMU: (xl's line, exit status);
    # libxl refuses before Xen's SCI assign path is reached (None: not recorded)
    xl_dtdev_refusal: tuple[str, int] | None = None
    assign_domctl: AssignOutcome | None = None
    # fault scenario -> what Xen does when the firmware misbehaves so (None: not observed yet)
    fault_outcomes: tuple[tuple[str, FaultOutcome], ...] = ()
    notes: tuple[str, ...] = field(default=())

    def crash_on(self, misconfig: str) -> str | None:
        """The regex of the crash Xen takes on misconfig, one of MISCONFIGS (scenario files
        are checked against them when loaded); None: Xen must not crash."""
        return dict(self.crashes).get(misconfig)

    def fault_outcome(self, scenario: str) -> FaultOutcome | None:
        return dict(self.fault_outcomes).get(scenario)

    def refusal_of(self, misconfig: str) -> tuple[str, ...]:
        """The console regexes (templates) of the revision's refusal of misconfig; ()
        when the profile records none."""
        return dict(self.refusals).get(misconfig, ())

    def can(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise HarnessError(f"unknown capability {capability!r}", field="needs",
                               fix="use one of " + ", ".join(CAPABILITIES))
        return capability in self.capabilities

    @property
    def multiagent(self) -> bool:
        return self.can("multiagent")

    def bad_agent_ids(self) -> list[int]:
        """Ids just outside the valid range: xl must refuse them (the u8 edge and beyond)."""
        lo, hi = self.agent_ids.start, self.agent_ids.stop
        return sorted({hi, 256} | ({lo - 1} if lo > 0 else set()))


V5_NO_SCMI_FOR_DOM0 = r"\(XEN\) d0v\d+ Unhandled SMC/HVC: {dom0_func_id}"   # the driver stayed unregistered

# Observed on v5 under QEMU here (tests/boot/test_faults.py asserts them)
V5_FAULTS = (
    # the dom0less domain's grant refused: Xen cannot build the domain and panics
    ("fault-setperm-denied", FaultOutcome(
        crash=r"(?s)scmi: could not assign dev for d1 agent:3 dev_id:2 \(-13\).*Failed to assign device to d1"
              r".*Panic on CPU",
        defect="v5: a firmware that refuses SET_DEVICE_PERMISSIONS for a dom0less domain panics Xen at boot "
               "(dom0less construction has no way to fail softly)")),
    # dom0's own grant refused while Xen builds dom0: dom0's DT cannot be made, Xen panics
    # ("Could not set up DOM0 guest OS (rc = -22)")
    ("fault-dom0-grant-denied", FaultOutcome(
        crash=r"(?s)scmi: could not assign dev for d0 agent:\d+ dev_id:\d+ \(-13\)Device tree generation failed "
              r"\(-13\).*Panic on CPU",
        defect="v5: a firmware that refuses one of dom0's SET_DEVICE_PERMISSIONS panics Xen at boot")),
    # a failed reset fails the domctl: xl destroy fails (EIO), the domain stays a zombie holding its
    # agent; a second destroy (the reset now succeeds) frees both
    ("fault-reset-fails", FaultOutcome(
        xen_lines=(r"\(XEN\) scmi: get smc response agent_id = 1 msg_id = b proto = 10 res=-5",),
        facts=(("destroy_fails", "xc_domain_destroy failed: Input/output error"),
               ("agent_taken", "scmi: Failed to acquire SCMI channel for agent_id {agent}: -17"),
               ("second_destroy_frees", True)),
        defect="v5: when RESET_AGENT_CONFIGURATION fails, the domain cannot be destroyed (EIO) and keeps its "
               "agent until destroyed again")),
    # the reset's doorbell SMC refused with NOT_SUPPORTED (x0 = -1): Xen takes it for "no reset
    # support" (-EOPNOTSUPP, scmi_relinquish_resources returns 0): the domain is freed without the
    # reset, its agent goes to the next domain as it was left; the message Xen posted stays on the
    # management channel, so every later management message fails -EBUSY
    ("fault-reset-smc-unsupported", FaultOutcome(
        xen_lines=(r"\(XEN\) scmi: get smc response agent_id = 1 msg_id = b proto = 10 res=-95",),
        facts=(("reset_not_taken", True), ("agent_free", True),
               ("second_destroy_fails", "xc_domain_destroy failed: Device or resource busy")),
        defect="v5: a refused reset SMC (NOT_SUPPORTED) counts as success: the agent is handed to the next "
               "domain un-reset, and the management channel stays busy, so every later reset fails (EBUSY) "
               "and those domains cannot be destroyed")),
    # refused with INVALID_PARAMETER (x0 = -3): -EINVAL fails the destroy; the channel stays busy,
    # so a second destroy fails -EBUSY: the domain and its agent are lost until the host reboots
    ("fault-reset-smc-invalid", FaultOutcome(
        xen_lines=(r"\(XEN\) scmi: get smc response agent_id = 1 msg_id = b proto = 10 res=-22",),
        facts=(("reset_not_taken", True), ("destroy_fails", "xc_domain_destroy failed: Invalid argument"),
               ("agent_taken", "scmi: Failed to acquire SCMI channel for agent_id {agent}: -17"),
               ("second_destroy_fails", "xc_domain_destroy failed: Device or resource busy")),
        defect="v5: after a reset SMC refused with INVALID_PARAMETER the management channel stays busy: the "
               "domain can never be destroyed and its agent never reused")),
    # a secondary channel that cannot say who it is: the probe fails and the driver stays
    # unregistered, without an error line (only debug lines); dom0 boots without SCMI
    ("fault-discover-fails", FaultOutcome(
        xen_lines=(r"\(XEN\) scmi: get smc response agent_id = -1 msg_id = 7 proto = 10 res=-5",
                   r"\(XEN\) d0v\d+ Unhandled SMC/HVC: {dom0_func_id}"),
        dom0_scmi=False,
        defect="v5: a DISCOVER_AGENT failure disables SCMI for every domain without an error message")),
    # a channel that claims another's id: accepted without a word, two channels carry id 5
    ("fault-discover-duplicate", FaultOutcome(
        xen_lines=(r"\(XEN\) scmi: Agent 5 SMC 82000002 addr 47ff0000", r"\(XEN\) scmi: Agent 5 SMC 82000005 addr 47ff3000"),
        defect="v5: two channels with one discovered agent id are accepted silently (the same duplicate given "
               "in the DT takes a Data Abort in scmi_probe)")),
    # the management channel's PROTOCOL_ATTRIBUTES refused: the probe unmaps the channel and frees
    # the list (its one error label), SCMI disabled for every domain without an error line
    ("fault-mgmt-attributes-fails", FaultOutcome(
        xen_lines=(r"\(XEN\) scmi: get smc response agent_id = 1 msg_id = 1 proto = 10 res=-5",
                   r"\(XEN\) d0v\d+ Unhandled SMC/HVC: {dom0_func_id}"),
        dom0_scmi=False,
        defect="v5: a failing BASE_PROTOCOL_ATTRIBUTES disables SCMI for every domain without an error message")),
    # the management channel stays busy: the probe's first message fails (-EBUSY), the driver stays
    # unregistered; Xen does not hang; dom0 boots without SCMI
    ("fault-mgmt-busy", FaultOutcome(
        xen_lines=(r"\(XEN\) scmi: get smc response agent_id = -1 msg_id = 7 proto = 10 res=-16",
                   r"\(XEN\) d0v\d+ Unhandled SMC/HVC: {dom0_func_id}"),
        dom0_scmi=False)),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile(
        "single", "upstream Xen 4.20: SMCs of the hardware domain forwarded to one agent (/firmware/scmi)",
        kconfig="CONFIG_SCMI_SMC", variant="upstream", capabilities=frozenset({"dom0-scmi"}),
        source_markers=()),
    Profile(
        "scmi-smc-passthrough", "Xen 4.21+: single-agent SCMI passed through to one domU "
        "(scmi_smc_passthrough, xen,sci_type = \"scmi_smc\", xl arm_sci = \"type=scmi_smc\")",
        kconfig="CONFIG_SCMI_SMC", variant="upstream",
        capabilities=frozenset({"guest-scmi", "single-passthrough"}),
        xen_options=("scmi_smc_passthrough",), sci_type="scmi_smc",
        source_markers=('"scmi_smc_passthrough"',)),
    Profile(
        "v5", "RFC v5 of the multi-agent series (2025-07): /chosen/xen,config, dom0's agent on Xen's "
        "command line, xen,sci_agent_id, ids 1..255, reset flags 0",
        kconfig="CONFIG_SCMI_SMC_MA", variant="multiagent",
        capabilities=frozenset({"dom0-scmi", "multiagent", "guest-scmi"}),
        config_node="/chosen/xen,config", dom0_agent_option="dom0_scmi_agent_id",
        sci_type="scmi_smc_multiagent", dom0less_agent_property="xen,sci_agent_id",
        agent_ids=range(1, 256),
        xl_bad_agent_id="An invalid ARM_SCI agent_id specified ({id}). Valid range [1..255]",
        channel_refusal="scmi: Failed to acquire SCMI channel for agent_id {id}: {err}",
        reset_flags=0x0, source_markers=('"dom0_scmi_agent_id"', '"/chosen/xen,config"'),
        # smc_create_channel() returns ERR_PTR(EEXIST) (a positive errno): IS_ERR() misses it
        # and collect_agents() dereferences it, inside scmi_probe()
        crashes=(("duplicate-agent-id", r"(?s)Unexpected Trap: Data Abort.*PC: +\S+ \S*#scmi_probe\+"),),
        # seen here: each refused with one line, the driver stays unregistered, dom0 boots without SCMI
        refusals=(("no-secondary-agents", (r"\(XEN\) scmi: No scmi-secondary-agents property found, no agents to collect\.",
                                           V5_NO_SCMI_FOR_DOM0)),
                  ("secondary-agents-short", (r"\(XEN\) scmi: Invalid length of scmi-secondary-agents property: "
                                              r"\d+ for 3 cells per entry", V5_NO_SCMI_FOR_DOM0)),
                  # the channels made before the bad entry are not freed on this error path
                  ("dangling-shmem-phandle", (r"\(XEN\) scmi: Could not find shmem node for agent \d+",
                                              V5_NO_SCMI_FOR_DOM0)),
                  ("no-smc-id", (r"\(XEN\) scmi: unable to read smc-id from DT", V5_NO_SCMI_FOR_DOM0)),
                  ("mgmt-shmem-size", (r"\(XEN\) scmi: shmem memory is not aligned", V5_NO_SCMI_FOR_DOM0)),
                  ("shmem-no-reg", (r"\(XEN\) scmi: Could not read shmem address for agent \d+: -22",
                                    V5_NO_SCMI_FOR_DOM0)),
                  # a defect: PTR_ERR(NULL) is 0, so scmi_dt_read_hyp_channel_addr() "succeeds" with the
                  # address and size never set; the probe stops only because the stack's garbage size
                  # is not page-aligned (seen on every boot of this build)
                  ("mgmt-dangling-shmem", (r"\(XEN\) scmi: Device tree error, can't parse reserved memory 0",
                                           r"\(XEN\) scmi: shmem memory is not aligned", V5_NO_SCMI_FOR_DOM0))),
        xl_dtdev_refusal=(XL_NO_PASSTHROUGH.format(line=1204), XL_NO_PASSTHROUGH_RC),
        # 0005 makes the IOMMU step -ENXIO for a domain without an IOMMU, 0006 then runs SCI:
        # the grant is made and the domctl succeeds; reset flags 0 never revokes it
        assign_domctl=AssignOutcome(errno=0, grants=True, revoked_on_destroy=False,
                                    # the line has no '\n' (scmi_dt_assign_device): what dom0 prints next joins it
                                    denied=(13, r"\(XEN\) scmi: could not assign dev for d\d+ agent:\d+ dev_id:\d+ \(-13\)")),
        fault_outcomes=V5_FAULTS),
    Profile(
        "v10", "v10 of the multi-agent series (2026-02, Xen 4.22-dev): a compatible = \"xen,sci\" node "
        "(/chosen/xen/xen_scmi_config), xen,dom0-sci-agent-id, xen,sci-agent-id, ids 0..254, reset flags 1, "
        "xl dtdev without an IOMMU",
        kconfig="CONFIG_SCMI_SMC_MA", variant="multiagent",
        capabilities=frozenset({"dom0-scmi", "multiagent", "guest-scmi", "reset-revokes-permissions",
                                "dom0-agent-in-dt"}),
        config_node="/chosen/xen/xen_scmi_config", config_compatible="xen,sci",
        dom0_agent_property="xen,dom0-sci-agent-id",
        sci_type="scmi_smc_multiagent", dom0less_agent_property="xen,sci-agent-id",
        agent_ids=range(0, 255),
        xl_bad_agent_id="An invalid ARM_SCI agent_id specified ({id}). Valid range [0..254]",
        channel_refusal="scmi: Failed to acquire SCMI channel for agent_id {id}: {err}",
        reset_flags=0x1, source_markers=('"xen,dom0-sci-agent-id"', '"xen,sci"'),
        # observed on a v10 tree (v10-binding.md): the driver stays unregistered, dom0 keeps
        # /firmware/scmi and its SMCs are unhandled
        refusals=(("duplicate-agent-id", (r"\(XEN\) scmi: Could not create channel for agent {id}: -17",
                                          r"\(XEN\) d0v\d+ Unhandled SMC/HVC: {dom0_func_id}")),
                  # v10-binding.md: the same text, now at ERR level
                  ("no-secondary-agents", (r"\(XEN\) scmi: No scmi-secondary-agents property found, no agents to "
                                           r"collect\.",)),
                  ("mgmt-shmem-size", (r"\(XEN\) scmi: shmem memory is not aligned",))),
        xl_dtdev_refusal=(XL_NO_PASSTHROUGH.format(line=1162), XL_NO_PASSTHROUGH_RC),
        # SCI first (SET_DEVICE_PERMISSIONS flags=1 SUCCESS), then iommu_do_domctl() refuses the
        # domain without an IOMMU (v5's 0005 made that -ENXIO; v10 dropped it)
        assign_domctl=AssignOutcome(
            errno=95, grants=True, revoked_on_destroy=True,
            defect="v10: XEN_DOMCTL_assign_device fails with EOPNOTSUPP after SCI granted the device, and the "
                   "grant is not rolled back: the domain's agent keeps it until the domain is destroyed"),
        notes=("v10's docs show access-controllers = <&scmi N> on /firmware/scmi; its code acts only on "
               "phandles to the management node (v10-binding.md)",)),
)}
ALIASES = {"v9": "v10"}     # v9 has v10's binding (seed 000 documents both)


def profile(name: str, where: str = "profile") -> Profile:
    p = PROFILES.get(ALIASES.get(name, name))
    if p is None:
        raise HarnessError(f"unknown binding profile {name!r}", field=where,
                           fix="use one of " + ", ".join(PROFILES))
    return p
