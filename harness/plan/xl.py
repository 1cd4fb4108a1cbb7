"""xl domain configurations for guests with an SCMI agent, generated from the board."""
from __future__ import annotations

from ..data.board import Agent
from .dt import GUEST_SHMEM_IPA
from ..errors import HarnessError
from ..data.profiles import Profile, profile as get_profile
from ..images.build.rootfs import GUEST_DIR, GUEST_KERNEL   # the dom0 rootfs's layout


def xl_string(value: str) -> str:
    """value as an xl.cfg string: libxlu's dequoting (xlu__cfgl_dequote) reads \\" and \\\\,
    so a guest's bootargs may hold quotes and backslashes."""
    if "\n" in value:
        raise HarnessError(f"{value!r} holds a newline, which an xl.cfg string cannot", field="xl guest value",
                           fix="put the value on one line")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def xl_config(name: str, agent: Agent | None, *, profile: Profile | str = "v5", memory_mib: int = 256, vcpus: int = 1,
              dtdev: list[str] = (), extra: str = "console=hvc0 panic=-1", shmem_ipa: int = GUEST_SHMEM_IPA,
              kernel: str = GUEST_KERNEL, ramdisk: str = f"{GUEST_DIR}/domu.cpio",
              on_reboot: str = "restart", iomem_pages: list[int] = (), device_tree: str | None = None) -> str:
    """An xl.cfg: arm_sci of the profile's type (with the agent's id for a multi-agent
    profile), iomem mapping its shmem page at shmem_ipa, and the partial DT (device_tree)
    that describes that page and the SCMI node."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    lines = [f"name = {xl_string(name)}", f"kernel = {xl_string(kernel)}", f"ramdisk = {xl_string(ramdisk)}",
             f"memory = {memory_mib}", f"vcpus = {vcpus}", f"extra = {xl_string(extra)}",
             f"on_reboot = {xl_string(on_reboot)}",
             f"device_tree = {xl_string(device_tree or f'{GUEST_DIR}/{name}.dtb')}"]
    iomem = [f'"{p >> 12:x},1@{p >> 12:x}"' for p in iomem_pages]     # passed-through devices, 1:1
    if agent is not None:
        if prof.sci_type is None:
            raise HarnessError(f"profile {prof.name!r} gives no domU SCMI", field=f"xl guest {name}.agent",
                               fix="use a SUT whose profile has guest-scmi, or drop the guest's agent")
        sci = f"type={prof.sci_type}" + (f",agent_id={agent.id}" if prof.multiagent else "")
        lines.append(f'arm_sci = "{sci}"')
        iomem.insert(0, f'"{agent.shmem >> 12:x},1@{shmem_ipa >> 12:x}"')
    if iomem:
        lines.append(f"iomem = [ {', '.join(iomem)} ]")
    if dtdev:
        lines.append("dtdev = [ " + ", ".join(xl_string(d) for d in dtdev) + " ]")
    return "\n".join(lines) + "\n"
