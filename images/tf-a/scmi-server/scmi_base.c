// SPDX-License-Identifier: BSD-3-Clause
/*
 * Base protocol 0x10, version 2.0: discovery, agents and permissions.
 * Each handler takes its arguments through scmi_get_args() (in_size check
 * and copy) into a typed request struct and answers with a typed response.
 */
#include "scmi_server.h"

#define SCMI_BASE_VERSION       0x20000U
#define SCMI_IMPL_VERSION       0x00010000U
#define SCMI_VENDOR             "XenHarness"
#define SCMI_PLATFORM_NAME      "platform"
#define SCMI_AGENT_ID_OWN       0xFFFFFFFFU

#define BASE_DISCOVER_VENDOR            0x3U
#define BASE_DISCOVER_SUB_VENDOR        0x4U
#define BASE_DISCOVER_IMPL_VERSION      0x5U
#define BASE_DISCOVER_LIST_PROTOCOLS    0x6U
#define BASE_DISCOVER_AGENT             0x7U
#define BASE_NOTIFY_ERRORS              0x8U
#define BASE_SET_DEVICE_PERMISSIONS     0x9U
#define BASE_SET_PROTOCOL_PERMISSIONS   0xAU
#define BASE_RESET_AGENT_CONFIGURATION  0xBU

#define PERMISSION_ALLOW   0x1U   /* flags bit 0 of 0x9 and 0xA */
#define RESET_PERMISSIONS  0x1U   /* flags bit 0 of 0xB */

struct base_attributes_p2a {
	int32_t status;
	uint32_t attributes;      /* [7:0] protocols, [15:8] agents */
};

struct base_name_p2a {
	int32_t status;
	char name[SCMI_SHORT_NAME];
};

struct base_impl_version_p2a {
	int32_t status;
	uint32_t version;
};

struct base_list_protocols_a2p {
	uint32_t skip;
};

struct base_list_protocols_p2a {
	int32_t status;
	uint32_t num_protocols;
	uint8_t protocols[SCMI_NUM_PROTOCOLS + 3U];   /* padded to whole words */
};

struct base_discover_agent_a2p {
	uint32_t agent_id;
};

struct base_discover_agent_p2a {
	int32_t status;
	uint32_t agent_id;
	char name[SCMI_SHORT_NAME];
};

struct base_set_device_permissions_a2p {
	uint32_t agent_id;
	uint32_t device_id;
	uint32_t flags;
};

struct base_set_protocol_permissions_a2p {
	uint32_t agent_id;
	uint32_t device_id;
	uint32_t command_id;      /* the protocol id */
	uint32_t flags;
};

struct base_reset_agent_configuration_a2p {
	uint32_t agent_id;
	uint32_t flags;
};

/* Implemented non-Base protocols this agent may use, ascending. */
static unsigned int allowed_protocols(unsigned int agent, uint8_t list[SCMI_NUM_PROTOCOLS])
{
	const struct scmi_protocol *p;
	unsigned int n = 0;

	for (unsigned int i = 0; (p = scmi_protocol_at(i)) != NULL; i++) {
		if (p->kind >= 0 && scmi_policy_protocol_allowed(agent, p->id)) {
			list[n++] = p->id;
		}
	}
	return n;
}

static void protocol_attributes(struct scmi_msg *msg)
{
	uint8_t list[SCMI_NUM_PROTOCOLS];
	struct base_attributes_p2a r = { SCMI_SUCCESS, 0U };

	if (!scmi_get_args(msg, NULL, 0U)) {
		return;
	}
	/*
	 * [7:0] protocols (the caller's view, as DISCOVER_LIST_PROTOCOLS),
	 * [15:8] agents: the board's, the platform (id 0) not counted
	 */
	r.attributes = (allowed_protocols(msg->agent, list) & 0xffU) |
		       ((SCMI_BOARD_NUM_AGENTS & 0xffU) << 8);
	scmi_result_u(msg, "protocols", r.attributes & 0xffU);
	scmi_result_u(msg, "agents", SCMI_BOARD_NUM_AGENTS);
	scmi_write_response(msg, &r, sizeof(r));
}

static void discover_name(struct scmi_msg *msg, const char *name)
{
	struct base_name_p2a r = { .status = SCMI_SUCCESS };

	if (!scmi_get_args(msg, NULL, 0U)) {
		return;
	}
	scmi_copy_name(r.name, name);
	scmi_result_s(msg, "name", r.name);
	scmi_write_response(msg, &r, sizeof(r));
}

static void discover_vendor(struct scmi_msg *msg)
{
	discover_name(msg, SCMI_VENDOR);
}

static void discover_sub_vendor(struct scmi_msg *msg)
{
	/* the board name tells a log reader which topology answered */
	discover_name(msg, scmi_board_name);
}

static void discover_impl_version(struct scmi_msg *msg)
{
	struct base_impl_version_p2a r = { SCMI_SUCCESS, SCMI_IMPL_VERSION };

	if (!scmi_get_args(msg, NULL, 0U)) {
		return;
	}
	scmi_write_response(msg, &r, sizeof(r));
}

static void discover_list_protocols(struct scmi_msg *msg)
{
	struct base_list_protocols_p2a r = { .status = SCMI_SUCCESS };
	struct base_list_protocols_a2p in;
	uint8_t list[SCMI_NUM_PROTOCOLS];
	unsigned int n;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "skip", in.skip);
	n = allowed_protocols(msg->agent, list);
	if (in.skip > n) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	r.num_protocols = n - in.skip;
	memcpy(r.protocols, &list[scmi_confine(in.skip, n + 1U)], r.num_protocols);
	scmi_result_u(msg, "count", r.num_protocols);
	if (r.num_protocols > 0U) {
		/* which ones, for a log reader: a protocol not offered is a refusal too */
		static const char hex[] = "0123456789abcdef";
		char ids[SCMI_NUM_PROTOCOLS * 5U];
		unsigned int pos = 0U;

		for (unsigned int i = 0U; i < r.num_protocols; i++) {
			if (i > 0U) {
				ids[pos++] = ',';
			}
			ids[pos++] = '0';
			ids[pos++] = 'x';
			ids[pos++] = hex[(r.protocols[i] >> 4) & 0xfU];
			ids[pos++] = hex[r.protocols[i] & 0xfU];
		}
		ids[pos] = '\0';
		scmi_result_s(msg, "ids", ids);
	}
	/* ids are packed 4 per word; the reply is padded to whole words */
	scmi_write_response(msg, &r, 8U + ((r.num_protocols + 3U) & ~3U));
}

/*
 * DEN0056 4.1.2 and BASE_DISCOVER_AGENT: 0 is the platform, real agents
 * number from 1, 0xFFFFFFFF is the caller. A board that gives id 0 to a
 * real agent (SCMI_BOARD_AGENT_ID_0_DEVIATION, an explicit opt-in) gets that
 * agent for id 0, with deviation=agent-id-0 in the trace.
 */
static void discover_agent(struct scmi_msg *msg)
{
	struct base_discover_agent_p2a r = { .status = SCMI_SUCCESS };
	struct base_discover_agent_a2p in;
	int idx;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_x(msg, "query", in.agent_id);
	idx = in.agent_id == SCMI_AGENT_ID_OWN ? (int)msg->agent : scmi_agent_index(in.agent_id);
	if (in.agent_id == SCMI_PLATFORM_AGENT_ID && (SCMI_BOARD_AGENT_ID_0_DEVIATION == 0 || idx < 0)) {
		r.agent_id = SCMI_PLATFORM_AGENT_ID;
		scmi_copy_name(r.name, SCMI_PLATFORM_NAME);
	} else if (idx >= 0) {
		r.agent_id = scmi_agents[idx].id;
		scmi_copy_name(r.name, scmi_agents[idx].name);
	} else {
		scmi_status_response(msg, SCMI_NOT_FOUND);
		return;
	}
	scmi_result_u(msg, "id", r.agent_id);
	scmi_result_s(msg, "name", r.name);
	if (r.agent_id == SCMI_PLATFORM_AGENT_ID && idx >= 0) {
		scmi_result_deviation(msg, "agent-id-0");
	}
	scmi_write_response(msg, &r, sizeof(r));
}

/* Shared checks of the three privileged messages; -1 = response written. */
static int privileged_target(struct scmi_msg *msg, uint32_t agent_id)
{
	int idx;

	if (scmi_agents[msg->agent].privileged == 0U) {
		scmi_status_response(msg, SCMI_DENIED);
		return -1;
	}
	idx = scmi_agent_index(agent_id);
	if (idx < 0) {
		scmi_status_response(msg, SCMI_NOT_FOUND);
		return -1;
	}
	return idx;
}

/* The device named by a request; -1 = NOT_FOUND written. */
static int target_device(struct scmi_msg *msg, uint32_t device_id)
{
	int idx = scmi_device_index(device_id);

	if (idx < 0) {
		scmi_status_response(msg, SCMI_NOT_FOUND);
	}
	return idx;
}

/*
 * The privileged agent may use every resource whatever its grants
 * (design.md), so a request to deny it a device or a protocol could not take
 * effect: refuse it with DENIED (DEN0056 4.1.4: the caller is not permitted
 * to perform the action) rather than answer SUCCESS for nothing. Allowing it
 * is already true: SUCCESS, with nothing recorded. true = response written.
 */
static bool aimed_at_privileged(struct scmi_msg *msg, int agent, uint32_t flags)
{
	if (scmi_agents[agent].privileged == 0U) {
		return false;
	}
	scmi_status_response(msg, (flags & PERMISSION_ALLOW) != 0U ? SCMI_SUCCESS : SCMI_DENIED);
	return true;
}

static void set_device_permissions(struct scmi_msg *msg)
{
	struct base_set_device_permissions_a2p in;
	int agent, device;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "target", in.agent_id);
	scmi_trace_u(msg, "device", in.device_id);
	scmi_trace_x(msg, "flags", in.flags);
	agent = privileged_target(msg, in.agent_id);
	if (agent < 0 || (device = target_device(msg, in.device_id)) < 0) {
		return;
	}
	if ((in.flags & ~PERMISSION_ALLOW) != 0U) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	if (aimed_at_privileged(msg, agent, in.flags)) {
		return;
	}
	scmi_status_response(msg, scmi_policy_set_device(msg->agent, (unsigned int)agent,
							 (unsigned int)device,
							 (in.flags & PERMISSION_ALLOW) != 0U));
}

static void set_protocol_permissions(struct scmi_msg *msg)
{
	struct base_set_protocol_permissions_a2p in;
	const struct scmi_protocol *p;
	int agent, device;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "target", in.agent_id);
	scmi_trace_u(msg, "device", in.device_id);
	scmi_trace_x(msg, "protocol", in.command_id);
	scmi_trace_x(msg, "flags", in.flags);
	agent = privileged_target(msg, in.agent_id);
	if (agent < 0 || (device = target_device(msg, in.device_id)) < 0) {
		return;
	}
	if ((in.flags & ~PERMISSION_ALLOW) != 0U || (in.command_id & ~0xffU) != 0U) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	p = scmi_find_protocol(in.command_id);
	if (p == NULL || p->kind < 0) {
		/* unknown protocol, or Base, which every agent always keeps */
		scmi_status_response(msg, SCMI_NOT_SUPPORTED);
		return;
	}
	if (aimed_at_privileged(msg, agent, in.flags)) {
		return;
	}
	scmi_status_response(msg, scmi_policy_set_protocol(msg->agent, (unsigned int)agent,
							   (unsigned int)device, p->kind,
							   (in.flags & PERMISSION_ALLOW) != 0U));
}

/*
 * Resources the target changed go back to their board defaults; with flags
 * bit 0 its permissions go back to their defaults too: the board's boot
 * grants, no protocol denied (run-time grants and denials are undone).
 */
static void reset_agent_configuration(struct scmi_msg *msg)
{
	struct base_reset_agent_configuration_a2p in;
	int agent;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "target", in.agent_id);
	scmi_trace_x(msg, "flags", in.flags);
	agent = privileged_target(msg, in.agent_id);
	if (agent < 0) {
		return;
	}
	if ((in.flags & ~RESET_PERMISSIONS) != 0U) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	scmi_trace_agent_reset((unsigned int)agent, in.flags, (int)msg->agent);
	scmi_state_restore_agent(msg->agent, (unsigned int)agent);
	if ((in.flags & RESET_PERMISSIONS) != 0U) {
		scmi_policy_restore_defaults(msg->agent, (unsigned int)agent);
	}
	scmi_status_response(msg, SCMI_SUCCESS);
}

static const scmi_handler_t handlers[] = {
	[SCMI_MSG_PROTOCOL_VERSION] = scmi_common_version,
	[SCMI_MSG_PROTOCOL_ATTRIBUTES] = protocol_attributes,
	[SCMI_MSG_PROTOCOL_MESSAGE_ATTRIBUTES] = scmi_common_message_attributes,
	[BASE_DISCOVER_VENDOR] = discover_vendor,
	[BASE_DISCOVER_SUB_VENDOR] = discover_sub_vendor,
	[BASE_DISCOVER_IMPL_VERSION] = discover_impl_version,
	[BASE_DISCOVER_LIST_PROTOCOLS] = discover_list_protocols,
	[BASE_DISCOVER_AGENT] = discover_agent,
	[BASE_NOTIFY_ERRORS] = NULL,	/* no notifications over SMC */
	[BASE_SET_DEVICE_PERMISSIONS] = set_device_permissions,
	[BASE_SET_PROTOCOL_PERMISSIONS] = set_protocol_permissions,
	[BASE_RESET_AGENT_CONFIGURATION] = reset_agent_configuration,
};

static const char *const names[] = {
	"PROTOCOL_VERSION", "PROTOCOL_ATTRIBUTES", "PROTOCOL_MESSAGE_ATTRIBUTES",
	"DISCOVER_VENDOR", "DISCOVER_SUB_VENDOR", "DISCOVER_IMPLEMENTATION_VERSION",
	"DISCOVER_LIST_PROTOCOLS", "DISCOVER_AGENT", "NOTIFY_ERRORS",
	"SET_DEVICE_PERMISSIONS", "SET_PROTOCOL_PERMISSIONS",
	"RESET_AGENT_CONFIGURATION",
};

_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(handlers) / sizeof(handlers[0]),
	       "one name per base message");

const struct scmi_protocol scmi_proto_base = {
	.id = SCMI_PROTO_BASE,
	.kind = -1,
	.version = SCMI_BASE_VERSION,
	.num_handlers = sizeof(handlers) / sizeof(handlers[0]),
	.handlers = handlers,
	.names = names,
};
