// SPDX-License-Identifier: BSD-3-Clause
/*
 * Entry points shared by every port: boot-time initialisation and the
 * doorbell (an agent's SMC function id -> its channel).
 */
#include "scmi_server.h"

void scmi_server_init(void)
{
	scmi_trace_boot();
	scmi_state_init();
	scmi_policy_init();
	scmi_fault_init(scmi_port_fault_page());
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_AGENTS; i++) {
		/* agents wait for the FREE bit before their first message */
		scmi_smt_init_channel(scmi_port_shmem(i));
	}
}

int scmi_server_doorbell(uint32_t func_id)
{
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_AGENTS; i++) {
		if (scmi_agents[i].func_id == func_id) {
			int32_t ret;

			scmi_port_lock();
			ret = scmi_smt_process(i, scmi_port_shmem(i));
			scmi_port_unlock();
			return ret;
		}
	}
	return SCMI_SMC_UNK;
}
