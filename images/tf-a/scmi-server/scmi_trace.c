// SPDX-License-Identifier: BSD-3-Clause
/*
 * Trace lines on the secure console (format: docs/scmi-trace.md).
 *
 * Lines are built with a tiny formatter of our own rather than printf:
 * TF-A's printf has no '#' flag and no snprintf guarantees we can rely on,
 * and the host build must produce byte-identical lines.
 */
#include "scmi_server.h"

struct line {
	char buf[200];
	size_t len;
};

static void put_str(struct line *l, const char *s)
{
	while (*s != '\0' && l->len + 2U < sizeof(l->buf)) {
		l->buf[l->len++] = *s++;
	}
}

/* Values come from the board or the caller: never let one split a token. */
static void put_val(struct line *l, const char *s)
{
	while (*s != '\0' && l->len + 2U < sizeof(l->buf)) {
		char c = *s++;
		l->buf[l->len++] = (c <= ' ' || c > '~') ? '_' : c;
	}
}

static void put_raw(char *buf, size_t size, size_t *len, const char *s)
{
	while (*s != '\0' && *len + 1U < size) {
		buf[(*len)++] = *s++;
	}
	buf[*len] = '\0';
}

static void fmt_u(char *out, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i = 0;

	do {
		tmp[n++] = (char)('0' + (v % 10U));
		v /= 10U;
	} while (v != 0U);
	while (n > 0U) {
		out[i++] = tmp[--n];
	}
	out[i] = '\0';
}

static void fmt_d(char *out, int64_t v)
{
	if (v < 0) {
		out[0] = '-';
		fmt_u(out + 1, (uint64_t)(-(v + 1)) + 1U);
	} else {
		fmt_u(out, (uint64_t)v);
	}
}

static void fmt_x(char *out, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[20];
	size_t n = 0, i = 2;

	out[0] = '0';
	out[1] = 'x';
	do {
		tmp[n++] = digits[v & 0xfU];
		v >>= 4;
	} while (v != 0U);
	while (n > 0U) {
		out[i++] = tmp[--n];
	}
	out[i] = '\0';
}

static void put_kv(struct line *l, const char *key, const char *value)
{
	put_str(l, " ");
	put_str(l, key);
	put_str(l, "=");
	put_val(l, value);
}

static void put_ku(struct line *l, const char *key, uint64_t v)
{
	char num[24];

	fmt_u(num, v);
	put_kv(l, key, num);
}

static void put_kx(struct line *l, const char *key, uint64_t v)
{
	char num[24];

	fmt_x(num, v);
	put_kv(l, key, num);
}

static void emit(struct line *l)
{
	l->buf[l->len++] = '\n';
	l->buf[l->len] = '\0';
	scmi_port_puts(l->buf);
}

/* Fragments: " key=value" appended to the message's trace buffers */
static void frag(char *buf, size_t size, size_t *len, const char *key,
		 const char *value)
{
	put_raw(buf, size, len, " ");
	put_raw(buf, size, len, key);
	put_raw(buf, size, len, "=");
	put_raw(buf, size, len, value);
}

void scmi_trace_u(struct scmi_msg *msg, const char *key, uint64_t value)
{
	char num[24];

	fmt_u(num, value);
	frag(msg->params, sizeof(msg->params), &msg->params_len, key, num);
}

void scmi_trace_x(struct scmi_msg *msg, const char *key, uint32_t value)
{
	char num[24];

	fmt_x(num, value);
	frag(msg->params, sizeof(msg->params), &msg->params_len, key, num);
}

void scmi_result_u(struct scmi_msg *msg, const char *key, uint64_t value)
{
	char num[24];

	fmt_u(num, value);
	frag(msg->results, sizeof(msg->results), &msg->results_len, key, num);
}

void scmi_result_x(struct scmi_msg *msg, const char *key, uint32_t value)
{
	char num[24];

	fmt_x(num, value);
	frag(msg->results, sizeof(msg->results), &msg->results_len, key, num);
}

void scmi_result_s(struct scmi_msg *msg, const char *key, const char *value)
{
	struct line l = { .len = 0 };

	/* sanitise (no blanks) through the line formatter */
	put_val(&l, value);
	l.buf[l.len] = '\0';
	frag(msg->results, sizeof(msg->results), &msg->results_len, key, l.buf);
}

/* A documented deviation from DEN0056 a board opted into (docs/scmi-trace.md). */
void scmi_result_deviation(struct scmi_msg *msg, const char *what)
{
	frag(msg->results, sizeof(msg->results), &msg->results_len, "deviation", what);
}

const char *scmi_status_name(int32_t status)
{
	static const char *const names[] = {
		"SUCCESS", "NOT_SUPPORTED", "INVALID_PARAMETERS", "DENIED",
		"NOT_FOUND", "OUT_OF_RANGE", "BUSY", "COMMS_ERROR",
		"GENERIC_ERROR", "HARDWARE_ERROR", "PROTOCOL_ERROR", "IN_USE",
	};

	if (status <= 0 && status >= SCMI_IN_USE) {
		return names[-status];
	}
	return "UNKNOWN_STATUS";
}

static const char *message_name(unsigned int protocol_id, unsigned int message_id)
{
	const struct scmi_protocol *p = scmi_find_protocol(protocol_id);

	if (p != NULL && message_id < p->num_handlers) {
		const char *name = p->names[scmi_confine(message_id, p->num_handlers)];

		if (name != NULL) {
			return name;
		}
	}
	return "UNKNOWN";
}

void scmi_trace_message(const struct scmi_msg *msg, int32_t status)
{
	struct line l = { .len = 0 };
	char num[24];

	put_str(&l, "SCMI:");
	put_ku(&l, "agent", scmi_agents[msg->agent].id);
	put_kx(&l, "proto", msg->protocol_id);
	put_kx(&l, "msg", msg->message_id);
	put_str(&l, " ");
	put_str(&l, message_name(msg->protocol_id, msg->message_id));
	/* fragments already carry their leading blanks */
	for (size_t i = 0; i < msg->params_len && l.len + 2U < sizeof(l.buf); i++) {
		l.buf[l.len++] = msg->params[i];
	}
	put_str(&l, " -> ");
	put_str(&l, scmi_status_name(status));
	fmt_d(num, status);
	put_str(&l, "(");
	put_str(&l, num);
	put_str(&l, ")");
	for (size_t i = 0; i < msg->results_len && l.len + 2U < sizeof(l.buf); i++) {
		l.buf[l.len++] = msg->results[i];
	}
	emit(&l);
}

static void put_by(struct line *l, int by_agent)
{
	if (by_agent < 0) {
		put_str(l, " by platform");
	} else {
		put_str(l, " by");
		put_ku(l, "agent", scmi_agents[by_agent].id);
	}
}

void scmi_trace_state(const char *object, unsigned int id, const char *field,
		      uint64_t value, int by_agent, int reset_of)
{
	struct line l = { .len = 0 };

	put_str(&l, "SCMI-STATE:");
	put_ku(&l, object, id);
	put_ku(&l, field, value);
	if (reset_of >= 0) {
		put_ku(&l, "reset_of", scmi_agents[reset_of].id);
	}
	put_by(&l, by_agent);
	emit(&l);
}

void scmi_trace_grant(unsigned int agent, unsigned int device, bool granted,
		      int by_agent)
{
	struct line l = { .len = 0 };

	put_str(&l, "SCMI-STATE:");
	put_ku(&l, "device", scmi_devices[device].id);
	put_ku(&l, "agent", scmi_agents[agent].id);
	put_ku(&l, "granted", granted ? 1U : 0U);
	put_by(&l, by_agent);
	emit(&l);
}

void scmi_trace_protocol(unsigned int agent, unsigned int device,
			 unsigned int protocol_id, bool allowed, int by_agent)
{
	struct line l = { .len = 0 };

	put_str(&l, "SCMI-STATE:");
	put_ku(&l, "device", scmi_devices[device].id);
	put_ku(&l, "agent", scmi_agents[agent].id);
	put_kx(&l, "proto", protocol_id);
	put_ku(&l, "allowed", allowed ? 1U : 0U);
	put_by(&l, by_agent);
	emit(&l);
}

void scmi_trace_agent_reset(unsigned int agent, uint32_t flags, int by_agent)
{
	struct line l = { .len = 0 };

	put_str(&l, "SCMI-STATE:");
	put_ku(&l, "agent_reset", scmi_agents[agent].id);
	put_kx(&l, "flags", flags);
	put_by(&l, by_agent);
	emit(&l);
}

void scmi_trace_smt(unsigned int agent, const char *error, uint32_t value)
{
	struct line l = { .len = 0 };

	put_str(&l, "SCMI-SMT:");
	put_ku(&l, "agent", scmi_agents[agent].id);
	put_kv(&l, "error", error);
	put_kx(&l, "value", value);
	emit(&l);
}

void scmi_trace_faults_armed(unsigned int count)
{
	struct line l = { .len = 0 };

	put_str(&l, "SCMI-FAULT:");
	put_ku(&l, "armed", count);
	emit(&l);
}

void scmi_trace_fault(const struct scmi_msg *msg, uint32_t kind, int32_t value)
{
	static const char *const kinds[] = { "none", "status", "busy", "agent-id", "length", "smc" };
	struct line l = { .len = 0 };
	char num[24];

	put_str(&l, "SCMI-FAULT:");
	put_ku(&l, "agent", scmi_agents[msg->agent].id);
	put_kx(&l, "proto", msg->protocol_id);
	put_kx(&l, "msg", msg->message_id);
	put_kv(&l, "kind", kinds[scmi_confine(kind, sizeof(kinds) / sizeof(kinds[0]))]);
	if (value < 0) {
		num[0] = '-';
		fmt_u(num + 1, (uint64_t)(-(int64_t)value));
	} else {
		fmt_u(num, (uint64_t)value);
	}
	put_kv(&l, "value", num);
	emit(&l);
}

void scmi_trace_boot(void)
{
	struct line l = { .len = 0 };

	put_str(&l, "SCMI-BOOT:");
	put_kv(&l, "board", scmi_board_name);
	put_ku(&l, "agents", SCMI_BOARD_NUM_AGENTS);
	put_ku(&l, "devices", SCMI_BOARD_NUM_DEVICES);
	put_ku(&l, "clocks", SCMI_BOARD_NUM_CLOCKS);
	put_ku(&l, "resets", SCMI_BOARD_NUM_RESETS);
	put_ku(&l, "power_domains", SCMI_BOARD_NUM_PDS);
	put_ku(&l, "sensors", SCMI_BOARD_NUM_SENSORS);
	put_kx(&l, "shmem", SCMI_BOARD_SHMEM_BASE);
	if (SCMI_BOARD_AGENT_ID_0_DEVIATION != 0) {
		/* the board opted in: a real agent holds id 0, the platform's (DEN0056 4.1.2) */
		put_kv(&l, "deviation", "agent-id-0");
	}
	emit(&l);
}
