// SPDX-License-Identifier: BSD-3-Clause
/*
 * Faults on purpose, chosen per boot without rebuilding the firmware: the harness
 * loads a table into the last page of the SCMI carve-out (QEMU's loader, before any
 * CPU runs) and scmi_fault_init() copies it into secure memory at boot. A page
 * without the magic (every boot that asks for none) arms nothing.
 *
 * Table, little-endian 32-bit words: 'SCFT', count, then per fault
 *   agent id (the caller's, the board's id; ANY), target (ANY: else the agent id the
 *   message's first payload word names, as SET_DEVICE_PERMISSIONS' or
 *   RESET_AGENT_CONFIGURATION's), protocol (ANY), message (ANY), kind, value, times
 * kinds (SCMI_FAULT_*): status   answer with status `value`, the handler is not run
 *                      busy     never answer: the channel stays busy
 *                      agent-id DISCOVER_AGENT answers id `value`
 *                      length   the reply's length is off by `value` bytes
 *                      smc      the doorbell SMC returns `value` in x0 and the
 *                               message is not taken (the channel stays busy)
 * times: how many matching messages it hits (0: all). Every hit is traced
 * (SCMI-FAULT:), so a test knows the fault fired.
 */
#include "scmi_server.h"

#define FAULT_MAGIC	0x54464353U	/* "SCFT" */
#define FAULT_WORDS	7U

struct scmi_fault {
	uint32_t agent;
	uint32_t target;
	uint32_t protocol;
	uint32_t message;
	uint32_t kind;
	int32_t value;
	uint32_t times;
	uint32_t hits;
};

static struct scmi_fault faults[SCMI_FAULT_MAX];
static unsigned int num_faults;

void scmi_fault_init(const volatile uint32_t *page)
{
	uint32_t n;

	num_faults = 0U;
	if (page == NULL || page[0] != FAULT_MAGIC) {
		return;
	}
	n = page[1];
	if (n > SCMI_FAULT_MAX) {
		n = SCMI_FAULT_MAX;
	}
	for (unsigned int i = 0U; i < n; i++) {
		const volatile uint32_t *e = &page[2U + i * FAULT_WORDS];

		faults[i].agent = e[0];
		faults[i].target = e[1];
		faults[i].protocol = e[2];
		faults[i].message = e[3];
		faults[i].kind = e[4];
		faults[i].value = (int32_t)e[5];
		faults[i].times = e[6];
		faults[i].hits = 0U;
	}
	num_faults = n;
	scmi_trace_faults_armed(num_faults);
}

/* the agent id a message's payload starts with (SCMI_FAULT_ANY if it is too short) */
static uint32_t payload_agent(const struct scmi_msg *msg)
{
	uint32_t id;

	if (msg->in_size < sizeof(id)) {
		return SCMI_FAULT_ANY;
	}
	memcpy(&id, msg->in, sizeof(id));
	return id;
}

bool scmi_fault_hit(const struct scmi_msg *msg, uint32_t kind, int32_t *value)
{
	for (unsigned int i = 0U; i < num_faults; i++) {
		struct scmi_fault *f = &faults[i];

		if (f->kind != kind ||
		    (f->target != SCMI_FAULT_ANY && f->target != payload_agent(msg)) ||
		    (f->agent != SCMI_FAULT_ANY && f->agent != scmi_agents[msg->agent].id) ||
		    (f->protocol != SCMI_FAULT_ANY && f->protocol != msg->protocol_id) ||
		    (f->message != SCMI_FAULT_ANY && f->message != msg->message_id) ||
		    (f->times != 0U && f->hits >= f->times)) {
			continue;
		}
		f->hits++;
		*value = f->value;
		scmi_trace_fault(msg, kind, f->value);
		return true;
	}
	return false;
}
