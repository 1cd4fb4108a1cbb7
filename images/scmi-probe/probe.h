/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * scmi-probe: a bare-metal aarch64 guest that sends raw SCMI Base messages
 * over SMT shared memory and an SMC doorbell, and prints what came back.
 *
 * The portable files (fdt.c, args.c, smt.c, probe.c) include only
 * freestanding headers and this one, so they build unchanged for the guest
 * (port_guest.c + start.S) and natively for the unit tests (host/).
 * Nothing here may keep a pointer in initialised data: the image is not
 * relocated when loaded, so every address must be computed PC-relative.
 */
#ifndef SCMI_PROBE_H
#define SCMI_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- port: what differs between the guest and the host test build ------- */

void port_putc(char c);
/* SMCCC call: x0 = fid, x1..x7 = 0; returns x0. shm is the page the message
 * was written to (only the host port needs it, to show it to the test). */
uint64_t port_smc(uint32_t fid, volatile uint32_t *shm);
/* The SMT page at guest physical address addr (identity with the MMU off). */
volatile uint32_t *port_shmem(uint64_t addr);
/* A page of the probe's own RAM, for when bootargs give no shmem=. */
volatile uint32_t *port_own_page(uint64_t *addr);
void port_mb(void);
__attribute__((noreturn)) void port_halt(bool power_off);

/* --- fdt.c ---------------------------------------------------------------- */

enum fdt_result { FDT_FOUND = 0, FDT_NO_BOOTARGS = 1, FDT_BAD = 2 };
/* /chosen/bootargs of the flattened device tree at fdt (bounds-checked). */
enum fdt_result fdt_chosen_bootargs(const void *fdt, const char **args, size_t *len);

/* --- args.c: the bootargs grammar (README.md) ------------------------------- */

#define PROBE_MAX_OPS   16U
#define PROBE_MAX_WORDS 8U     /* payload words of one message */
#define PROBE_NAME_LEN  12U

struct probe_op {
	char name[PROBE_NAME_LEN];    /* the op's name as printed: "setperm" */
	uint32_t proto;
	uint32_t msg;
	uint32_t nwords;
	uint32_t words[PROBE_MAX_WORDS];
};

struct probe_config {
	bool have_smc;
	bool have_shmem;
	bool power_off;               /* end=off (default) or end=wfi */
	uint32_t smc;
	uint64_t shmem;
	uint32_t nops;
	struct probe_op ops[PROBE_MAX_OPS];
};

enum args_result { ARGS_OK = 0, ARGS_IGNORED = 1, ARGS_BAD = 2 };

void args_init(struct probe_config *cfg);
/* Next blank-separated token of s[0..len) from *pos; false at the end. */
bool args_next(const char *s, size_t len, size_t *pos, const char **tok, size_t *tlen);
/* Apply one token to cfg; *why names the problem when ARGS_BAD. */
enum args_result args_apply(struct probe_config *cfg, const char *tok, size_t tlen,
			    const char **why);

/* --- smt.c: SCMI message header and SMT channel (DEN0056 5.1) ------------- */

#define SCMI_PROTO_BASE 0x10U
#define SMT_CHAN_FREE   0x1U
#define SMT_CHAN_ERROR  0x2U
#define SMT_MAX_PAYLOAD 128U     /* legacy SMT size, as the server and Linux */

struct smt_reply {
	uint32_t channel_status;
	uint32_t length;             /* 4 (header) + payload bytes */
	uint32_t header;
	uint32_t nwords;             /* payload words read, status first */
	uint32_t words[SMT_MAX_PAYLOAD / 4U];
};

uint32_t scmi_header(uint32_t proto, uint32_t msg, uint32_t token);
void smt_post(volatile uint32_t *shm, uint32_t header, const uint32_t *words, uint32_t nwords);
void smt_read(volatile uint32_t *shm, struct smt_reply *r);

/* --- probe.c ---------------------------------------------------------------- */

__attribute__((noreturn)) void probe_main(const void *fdt);
__attribute__((noreturn)) void probe_exception(uint64_t kind, uint64_t esr, uint64_t far,
					       uint64_t elr);

#endif /* SCMI_PROBE_H */
