// SPDX-License-Identifier: BSD-3-Clause
/*
 * The probe: read the bootargs, send each op= as one SCMI message on the
 * smc= doorbell, print one line per op (format: README.md, "Output"), then
 * "done", then power the domain off.
 */
#include "probe.h"

/*
 * Xen's vpl011 (backend in Xen) collects a domU's bytes and prints them as
 * "DOM<n>: <line>"; it cuts a line at 126 bytes. Stay well below.
 */
#define LINE_MAX 120U

static char line[LINE_MAX];
static size_t line_len;
static struct probe_config cfg;        /* static: the exception path reads it too */
static bool in_exception;

/* DEN0056 4.1.4; a char array, not pointers (see probe.h) */
static const char status_names[12][20] = {
	"SUCCESS", "NOT_SUPPORTED", "INVALID_PARAMETERS", "DENIED", "NOT_FOUND",
	"OUT_OF_RANGE", "BUSY", "COMMS_ERROR", "GENERIC_ERROR", "HARDWARE_ERROR",
	"PROTOCOL_ERROR", "IN_USE",
};

/* --- one output line, built in a buffer so it can be capped ------------- */

static bool fits(size_t n)
{
	return line_len + n <= LINE_MAX;
}

static void put_n(const char *s, size_t n)
{
	for (size_t i = 0; i < n && line_len < LINE_MAX; i++) {
		line[line_len++] = s[i];
	}
}

static void put(const char *s)
{
	while (*s != '\0' && line_len < LINE_MAX) {
		line[line_len++] = *s++;
	}
}

static size_t hex_digits(uint64_t v, char *buf)
{
	char tmp[16];
	size_t n = 0, i = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v & 0xfU];
		v >>= 4;
	} while (v != 0U);
	buf[i++] = '0';
	buf[i++] = 'x';
	while (n > 0U) {
		buf[i++] = tmp[--n];
	}
	return i;
}

static void put_hex(uint64_t v)
{
	char buf[18];

	put_n(buf, hex_digits(v, buf));
}

static void put_dec(int64_t v)
{
	char tmp[20];
	size_t n = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	if (v < 0) {
		put("-");
	}
	do {
		tmp[n++] = (char)('0' + u % 10U);
		u /= 10U;
	} while (u != 0U);
	while (n > 0U) {
		put_n(&tmp[--n], 1);
	}
}

static void key_hex(const char *key, uint64_t v)
{
	put(" ");
	put(key);
	put("=");
	put_hex(v);
}

static void begin(const char *what)
{
	line_len = 0;
	put("SCMI-PROBE: ");
	put(what);
}

static void end(void)
{
	for (size_t i = 0; i < line_len; i++) {
		port_putc(line[i]);
	}
	port_putc('\n');
}

/* --- one op -------------------------------------------------------------- */

static void put_status(int32_t status)
{
	put(" status=");
	put_dec(status);
	put(" ");
	put(status <= 0 && status >= -11 ? status_names[-status] : "UNKNOWN");
}

/* DISCOVER_AGENT: agent id, then a 16-byte NUL-terminated name */
static void put_agent(const struct smt_reply *r)
{
	char name[16];
	size_t n = 0;

	if (r->nwords < 6U) {
		return;
	}
	put(" agent=");
	put_dec(r->words[1]);
	for (; n < sizeof(name); n++) {
		char c = (char)(r->words[2U + n / 4U] >> (8U * (n % 4U)));

		if (c == '\0') {
			break;
		}
		name[n] = (c > ' ' && c <= '~') ? c : '?';   /* keep the line one token */
	}
	put(" name=");
	put_n(name, n);
}

static void put_data(const struct smt_reply *r)
{
	char buf[18];

	for (uint32_t i = 1; i < r->nwords; i++) {
		size_t n = hex_digits(r->words[i], buf);

		if (!fits(n + 6U)) {       /* " data=" or "," before it: stop whole */
			break;
		}
		put(i == 1U ? " data=" : ",");
		put_n(buf, n);
	}
}

static void run_op(volatile uint32_t *shm, const struct probe_op *op, uint32_t token)
{
	uint32_t header = scmi_header(op->proto, op->msg, token);
	struct smt_reply r;
	uint32_t x0;
	int32_t status;

	smt_post(shm, header, op->words, op->nwords);
	/* SMC32 ids: the result is W0 (Xen writes -1 as 64 bits, the server 32) */
	x0 = (uint32_t)port_smc(cfg.smc, shm);
	port_mb();

	begin("op=");
	put(op->name);
	key_hex("proto", op->proto);
	key_hex("msg", op->msg);
	key_hex("x0", x0);
	if (x0 != 0U) {
		/* refused: nobody answered, so the page holds only our own request */
		put((int32_t)x0 == -1 ? " smc=NOT_SUPPORTED" : " smc=ERROR");
		end();
		return;
	}
	smt_read(shm, &r);
	key_hex("chan", r.channel_status);
	if ((r.channel_status & SMT_CHAN_FREE) == 0U) {
		put(" reply=NONE");            /* the platform never gave the channel back */
	} else if (r.length < 8U) {
		put(" reply=SHORT len=");      /* no room for a status word */
		put_dec(r.length);
	} else {
		status = (int32_t)r.words[0];
		put_status(status);
		if (r.header != header) {
			key_hex("hdr", r.header);  /* the server must leave it as sent */
		}
		if (status == 0 && op->proto == SCMI_PROTO_BASE && op->msg == 0x7U) {
			put_agent(&r);
		} else if (status == 0) {
			put_data(&r);
		}
	}
	end();
}

void probe_main(const void *fdt)
{
	const char *args = NULL, *tok, *why = "";
	size_t len = 0, pos = 0, tlen;
	enum fdt_result found;
	volatile uint32_t *shm;
	uint64_t shm_addr;

	args_init(&cfg);
	found = fdt_chosen_bootargs(fdt, &args, &len);
	if (found == FDT_BAD) {
		begin("error=bad-dtb");
		key_hex("fdt", (uint64_t)(uintptr_t)fdt);
		end();
	} else if (found == FDT_NO_BOOTARGS) {
		begin("error=no-bootargs");
		end();
	}
	while (found == FDT_FOUND && args_next(args, len, &pos, &tok, &tlen)) {
		switch (args_apply(&cfg, tok, tlen, &why)) {
		case ARGS_BAD:
			begin("error=bad-token why=");
			put(why);
			put(" token=");
			put_n(tok, tlen);
			end();
			break;
		case ARGS_IGNORED:
			begin("ignored=");
			put_n(tok, tlen);
			end();
			break;
		default:
			break;
		}
	}

	if (!cfg.have_smc) {
		if (found == FDT_FOUND) {
			begin("error=no-smc");
			end();
		}
	} else {
		if (cfg.have_shmem) {
			shm_addr = cfg.shmem;
			shm = port_shmem(shm_addr);
		} else {
			shm = port_own_page(&shm_addr);
		}
		begin("start");
		key_hex("smc", cfg.smc);
		key_hex("shmem", shm_addr);
		if (!cfg.have_shmem) {
			put(" own_shmem=1");
		}
		put(" ops=");
		put_dec(cfg.nops);
		end();
		for (uint32_t i = 0; i < cfg.nops; i++) {
			run_op(shm, &cfg.ops[i], i + 1U);
		}
	}
	begin("done");
	end();
	port_halt(cfg.power_off);
}

/* From the vectors in start.S: say what happened, then stop (no "done"). */
void probe_exception(uint64_t kind, uint64_t esr, uint64_t far, uint64_t elr)
{
	if (!in_exception) {
		in_exception = true;
		begin("exception");
		key_hex("vector", kind);
		key_hex("esr", esr);
		key_hex("far", far);
		key_hex("elr", elr);
		end();
		port_halt(cfg.power_off);
	}
	port_halt(false);   /* faulted again on the way out: just stop */
}
