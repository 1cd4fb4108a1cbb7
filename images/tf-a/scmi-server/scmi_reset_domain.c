// SPDX-License-Identifier: BSD-3-Clause
/*
 * Reset domain protocol 0x16, version 1.0: synchronous explicit assert /
 * deassert and autonomous (pulse) cold resets of the board's reset lines.
 */
#include "scmi_server.h"

#define RESET_VERSION            0x10000U
#define RESET_DOMAIN_ATTRIBUTES  0x3U
#define RESET                    0x4U

#define RESET_AUTONOMOUS  0x1U
#define RESET_EXPLICIT    0x2U   /* with !AUTONOMOUS: 1 assert, 0 deassert */
#define RESET_ASYNC       0x4U
#define RESET_ARCH_COLD   0x0U   /* reset_state: architectural cold reset */

struct reset_protocol_attributes_p2a {
	int32_t status;
	uint32_t attributes;      /* [15:0] domains */
};

struct reset_domain_attributes_a2p {
	uint32_t domain_id;
};

struct reset_domain_attributes_p2a {
	int32_t status;
	uint32_t attributes;      /* no async, no notifications */
	uint32_t latency;
	char name[SCMI_SHORT_NAME];
};

struct reset_a2p {
	uint32_t domain_id;
	uint32_t flags;
	uint32_t reset_state;
};

static void protocol_attributes(struct scmi_msg *msg)
{
	struct reset_protocol_attributes_p2a r = {
		SCMI_SUCCESS, SCMI_BOARD_NUM_RESETS & 0xffffU
	};

	if (!scmi_get_args(msg, NULL, 0U)) {
		return;
	}
	scmi_result_u(msg, "domains", SCMI_BOARD_NUM_RESETS);
	scmi_write_response(msg, &r, sizeof(r));
}

static void domain_attributes(struct scmi_msg *msg)
{
	struct reset_domain_attributes_p2a r = {
		.status = SCMI_SUCCESS, .latency = 0x7fffffffU /* unknown */
	};
	struct reset_domain_attributes_a2p in;
	int id;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "reset", in.domain_id);
	id = scmi_resource_id(msg, SCMI_KIND_RESET, in.domain_id, false);
	if (id < 0) {
		return;
	}
	scmi_copy_name(r.name, scmi_resets[id].name);
	scmi_result_s(msg, "name", r.name);
	scmi_write_response(msg, &r, sizeof(r));
}

static void reset(struct scmi_msg *msg)
{
	struct reset_a2p in;
	int id;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "reset", in.domain_id);
	scmi_trace_x(msg, "flags", in.flags);
	scmi_trace_x(msg, "state", in.reset_state);
	id = scmi_resource_id(msg, SCMI_KIND_RESET, in.domain_id, true);
	if (id < 0) {
		return;
	}
	if ((in.flags & ~0x7U) != 0U || in.reset_state != RESET_ARCH_COLD) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	if ((in.flags & RESET_ASYNC) != 0U) {
		scmi_status_response(msg, SCMI_NOT_SUPPORTED);
		return;
	}
	if ((in.flags & RESET_AUTONOMOUS) != 0U) {
		scmi_reset_pulse(msg->agent, (unsigned int)id);
	} else {
		scmi_reset_set(msg->agent, (unsigned int)id, (in.flags & RESET_EXPLICIT) != 0U);
	}
	scmi_status_response(msg, SCMI_SUCCESS);
}

static const scmi_handler_t handlers[] = {
	[SCMI_MSG_PROTOCOL_VERSION] = scmi_common_version,
	[SCMI_MSG_PROTOCOL_ATTRIBUTES] = protocol_attributes,
	[SCMI_MSG_PROTOCOL_MESSAGE_ATTRIBUTES] = scmi_common_message_attributes,
	[RESET_DOMAIN_ATTRIBUTES] = domain_attributes,
	[RESET] = reset,
};

static const char *const names[] = {
	"PROTOCOL_VERSION", "PROTOCOL_ATTRIBUTES", "PROTOCOL_MESSAGE_ATTRIBUTES",
	"RESET_DOMAIN_ATTRIBUTES", "RESET",
};

_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(handlers) / sizeof(handlers[0]),
	       "one name per reset message");

const struct scmi_protocol scmi_proto_reset = {
	.id = SCMI_PROTO_RESET,
	.kind = SCMI_KIND_RESET,
	.version = RESET_VERSION,
	.num_handlers = sizeof(handlers) / sizeof(handlers[0]),
	.handlers = handlers,
	.names = names,
};
