// SPDX-License-Identifier: BSD-3-Clause
/*
 * Power domain protocol 0x11, version 1.0: synchronous on/off of the
 * board's virtual power domains (generic states only).
 */
#include "scmi_server.h"

#define POWER_VERSION            0x10000U
#define POWER_DOMAIN_ATTRIBUTES  0x3U
#define POWER_STATE_SET          0x4U
#define POWER_STATE_GET          0x5U

#define POWER_ATTR_SYNC   (1U << 29)
#define POWER_SET_ASYNC   0x1U
#define POWER_STATE_ON    0x00000000U
#define POWER_STATE_OFF   0x40000000U   /* context lost, generic off */

static void protocol_attributes(struct scmi_msg *msg)
{
	struct {
		int32_t status;
		uint32_t attributes;
		uint32_t stats_low;
		uint32_t stats_high;
		uint32_t stats_len;
	} r = { SCMI_SUCCESS, SCMI_BOARD_NUM_PDS & 0xffffU, 0U, 0U, 0U };

	if (msg->in_size != 0U) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	scmi_result_u(msg, "domains", SCMI_BOARD_NUM_PDS);
	scmi_write_response(msg, &r, sizeof(r));
}

/* Reads domain_id (first word); -1 = response written. */
static int domain_arg(struct scmi_msg *msg, bool need_access)
{
	uint32_t id;

	if (msg->in_size != sizeof(id)) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return -1;
	}
	memcpy(&id, msg->in, sizeof(id));
	scmi_trace_u(msg, "power", id);
	if (id >= SCMI_BOARD_NUM_PDS) {
		scmi_status_response(msg, SCMI_NOT_FOUND);
		return -1;
	}
	if (need_access && !scmi_policy_may_use(msg->agent, SCMI_KIND_POWER, id)) {
		scmi_status_response(msg, SCMI_DENIED);
		return -1;
	}
	return (int)id;
}

static void domain_attributes(struct scmi_msg *msg)
{
	struct {
		int32_t status;
		uint32_t attributes;
		char name[SCMI_SHORT_NAME];
	} r = { .status = SCMI_SUCCESS, .attributes = POWER_ATTR_SYNC };
	int id = domain_arg(msg, false);

	if (id < 0) {
		return;
	}
	scmi_copy_name(r.name, scmi_pds[id].name);
	scmi_result_s(msg, "name", r.name);
	scmi_write_response(msg, &r, sizeof(r));
}

static void state_set(struct scmi_msg *msg)
{
	struct {
		uint32_t flags;
		uint32_t domain_id;
		uint32_t state;
	} in;

	if (msg->in_size != sizeof(in)) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	memcpy(&in, msg->in, sizeof(in));
	scmi_trace_u(msg, "power", in.domain_id);
	scmi_trace_x(msg, "flags", in.flags);
	scmi_trace_x(msg, "state", in.state);
	if (in.domain_id >= SCMI_BOARD_NUM_PDS) {
		scmi_status_response(msg, SCMI_NOT_FOUND);
		return;
	}
	if (!scmi_policy_may_use(msg->agent, SCMI_KIND_POWER, in.domain_id)) {
		scmi_status_response(msg, SCMI_DENIED);
		return;
	}
	if ((in.flags & ~POWER_SET_ASYNC) != 0U ||
	    (in.state != POWER_STATE_ON && in.state != POWER_STATE_OFF)) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	if ((in.flags & POWER_SET_ASYNC) != 0U) {
		scmi_status_response(msg, SCMI_NOT_SUPPORTED);
		return;
	}
	scmi_pd_set(msg->agent, in.domain_id, in.state == POWER_STATE_ON);
	scmi_status_response(msg, SCMI_SUCCESS);
}

static void state_get(struct scmi_msg *msg)
{
	struct {
		int32_t status;
		uint32_t state;
	} r = { .status = SCMI_SUCCESS };
	int id = domain_arg(msg, true);

	if (id < 0) {
		return;
	}
	r.state = scmi_pd_on((unsigned int)id) ? POWER_STATE_ON : POWER_STATE_OFF;
	scmi_result_x(msg, "state", r.state);
	scmi_write_response(msg, &r, sizeof(r));
}

static const scmi_handler_t handlers[] = {
	[SCMI_MSG_PROTOCOL_VERSION] = scmi_common_version,
	[SCMI_MSG_PROTOCOL_ATTRIBUTES] = protocol_attributes,
	[SCMI_MSG_PROTOCOL_MESSAGE_ATTRIBUTES] = scmi_common_message_attributes,
	[POWER_DOMAIN_ATTRIBUTES] = domain_attributes,
	[POWER_STATE_SET] = state_set,
	[POWER_STATE_GET] = state_get,
};

static const char *const names[] = {
	"PROTOCOL_VERSION", "PROTOCOL_ATTRIBUTES", "PROTOCOL_MESSAGE_ATTRIBUTES",
	"POWER_DOMAIN_ATTRIBUTES", "POWER_STATE_SET", "POWER_STATE_GET",
};

_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(handlers) / sizeof(handlers[0]),
	       "one name per power domain message");

const struct scmi_protocol scmi_proto_power = {
	.id = SCMI_PROTO_POWER,
	.kind = SCMI_KIND_POWER,
	.version = POWER_VERSION,
	.num_handlers = sizeof(handlers) / sizeof(handlers[0]),
	.handlers = handlers,
	.names = names,
};
