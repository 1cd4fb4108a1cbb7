// SPDX-License-Identifier: BSD-3-Clause
/*
 * Permission core.
 *
 * An agent may use a resource if it is the privileged (management) agent, or
 * if it holds a device that groups the resource and the device's protocol
 * for that resource kind is not denied to it. Device grants start from the
 * board's per-agent boot list; only the privileged agent changes them
 * (BASE_SET_DEVICE_PERMISSIONS / _PROTOCOL_PERMISSIONS /
 * RESET_AGENT_CONFIGURATION).
 */
#include "scmi_server.h"

#define NA SCMI_DIM(SCMI_BOARD_NUM_AGENTS)
#define ND SCMI_DIM(SCMI_BOARD_NUM_DEVICES)

static uint8_t granted[NA][ND];
/* bit per enum scmi_kind: the protocol is denied for (agent, device) */
static uint8_t proto_denied[NA][ND];

int scmi_agent_index(uint32_t agent_id)
{
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_AGENTS; i++) {
		if (scmi_agents[i].id == agent_id) {
			return (int)i;
		}
	}
	return -1;
}

int scmi_device_index(uint32_t device_id)
{
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_DEVICES; i++) {
		if (scmi_devices[i].id == device_id) {
			return (int)i;
		}
	}
	return -1;
}

void scmi_policy_init(void)
{
	memset(granted, 0, sizeof(granted));
	memset(proto_denied, 0, sizeof(proto_denied));
	for (unsigned int a = 0; a < SCMI_BOARD_NUM_AGENTS; a++) {
		for (unsigned int i = 0; i < scmi_agents[a].num_boot_devices; i++) {
			unsigned int d = scmi_agents[a].boot_devices[i];

			granted[a][d] = 1U;
			scmi_trace_grant(a, d, true, -1);
		}
	}
}

static bool device_has(unsigned int d, int kind, unsigned int res_id)
{
	const struct scmi_device_desc *dev = &scmi_devices[d];

	for (unsigned int i = 0; i < dev->num_res[kind]; i++) {
		if (dev->res[kind][i] == res_id) {
			return true;
		}
	}
	return false;
}

static bool device_usable(unsigned int agent, unsigned int d, int kind)
{
	return granted[agent][d] != 0U &&
	       (proto_denied[agent][d] & (1U << kind)) == 0U;
}

bool scmi_policy_may_use(unsigned int agent, int kind, unsigned int res_id)
{
	if (scmi_agents[agent].privileged != 0U) {
		return true;
	}
	for (unsigned int d = 0; d < SCMI_BOARD_NUM_DEVICES; d++) {
		if (device_usable(agent, d, kind) && device_has(d, kind, res_id)) {
			return true;
		}
	}
	return false;
}

bool scmi_policy_protocol_allowed(unsigned int agent, unsigned int protocol_id)
{
	const struct scmi_protocol *p = scmi_find_protocol(protocol_id);

	if (p == NULL) {
		return false;
	}
	if (p->kind < 0 || scmi_agents[agent].privileged != 0U) {
		return true;	/* Base is for everyone */
	}
	for (unsigned int d = 0; d < SCMI_BOARD_NUM_DEVICES; d++) {
		if (device_usable(agent, d, p->kind) &&
		    scmi_devices[d].num_res[p->kind] > 0U) {
			return true;
		}
	}
	return false;
}

int32_t scmi_policy_set_device(unsigned int caller, unsigned int agent,
			       unsigned int device, bool allow)
{
	if (scmi_agents[caller].privileged == 0U) {
		return SCMI_DENIED;
	}
	if ((granted[agent][device] != 0U) != allow) {
		granted[agent][device] = allow ? 1U : 0U;
		scmi_trace_grant(agent, device, allow, (int)caller);
	}
	return SCMI_SUCCESS;
}

int32_t scmi_policy_set_protocol(unsigned int caller, unsigned int agent,
				 unsigned int device, int kind, bool allow)
{
	uint8_t bit = (uint8_t)(1U << kind);
	bool was_allowed = (proto_denied[agent][device] & bit) == 0U;

	if (scmi_agents[caller].privileged == 0U) {
		return SCMI_DENIED;
	}
	if (was_allowed != allow) {
		if (allow) {
			proto_denied[agent][device] &= (uint8_t)~bit;
		} else {
			proto_denied[agent][device] |= bit;
		}
		scmi_trace_protocol(agent, device, scmi_protocol_of_kind(kind)->id,
				    allow, (int)caller);
	}
	return SCMI_SUCCESS;
}

/*
 * RESET_AGENT_CONFIGURATION with the permissions flag: the agent's device
 * grants become the board's boot grants again (run-time grants revoked,
 * revoked boot grants restored) and no protocol stays denied to it.
 */
void scmi_policy_restore_defaults(unsigned int caller, unsigned int agent)
{
	uint8_t boot[ND];

	memset(boot, 0, sizeof(boot));
	for (unsigned int i = 0; i < scmi_agents[agent].num_boot_devices; i++) {
		boot[scmi_agents[agent].boot_devices[i]] = 1U;
	}
	for (unsigned int d = 0; d < SCMI_BOARD_NUM_DEVICES; d++) {
		if (granted[agent][d] != boot[d]) {
			granted[agent][d] = boot[d];
			scmi_trace_grant(agent, d, boot[d] != 0U, (int)caller);
		}
		for (int k = 0; k < SCMI_KIND_COUNT; k++) {
			if ((proto_denied[agent][d] & (1U << k)) != 0U) {
				proto_denied[agent][d] &= (uint8_t)~(1U << k);
				scmi_trace_protocol(agent, d,
						    scmi_protocol_of_kind(k)->id,
						    true, (int)caller);
			}
		}
	}
}
