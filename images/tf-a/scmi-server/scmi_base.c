// SPDX-License-Identifier: BSD-3-Clause
/*
 * Base protocol 0x10, version 2.0: discovery, agents and permissions.
 * Each handler checks in_size first and answers with a typed struct.
 */
#include "scmi_server.h"

#define SCMI_BASE_VERSION       0x20000U
#define SCMI_IMPL_VERSION       0x00010000U
#define SCMI_VENDOR             "XenHarness"
#define SCMI_AGENT_ID_OWN       0xFFFFFFFFU
#define SCMI_PLATFORM_AGENT_ID  0U

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

/* Implemented non-Base protocols this agent may use, ascending. */
static unsigned int allowed_protocols(unsigned int agent, uint8_t list[8])
{
	static const uint8_t ids[] = {
		SCMI_PROTO_POWER, SCMI_PROTO_CLOCK, SCMI_PROTO_SENSOR, SCMI_PROTO_RESET,
	};
	unsigned int n = 0;

	for (size_t i = 0; i < sizeof(ids); i++) {
		if (scmi_policy_protocol_allowed(agent, ids[i])) {
			list[n++] = ids[i];
		}
	}
	return n;
}

static void protocol_attributes(struct scmi_msg *msg)
{
	uint8_t list[8];
	struct {
		int32_t status;
		uint32_t attributes;
	} r = { SCMI_SUCCESS, 0U };

	if (msg->in_size != 0U) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	/* [7:0] protocols (the caller's view, as DISCOVER_LIST_PROTOCOLS), [15:8] agents */
	r.attributes = (allowed_protocols(msg->agent, list) & 0xffU) |
		       ((SCMI_BOARD_NUM_AGENTS & 0xffU) << 8);
	scmi_result_u(msg, "protocols", r.attributes & 0xffU);
	scmi_result_u(msg, "agents", SCMI_BOARD_NUM_AGENTS);
	scmi_write_response(msg, &r, sizeof(r));
}

static void discover_name(struct scmi_msg *msg, const char *name)
{
	struct {
		int32_t status;
		char name[SCMI_SHORT_NAME];
	} r = { .status = SCMI_SUCCESS };

	if (msg->in_size != 0U) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
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
	struct {
		int32_t status;
		uint32_t version;
	} r = { SCMI_SUCCESS, SCMI_IMPL_VERSION };

	if (msg->in_size != 0U) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	scmi_write_response(msg, &r, sizeof(r));
}

static void discover_list_protocols(struct scmi_msg *msg)
{
	struct {
		int32_t status;
		uint32_t num;
		uint8_t ids[8];
	} r = { .status = SCMI_SUCCESS };
	uint8_t list[8];
	uint32_t skip;
	unsigned int n;

	if (msg->in_size != sizeof(skip)) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	memcpy(&skip, msg->in, sizeof(skip));
	scmi_trace_u(msg, "skip", skip);
	n = allowed_protocols(msg->agent, list);
	if (skip > n) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	r.num = n - skip;
	memcpy(r.ids, &list[skip], r.num);
	scmi_result_u(msg, "count", r.num);
	/* ids are packed 4 per word; the reply is padded to whole words */
	scmi_write_response(msg, &r, 8U + ((r.num + 3U) & ~3U));
}

static void discover_agent(struct scmi_msg *msg)
{
	struct {
		int32_t status;
		uint32_t agent_id;
		char name[SCMI_SHORT_NAME];
	} r = { .status = SCMI_SUCCESS };
	uint32_t agent_id;
	int idx;

	if (msg->in_size != sizeof(agent_id)) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	memcpy(&agent_id, msg->in, sizeof(agent_id));
	scmi_trace_x(msg, "query", agent_id);
	idx = agent_id == SCMI_AGENT_ID_OWN ? (int)msg->agent : scmi_agent_index(agent_id);
	if (idx >= 0) {
		r.agent_id = scmi_agents[idx].id;
		scmi_copy_name(r.name, scmi_agents[idx].name);
	} else if (agent_id == SCMI_PLATFORM_AGENT_ID) {
		/* id 0 is the platform unless the board gave it to an agent */
		r.agent_id = SCMI_PLATFORM_AGENT_ID;
		scmi_copy_name(r.name, "platform");
	} else {
		scmi_status_response(msg, SCMI_NOT_FOUND);
		return;
	}
	scmi_result_u(msg, "id", r.agent_id);
	scmi_result_s(msg, "name", r.name);
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

static void set_device_permissions(struct scmi_msg *msg)
{
	struct {
		uint32_t agent_id;
		uint32_t device_id;
		uint32_t flags;
	} in;
	int agent, device;

	if (msg->in_size != sizeof(in)) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	memcpy(&in, msg->in, sizeof(in));
	scmi_trace_u(msg, "target", in.agent_id);
	scmi_trace_u(msg, "device", in.device_id);
	scmi_trace_x(msg, "flags", in.flags);
	agent = privileged_target(msg, in.agent_id);
	if (agent < 0) {
		return;
	}
	device = scmi_device_index(in.device_id);
	if (device < 0) {
		scmi_status_response(msg, SCMI_NOT_FOUND);
		return;
	}
	if ((in.flags & ~PERMISSION_ALLOW) != 0U) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	scmi_status_response(msg, scmi_policy_set_device(msg->agent, (unsigned int)agent,
							 (unsigned int)device,
							 (in.flags & PERMISSION_ALLOW) != 0U));
}

static void set_protocol_permissions(struct scmi_msg *msg)
{
	struct {
		uint32_t agent_id;
		uint32_t device_id;
		uint32_t command_id;
		uint32_t flags;
	} in;
	const struct scmi_protocol *p;
	int agent, device;

	if (msg->in_size != sizeof(in)) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	memcpy(&in, msg->in, sizeof(in));
	scmi_trace_u(msg, "target", in.agent_id);
	scmi_trace_u(msg, "device", in.device_id);
	scmi_trace_x(msg, "protocol", in.command_id);
	scmi_trace_x(msg, "flags", in.flags);
	agent = privileged_target(msg, in.agent_id);
	if (agent < 0) {
		return;
	}
	device = scmi_device_index(in.device_id);
	if (device < 0) {
		scmi_status_response(msg, SCMI_NOT_FOUND);
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
	scmi_status_response(msg, scmi_policy_set_protocol(msg->agent, (unsigned int)agent,
							   (unsigned int)device, p->kind,
							   (in.flags & PERMISSION_ALLOW) != 0U));
}

static void reset_agent_configuration(struct scmi_msg *msg)
{
	struct {
		uint32_t agent_id;
		uint32_t flags;
	} in;
	int agent;

	if (msg->in_size != sizeof(in)) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	memcpy(&in, msg->in, sizeof(in));
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
		scmi_policy_revoke_all(msg->agent, (unsigned int)agent);
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
