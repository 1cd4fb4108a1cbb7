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
#define CONFIG_ENABLE          0x1U

/* Reads the words of a fixed-size request; false = response written. */
static bool read_args(struct scmi_msg *msg, uint32_t *args, size_t count)
{
	if (msg->in_size != count * sizeof(uint32_t)) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return false;
	}
	memcpy(args, msg->in, count * sizeof(uint32_t));
	return true;
}

/* The clock exists (and the caller may use it); false = response written. */
static bool clock_ok(struct scmi_msg *msg, uint32_t id, bool need_access)
{
	if (id >= SCMI_BOARD_NUM_CLOCKS) {
		scmi_status_response(msg, SCMI_NOT_FOUND);
		return false;
	}
	if (need_access && !scmi_policy_may_use(msg->agent, SCMI_KIND_CLOCK, id)) {
		scmi_status_response(msg, SCMI_DENIED);
		return false;
	}
	return true;
}

static void protocol_attributes(struct scmi_msg *msg)
{
	struct {
		int32_t status;
		uint32_t attributes;
	} r = { SCMI_SUCCESS, SCMI_BOARD_NUM_CLOCKS & 0xffffU };  /* 0 async */

	if (msg->in_size != 0U) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return;
	}
	scmi_result_u(msg, "clocks", SCMI_BOARD_NUM_CLOCKS);
	scmi_write_response(msg, &r, sizeof(r));
}

static void clock_attributes(struct scmi_msg *msg)
{
	struct {
		int32_t status;
		uint32_t attributes;
		char name[SCMI_SHORT_NAME];
	} r = { .status = SCMI_SUCCESS };
	uint32_t id;

	if (!read_args(msg, &id, 1)) {
		return;
	}
	scmi_trace_u(msg, "clock", id);
	if (!clock_ok(msg, id, false)) {
		return;
	}
	r.attributes = scmi_clock_enabled(id) ? 1U : 0U;
	scmi_copy_name(r.name, scmi_clocks[id].name);
	scmi_result_s(msg, "name", r.name);
	scmi_write_response(msg, &r, sizeof(r));
}

static void describe_rates(struct scmi_msg *msg)
{
	struct {
		int32_t status;
		uint32_t num_rates_flags;
		uint32_t rates[2 * 12];    /* {low, high} pairs, fits SCMI_OUT_MAX */
	} r = { .status = SCMI_SUCCESS };
	const struct scmi_clock_desc *c;
	uint32_t args[2], index, n, remaining;

	if (!read_args(msg, args, 2)) {
		return;
	}
	index = args[1];
	scmi_trace_u(msg, "clock", args[0]);
	scmi_trace_u(msg, "index", index);
	if (!clock_ok(msg, args[0], false)) {
		return;
	}
	c = &scmi_clocks[args[0]];
	if (index >= c->num_rates) {
		scmi_status_response(msg, SCMI_OUT_OF_RANGE);
		return;
	}
	n = c->num_rates - index;
	if (n > 12U) {
		n = 12U;
	}
	remaining = c->num_rates - index - n;
	/* [31:16] remaining, [12] 0 = discrete list, [11:0] returned */
	r.num_rates_flags = (remaining << 16) | n;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t rate = c->rates[index + i];

		r.rates[2 * i] = (uint32_t)rate;
		r.rates[2 * i + 1] = (uint32_t)(rate >> 32);
	}
	scmi_result_u(msg, "returned", n);
	scmi_result_u(msg, "remaining", remaining);
	scmi_write_response(msg, &r, 8U + 8U * n);
}

/* Pick the supported rate the flags ask for; 0 if there is none. */
static uint64_t round_rate(const struct scmi_clock_desc *c, uint64_t want,
			   uint32_t flags)
{
	uint64_t below = 0, above = 0;
	bool has_below = false, has_above = false;

	for (unsigned int i = 0; i < c->num_rates; i++) {
		uint64_t r = c->rates[i];

		if (r == want) {
			return r;
		}
		if (r < want && (!has_below || r > below)) {
			below = r;
			has_below = true;
		}
		if (r > want && (!has_above || r < above)) {
			above = r;
			has_above = true;
		}
	}
	if ((flags & RATE_SET_ROUND_AUTO) != 0U) {
		if (!has_below) {
			return has_above ? above : 0U;
		}
		if (!has_above) {
			return below;
		}
		return (want - below) <= (above - want) ? below : above;
	}
	if ((flags & RATE_SET_ROUND_UP) != 0U) {
		return has_above ? above : 0U;
	}
	return has_below ? below : 0U;
}

static void rate_set(struct scmi_msg *msg)
{
	struct {
		uint32_t flags;
		uint32_t clock_id;
		uint32_t low;
		uint32_t high;
	} in;
	uint64_t want, rate;

	if (!read_args(msg, (uint32_t *)&in, 4)) {
		return;
	}
	want = ((uint64_t)in.high << 32) | in.low;
	scmi_trace_u(msg, "clock", in.clock_id);
	scmi_trace_x(msg, "flags", in.flags);
	scmi_trace_u(msg, "rate", want);
	if (!clock_ok(msg, in.clock_id, true)) {
		return;
	}
	if ((in.flags & ~0xfU) != 0U) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	if ((in.flags & RATE_SET_ASYNC) != 0U) {
		/* PROTOCOL_ATTRIBUTES advertises 0 pending async requests */
		scmi_status_response(msg, SCMI_NOT_SUPPORTED);
		return;
	}
	rate = round_rate(&scmi_clocks[in.clock_id], want, in.flags);
	if (rate == 0U) {
		scmi_status_response(msg, SCMI_OUT_OF_RANGE);
		return;
	}
	scmi_clock_set_rate(msg->agent, in.clock_id, rate);
	scmi_result_u(msg, "rate", rate);
	scmi_status_response(msg, SCMI_SUCCESS);
}

static void rate_get(struct scmi_msg *msg)
{
	struct {
		int32_t status;
		uint32_t low;
		uint32_t high;
	} r = { .status = SCMI_SUCCESS };
	uint32_t id;
	uint64_t rate;

	if (!read_args(msg, &id, 1)) {
		return;
	}
	scmi_trace_u(msg, "clock", id);
	if (!clock_ok(msg, id, true)) {
		return;
	}
	rate = scmi_clock_rate(id);
	r.low = (uint32_t)rate;
	r.high = (uint32_t)(rate >> 32);
	scmi_result_u(msg, "rate", rate);
	scmi_write_response(msg, &r, sizeof(r));
}

static void config_set(struct scmi_msg *msg)
{
	uint32_t args[2];

	if (!read_args(msg, args, 2)) {
		return;
	}
	scmi_trace_u(msg, "clock", args[0]);
	scmi_trace_x(msg, "attrs", args[1]);
	if (!clock_ok(msg, args[0], true)) {
		return;
	}
	if ((args[1] & ~CONFIG_ENABLE) != 0U) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	scmi_clock_set_enabled(msg->agent, args[0], (args[1] & CONFIG_ENABLE) != 0U);
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
