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

struct power_protocol_attributes_p2a {
	int32_t status;
	uint32_t attributes;      /* [15:0] domains */
	uint32_t stats_low;
	uint32_t stats_high;
	uint32_t stats_len;
};

struct power_domain_id_a2p {
	uint32_t domain_id;
};

struct power_domain_attributes_p2a {
	int32_t status;
	uint32_t attributes;
	char name[SCMI_SHORT_NAME];
};

struct power_state_set_a2p {
	uint32_t flags;
	uint32_t domain_id;
	uint32_t power_state;
};

struct power_state_get_p2a {
	int32_t status;
	uint32_t power_state;
};

static void protocol_attributes(struct scmi_msg *msg)
{
	struct power_protocol_attributes_p2a r = {
		SCMI_SUCCESS, SCMI_BOARD_NUM_PDS & 0xffffU, 0U, 0U, 0U
	};

	if (!scmi_get_args(msg, NULL, 0U)) {
		return;
	}
	scmi_result_u(msg, "domains", SCMI_BOARD_NUM_PDS);
	scmi_write_response(msg, &r, sizeof(r));
}

/* The request's domain_id (its only argument); -1 = response written. */
static int domain_arg(struct scmi_msg *msg, bool need_access)
{
	struct power_domain_id_a2p in;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return -1;
	}
	scmi_trace_u(msg, "power", in.domain_id);
	return scmi_resource_id(msg, SCMI_KIND_POWER, in.domain_id, need_access);
}

static void domain_attributes(struct scmi_msg *msg)
{
	struct power_domain_attributes_p2a r = {
		.status = SCMI_SUCCESS, .attributes = POWER_ATTR_SYNC
	};
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
	struct power_state_set_a2p in;
	int id;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "power", in.domain_id);
	scmi_trace_x(msg, "flags", in.flags);
	scmi_trace_x(msg, "state", in.power_state);
	id = scmi_resource_id(msg, SCMI_KIND_POWER, in.domain_id, true);
	if (id < 0) {
		return;
	}
	if ((in.flags & ~POWER_SET_ASYNC) != 0U ||
	    (in.power_state != POWER_STATE_ON && in.power_state != POWER_STATE_OFF)) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	if ((in.flags & POWER_SET_ASYNC) != 0U) {
		scmi_status_response(msg, SCMI_NOT_SUPPORTED);
		return;
	}
	scmi_pd_set(msg->agent, (unsigned int)id, in.power_state == POWER_STATE_ON);
	scmi_status_response(msg, SCMI_SUCCESS);
}

static void state_get(struct scmi_msg *msg)
{
	struct power_state_get_p2a r = { .status = SCMI_SUCCESS };
	int id = domain_arg(msg, true);

	if (id < 0) {
		return;
	}
	r.power_state = scmi_pd_on((unsigned int)id) ? POWER_STATE_ON : POWER_STATE_OFF;
	scmi_result_x(msg, "state", r.power_state);
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
