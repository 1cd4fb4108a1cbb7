"""Binding profiles: what one revision of Xen's SCMI support *expects* (its DT binding, its
options, the agent ids it takes, the reset flags it sends). The composer (dt.py), the boot
(system.py), xl configs (xl.py), the checks (checks.py) and the tests read these fields;
none of them compares profile names. What a revision *did* on real boots (its crashes,
refusals, errnos) is data: its record, records/<name>.toml (records.py), written by
`pytest --record`. A new revision with a known binding is one SUT line
(images/xen/suts.toml, `record = "v12"`); one with a new binding is one Profile here too.

Sources: the RFC v5 series (../shared/sut, seed 001), v10 and v11 (../shared/sut, seeds
000/002, ../shared/sut/v10-binding.md), upstream Xen 4.20 (single agent, hardware domain)
and Xen 4.22.0 (single-agent passthrough to one domain, option scmi-smc-passthrough).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import HarnessError

# What a profile (so a SUT) can do; scenarios list the ones they need (`needs`).
CAPABILITIES = {
    "dom0-scmi": "dom0 talks SCMI through Xen",
    "multiagent": "one SCMI agent per domain (the multi-agent driver)",
    "guest-scmi": "a domU (xl or dom0less) gets SCMI",
    "single-passthrough": "SCMI passed through to exactly one domU, dom0 loses it",
    "reset-revokes-permissions": "RESET_AGENT_CONFIGURATION on destroy also revokes device permissions",
    "dom0-agent-in-dt": "dom0's agent is a DT property of the xen,sci node; without it Xen strips SCMI from dom0",
}

# Misconfigurations whose outcome depends on the revision: a bad-config scenario names one
# ([expect] misconfig); what each revision did on it is its record (records/<name>.toml).
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
    # strings of the toolstack's public header (tools/include/libxl.h) that show this revision
    tools_markers: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

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


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile(
        "single", "upstream Xen 4.20: SMCs of the hardware domain forwarded to one agent (/firmware/scmi)",
        kconfig="CONFIG_SCMI_SMC", variant="upstream", capabilities=frozenset({"dom0-scmi"}),
        source_markers=()),
    Profile(
        "scmi-smc-passthrough", "Xen 4.21+: single-agent SCMI passed through to one domU "
        "(option scmi-smc-passthrough, xen,sci_type = \"scmi_smc\", xl arm_sci = \"type=scmi_smc\")",
        kconfig="CONFIG_SCMI_SMC", variant="upstream",
        capabilities=frozenset({"guest-scmi", "single-passthrough"}),
        xen_options=("scmi-smc-passthrough",), sci_type="scmi_smc",
        # read from Xen 4.22.0's xen/arch/arm/firmware/scmi-smc.c: boolean_param("scmi-smc-passthrough", ...)
        source_markers=('"scmi-smc-passthrough"',)),
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
        reset_flags=0x0, source_markers=('"dom0_scmi_agent_id"', '"/chosen/xen,config"')),

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
        notes=("v10's docs show access-controllers = <&scmi N> on /firmware/scmi; its code acts only on "
               "phandles to the management node (v10-binding.md)",)),
)}
# v11 (2026-04): v10's binding and hypervisor code; libxl itself refuses agent_id >= 255
# (xl refuses it first, with v10's line)
PROFILES["v11"] = replace(
    PROFILES["v10"], name="v11",
    description="v11 of the multi-agent series (2026-04, the current revision, Xen 4.22-dev): v10's binding "
                "and hypervisor code; libxl validates the agent id itself",
    tools_markers=("LIBXL_HAVE_SCMI_SMC_MULTIAGENT",))
ALIASES = {"v9": "v10"}     # v9 has v10's binding (seed 000 documents both)


def profile(name: str, where: str = "profile") -> Profile:
    p = PROFILES.get(ALIASES.get(name, name))
    if p is None:
        raise HarnessError(f"unknown binding profile {name!r}", field=where,
                           fix="use one of " + ", ".join(PROFILES))
    return p
