// SPDX-License-Identifier: BSD-3-Clause
/*
 * TF-A glue: the SiP fast-SMC service that rings the SCMI server, and the
 * port functions of scmi_port.h. This is the only file that sees TF-A.
 */
#include <stdint.h>
#include <stdio.h>

#include <common/runtime_svc.h>
#include <lib/smccc.h>
#include <lib/spinlock.h>
#include <smccc_helpers.h>

#include "../scmi_server.h"

/* One lock for the whole server: state is shared by every channel. */
static spinlock_t scmi_server_lock;

void scmi_port_puts(const char *line)
{
	/* the console runs on the secure UART (PLAT_QEMU_BOOT_UART_BASE) */
	(void)printf("%s", line);
}

void scmi_port_lock(void)
{
	spin_lock(&scmi_server_lock);
}

void scmi_port_unlock(void)
{
	spin_unlock(&scmi_server_lock);
}

volatile uint32_t *scmi_port_shmem(unsigned int agent_index)
{
	/* the carve-out is flat-mapped MT_DEVICE | MT_NS by qemu_common.c */
	return (volatile uint32_t *)(uintptr_t)scmi_agents[agent_index].shmem;
}

const volatile uint32_t *scmi_port_fault_page(void)
{
	/* no agent's page: QEMU loads a table there when a boot asks for faults */
	return (const volatile uint32_t *)(uintptr_t)SCMI_BOARD_FAULT_PAGE;
}

static int32_t scmi_sip_setup(void)
{
	scmi_server_init();
	return 0;
}

static uintptr_t scmi_sip_handler(uint32_t smc_fid, u_register_t x1,
				  u_register_t x2, u_register_t x3,
				  u_register_t x4, void *cookie, void *handle,
				  u_register_t flags)
{
	(void)x1;
	(void)x2;
	(void)x3;
	(void)x4;
	(void)cookie;
	/* only the normal world has agents; unknown ids are SMC_UNK; an "smc"
	 * fault returns its own value (e.g. SMC_UNK, SMC_INVALID_PARAM = -3) */
	if (!is_caller_non_secure(flags)) {
		SMC_RET1(handle, SMC_UNK);
	}
	SMC_RET1(handle, (u_register_t)(int64_t)scmi_server_doorbell(smc_fid));
}

DECLARE_RT_SVC(
	scmi_sip_svc,
	OEN_SIP_START,
	OEN_SIP_END,
	SMC_TYPE_FAST,
	scmi_sip_setup,
	scmi_sip_handler
);
