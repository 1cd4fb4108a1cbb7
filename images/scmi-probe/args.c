// SPDX-License-Identifier: BSD-3-Clause
/*
 * The bootargs grammar (README.md, "Bootargs"): blank-separated key=value
 * tokens; smc=, shmem=, end= set the channel and the ending, each op= adds
 * one message, run in order. Tokens with other keys are ignored (and
 * reported), so a bootloader or test may add its own.
 */
#include "probe.h"

/* Base protocol messages by name. No pointers in this table (see probe.h). */
struct op_def {
	char name[PROBE_NAME_LEN];
	uint8_t msg;
	uint8_t min_args;
	uint8_t max_args;
	uint32_t dflt;          /* the optional last argument when left out */
};

static const struct op_def op_defs[] = {
	{ "version",   0x0, 0, 0, 0 },            /* PROTOCOL_VERSION */
	{ "attrs",     0x1, 0, 0, 0 },            /* PROTOCOL_ATTRIBUTES */
	{ "msgattrs",  0x2, 1, 1, 0 },            /* PROTOCOL_MESSAGE_ATTRIBUTES: msg */
	{ "discover",  0x7, 0, 1, 0xffffffffU },  /* DISCOVER_AGENT: [agent], default self */
	{ "setperm",   0x9, 3, 3, 0 },            /* SET_DEVICE_PERMISSIONS: agent:device:flags */
	{ "protoperm", 0xa, 4, 4, 0 },            /* SET_PROTOCOL_PERMISSIONS: agent:device:proto:flags */
	{ "reset",     0xb, 1, 2, 0 },            /* RESET_AGENT_CONFIGURATION: agent[:flags] */
};

#define NUM_OP_DEFS (sizeof(op_defs) / sizeof(op_defs[0]))

void args_init(struct probe_config *cfg)
{
	uint8_t *p = (uint8_t *)cfg;

	for (size_t i = 0; i < sizeof(*cfg); i++) {
		p[i] = 0U;
	}
	cfg->power_off = true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool args_next(const char *s, size_t len, size_t *pos, const char **tok, size_t *tlen)
{
	size_t i = *pos;

	while (i < len && is_blank(s[i])) {
		i++;
	}
	if (i >= len || s[i] == '\0') {
		*pos = len;
		return false;
	}
	*tok = s + i;
	while (i < len && s[i] != '\0' && !is_blank(s[i])) {
		i++;
	}
	*tlen = (size_t)(s + i - *tok);
	*pos = i;
	return true;
}

static bool same(const char *a, size_t alen, const char *b)
{
	size_t i = 0;

	for (; i < alen && b[i] != '\0'; i++) {
		if (a[i] != b[i]) {
			return false;
		}
	}
	return i == alen && b[i] == '\0';
}

static int hexdigit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Decimal, or hex with 0x; no sign, no overflow past max. */
static bool parse_num(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0, base = 10;
	size_t i = 0;

	if (n > 2U && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == n) {
		return false;
	}
	for (; i < n; i++) {
		int d = hexdigit(s[i]);

		if (d < 0 || (uint64_t)d >= base || v > (max - (uint64_t)d) / base) {
			return false;
		}
		v = v * base + (uint64_t)d;
	}
	*out = v;
	return true;
}

/* Split s at ':' into at most max fields; returns the count, or -1 if more. */
static int split_fields(const char *s, size_t n, const char **f, size_t *flen, int max)
{
	int count = 0;
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == ':') {
			if (count == max) {
				return -1;
			}
			f[count] = s + start;
			flen[count] = i - start;
			count++;
			start = i + 1U;
		}
	}
	return count;
}

static enum args_result parse_op(struct probe_config *cfg, const char *s, size_t n,
				 const char **why)
{
	/* name + raw's proto and msg + the payload words */
	const char *f[PROBE_MAX_WORDS + 3U];
	size_t flen[PROBE_MAX_WORDS + 3U];
	int nf = split_fields(s, n, f, flen, (int)(PROBE_MAX_WORDS + 3U));
	struct probe_op *op;
	uint32_t args[PROBE_MAX_WORDS + 2U];
	uint32_t nargs;

	if (nf < 0) {
		*why = "too-many-args";
		return ARGS_BAD;
	}
	if (cfg->nops == PROBE_MAX_OPS) {
		*why = "too-many-ops";
		return ARGS_BAD;
	}
	nargs = (uint32_t)nf - 1U;
	for (uint32_t i = 0; i < nargs; i++) {
		uint64_t v;

		if (!parse_num(f[i + 1U], flen[i + 1U], 0xffffffffU, &v)) {
			*why = "bad-number";
			return ARGS_BAD;
		}
		args[i] = (uint32_t)v;
	}

	op = &cfg->ops[cfg->nops];
	if (same(f[0], flen[0], "raw")) {
		/* raw:proto:msg[:word...] - any protocol, any payload */
		if (nargs < 2U) {
			*why = "raw-needs-proto-and-msg";
			return ARGS_BAD;
		}
		if (args[0] > 0xffU || args[1] > 0xffU) {
			*why = "bad-proto-or-msg";
			return ARGS_BAD;
		}
		op->proto = args[0];
		op->msg = args[1];
		op->nwords = nargs - 2U;
		for (uint32_t i = 0; i < op->nwords; i++) {
			op->words[i] = args[i + 2U];
		}
	} else {
		const struct op_def *d = NULL;

		for (size_t i = 0; i < NUM_OP_DEFS; i++) {
			if (same(f[0], flen[0], op_defs[i].name)) {
				d = &op_defs[i];
			}
		}
		if (d == NULL) {
			*why = "unknown-op";
			return ARGS_BAD;
		}
		if (nargs < d->min_args || nargs > d->max_args) {
			*why = "wrong-arg-count";
			return ARGS_BAD;
		}
		op->proto = SCMI_PROTO_BASE;
		op->msg = d->msg;
		op->nwords = d->max_args;
		for (uint32_t i = 0; i < d->max_args; i++) {
			op->words[i] = i < nargs ? args[i] : d->dflt;
		}
	}
	/* names are short (checked by the table and "raw"): copy with the NUL */
	for (size_t i = 0; i < PROBE_NAME_LEN; i++) {
		op->name[i] = i < flen[0] ? f[0][i] : '\0';
	}
	cfg->nops++;
	return ARGS_OK;
}

enum args_result args_apply(struct probe_config *cfg, const char *tok, size_t tlen,
			    const char **why)
{
	size_t k = 0;
	const char *v;
	size_t vlen;
	uint64_t num;

	while (k < tlen && tok[k] != '=') {
		k++;
	}
	if (k == tlen) {
		return ARGS_IGNORED;
	}
	v = tok + k + 1U;
	vlen = tlen - k - 1U;

	if (same(tok, k, "smc")) {
		if (!parse_num(v, vlen, 0xffffffffU, &num)) {
			*why = "bad-number";
			return ARGS_BAD;
		}
		cfg->smc = (uint32_t)num;
		cfg->have_smc = true;
		return ARGS_OK;
	}
	if (same(tok, k, "shmem")) {
		/* the SMT page is accessed in 32-bit words */
		if (!parse_num(v, vlen, UINT64_MAX, &num) || (num & 3U) != 0U) {
			*why = "bad-address";
			return ARGS_BAD;
		}
		cfg->shmem = num;
		cfg->have_shmem = true;
		return ARGS_OK;
	}
	if (same(tok, k, "end")) {
		if (same(v, vlen, "off")) {
			cfg->power_off = true;
		} else if (same(v, vlen, "wfi")) {
			cfg->power_off = false;
		} else {
			*why = "end-is-off-or-wfi";
			return ARGS_BAD;
		}
		return ARGS_OK;
	}
	if (same(tok, k, "op")) {
		return parse_op(cfg, v, vlen, why);
	}
	return ARGS_IGNORED;
}
