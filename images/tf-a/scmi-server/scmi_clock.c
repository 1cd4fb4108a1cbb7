// SPDX-License-Identifier: BSD-3-Clause
/*
 * Clock protocol 0x14, version 1.0, over the board's virtual clocks.
 * Descriptions (attributes, rates) are public; reading or changing a
 * clock's state needs the clock through a granted device.
 */
#include "scmi_server.h"

#define CLOCK_VERSION          0x10000U
#define CLOCK_ATTRIBUTES       0x3U
#define CLOCK_DESCRIBE_RATES   0x4U
#define CLOCK_RATE_SET         0x5U
#define CLOCK_RATE_GET         0x6U
#define CLOCK_CONFIG_SET       0x7U

#define RATE_SET_ASYNC         0x1U
#define RATE_SET_IGNORE_DELAYED 0x2U
#define RATE_SET_ROUND_UP      0x4U
#define RATE_SET_ROUND_AUTO    0x8U
#define RATE_SET_FLAGS         0xfU
#define CONFIG_ENABLE          0x1U
#define RATES_PER_REPLY        12U     /* 8 + 12 * 8 bytes fits SCMI_OUT_MAX */

struct clock_protocol_attributes_p2a {
	int32_t status;
	uint32_t attributes;      /* [15:0] clocks, [23:16] 0 async requests */
};

struct clock_id_a2p {
	uint32_t clock_id;
};

struct clock_attributes_p2a {
	int32_t status;
	uint32_t attributes;      /* bit 0: enabled */
	char name[SCMI_SHORT_NAME];
};

struct clock_describe_rates_a2p {
	uint32_t clock_id;
	uint32_t rate_index;
};

struct clock_describe_rates_p2a {
	int32_t status;
	uint32_t num_rates_flags; /* [31:16] remaining, [12] 0 = list, [11:0] returned */
	uint32_t rates[2U * RATES_PER_REPLY];   /* {low, high} words per rate */
};

struct clock_rate_set_a2p {
	uint32_t flags;
	uint32_t clock_id;
	uint32_t rate_low;
	uint32_t rate_high;
};

struct clock_rate_get_p2a {
	int32_t status;
	uint32_t rate_low;
	uint32_t rate_high;
};

struct clock_config_set_a2p {
	uint32_t clock_id;
	uint32_t attributes;
};

static void protocol_attributes(struct scmi_msg *msg)
{
	struct clock_protocol_attributes_p2a r = {
		SCMI_SUCCESS, SCMI_BOARD_NUM_CLOCKS & 0xffffU
	};

	if (!scmi_get_args(msg, NULL, 0U)) {
		return;
	}
	scmi_result_u(msg, "clocks", SCMI_BOARD_NUM_CLOCKS);
	scmi_write_response(msg, &r, sizeof(r));
}

static void clock_attributes(struct scmi_msg *msg)
{
	struct clock_attributes_p2a r = { .status = SCMI_SUCCESS };
	struct clock_id_a2p in;
	int id;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "clock", in.clock_id);
	id = scmi_resource_id(msg, SCMI_KIND_CLOCK, in.clock_id, false);
	if (id < 0) {
		return;
	}
	r.attributes = scmi_clock_enabled((unsigned int)id) ? 1U : 0U;
	scmi_copy_name(r.name, scmi_clocks[id].name);
	scmi_result_s(msg, "name", r.name);
	scmi_write_response(msg, &r, sizeof(r));
}

static void describe_rates(struct scmi_msg *msg)
{
	struct clock_describe_rates_p2a r = { .status = SCMI_SUCCESS };
	struct clock_describe_rates_a2p in;
	const struct scmi_clock_desc *c;
	uint32_t index, n, remaining;
	int id;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "clock", in.clock_id);
	scmi_trace_u(msg, "index", in.rate_index);
	id = scmi_resource_id(msg, SCMI_KIND_CLOCK, in.clock_id, false);
	if (id < 0) {
		return;
	}
	c = &scmi_clocks[id];
	if (in.rate_index >= c->num_rates) {
		scmi_status_response(msg, SCMI_OUT_OF_RANGE);
		return;
	}
	index = scmi_confine(in.rate_index, c->num_rates);
	n = c->num_rates - index;
	if (n > RATES_PER_REPLY) {
		n = RATES_PER_REPLY;
	}
	remaining = c->num_rates - index - n;
	r.num_rates_flags = (remaining << 16) | n;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t rate = c->rates[index + i];

		r.rates[2U * i] = (uint32_t)rate;
		r.rates[2U * i + 1U] = (uint32_t)(rate >> 32);
	}
	scmi_result_u(msg, "returned", n);
	scmi_result_u(msg, "remaining", remaining);
	scmi_write_response(msg, &r, 8U + 8U * n);
}

/*
 * The supported rate CLOCK_RATE_SET lands on, 0 if none. A request outside
 * [lowest, highest] supported rate is out of the clock's range whatever the
 * flags: rounding (down, up, or to the closest with ROUND_AUTO) picks between
 * the two supported rates around a request inside the range, it does not
 * clamp a request beyond its ends (README "CLOCK_RATE_SET").
 */
static uint64_t round_rate(const struct scmi_clock_desc *c, uint64_t want,
			   uint32_t flags)
{
	uint64_t below = 0, above = 0;

	if (c->num_rates == 0U || want < c->rates[0] || want > c->rates[c->num_rates - 1U]) {
		return 0U;
	}
	for (unsigned int i = 0; i < c->num_rates; i++) {   /* ascending */
		uint64_t r = c->rates[i];

		if (r == want) {
			return r;
		}
		if (r < want) {
			below = r;
		} else if (above == 0U) {
			above = r;
		}
	}
	/* inside the range and not a supported rate: both neighbours exist */
	if ((flags & RATE_SET_ROUND_AUTO) != 0U) {
		return (want - below) <= (above - want) ? below : above;
	}
	return (flags & RATE_SET_ROUND_UP) != 0U ? above : below;
}

static void rate_set(struct scmi_msg *msg)
{
	struct clock_rate_set_a2p in;
	uint64_t want, rate;
	int id;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	want = ((uint64_t)in.rate_high << 32) | in.rate_low;
	scmi_trace_u(msg, "clock", in.clock_id);
	scmi_trace_x(msg, "flags", in.flags);
	scmi_trace_u(msg, "rate", want);
	id = scmi_resource_id(msg, SCMI_KIND_CLOCK, in.clock_id, true);
	if (id < 0) {
		return;
	}
	if ((in.flags & ~RATE_SET_FLAGS) != 0U) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	if ((in.flags & RATE_SET_ASYNC) != 0U) {
		/* PROTOCOL_ATTRIBUTES advertises 0 pending async requests */
		scmi_status_response(msg, SCMI_NOT_SUPPORTED);
		return;
	}
	rate = round_rate(&scmi_clocks[id], want, in.flags);
	if (rate == 0U) {
		scmi_status_response(msg, SCMI_OUT_OF_RANGE);
		return;
	}
	scmi_clock_set_rate(msg->agent, (unsigned int)id, rate);
	scmi_result_u(msg, "rate", rate);
	scmi_status_response(msg, SCMI_SUCCESS);
}

static void rate_get(struct scmi_msg *msg)
{
	struct clock_rate_get_p2a r = { .status = SCMI_SUCCESS };
	struct clock_id_a2p in;
	uint64_t rate;
	int id;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "clock", in.clock_id);
	id = scmi_resource_id(msg, SCMI_KIND_CLOCK, in.clock_id, true);
	if (id < 0) {
		return;
	}
	rate = scmi_clock_rate((unsigned int)id);
	r.rate_low = (uint32_t)rate;
	r.rate_high = (uint32_t)(rate >> 32);
	scmi_result_u(msg, "rate", rate);
	scmi_write_response(msg, &r, sizeof(r));
}

static void config_set(struct scmi_msg *msg)
{
	struct clock_config_set_a2p in;
	int id;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "clock", in.clock_id);
	scmi_trace_x(msg, "attrs", in.attributes);
	id = scmi_resource_id(msg, SCMI_KIND_CLOCK, in.clock_id, true);
	if (id < 0) {
		return;
	}
	if ((in.attributes & ~CONFIG_ENABLE) != 0U) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	scmi_clock_set_enabled(msg->agent, (unsigned int)id, (in.attributes & CONFIG_ENABLE) != 0U);
	scmi_status_response(msg, SCMI_SUCCESS);
}

static const scmi_handler_t handlers[] = {
	[SCMI_MSG_PROTOCOL_VERSION] = scmi_common_version,
	[SCMI_MSG_PROTOCOL_ATTRIBUTES] = protocol_attributes,
	[SCMI_MSG_PROTOCOL_MESSAGE_ATTRIBUTES] = scmi_common_message_attributes,
	[CLOCK_ATTRIBUTES] = clock_attributes,
	[CLOCK_DESCRIBE_RATES] = describe_rates,
	[CLOCK_RATE_SET] = rate_set,
	[CLOCK_RATE_GET] = rate_get,
	[CLOCK_CONFIG_SET] = config_set,
};

static const char *const names[] = {
	"PROTOCOL_VERSION", "PROTOCOL_ATTRIBUTES", "PROTOCOL_MESSAGE_ATTRIBUTES",
	"CLOCK_ATTRIBUTES", "CLOCK_DESCRIBE_RATES", "CLOCK_RATE_SET",
	"CLOCK_RATE_GET", "CLOCK_CONFIG_SET",
};

_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(handlers) / sizeof(handlers[0]),
	       "one name per clock message");

const struct scmi_protocol scmi_proto_clock = {
	.id = SCMI_PROTO_CLOCK,
	.kind = SCMI_KIND_CLOCK,
	.version = CLOCK_VERSION,
	.num_handlers = sizeof(handlers) / sizeof(handlers[0]),
	.handlers = handlers,
	.names = names,
};
