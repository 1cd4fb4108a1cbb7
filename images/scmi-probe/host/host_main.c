// SPDX-License-Identifier: BSD-3-Clause
/*
 * Host port of scmi-probe, for the unit tests (tests/unit/test_scmi_probe.py):
 * the same portable code, with the console on stdout and the doorbell turned
 * into a line exchange with whoever drives the process, so a test can check
 * the exact words posted and answer like Xen or a server would.
 *
 *   usage: scmi-probe-host DTB_FILE
 *   stdout: console lines; for each SMC
 *           "SMC fid=<hex> page=<hex word 0>,<hex word 1>,... (39 words)"
 *   stdin:  per SMC one line "<x0 hex>[ <hex word>,<hex word>,...]": x0 to
 *           return and, optionally, new contents for the page from word 0
 *   at the end: "HALT off" or "HALT wfi", exit status 0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../probe.h"

#define PAGE_WORDS 1024U
#define SHOWN_WORDS (7U + SMT_MAX_PAYLOAD / 4U)   /* header words + payload */

static uint32_t shmem_page[PAGE_WORDS] __attribute__((aligned(4096)));
static uint32_t own_page[PAGE_WORDS] __attribute__((aligned(4096)));

void port_putc(char c)
{
	putchar(c);
}

void port_mb(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

volatile uint32_t *port_shmem(uint64_t addr)
{
	(void)addr;
	return shmem_page;
}

volatile uint32_t *port_own_page(uint64_t *addr)
{
	*addr = (uint64_t)(uintptr_t)own_page;
	return own_page;
}

uint64_t port_smc(uint32_t fid, volatile uint32_t *shm)
{
	char reply[4096];
	char *p, *end;
	uint64_t x0;

	printf("SMC fid=%x page=", fid);
	for (unsigned int i = 0; i < SHOWN_WORDS; i++) {
		printf(i ? ",%x" : "%x", shm[i]);
	}
	printf("\n");
	fflush(stdout);
	if (fgets(reply, sizeof(reply), stdin) == NULL) {
		fprintf(stderr, "scmi-probe-host: no reply to SMC\n");
		exit(2);
	}
	x0 = strtoull(reply, &end, 16);
	p = end;
	while (*p == ' ') {
		p++;
	}
	for (unsigned int i = 0; i < PAGE_WORDS && *p != '\0' && *p != '\n'; i++) {
		shm[i] = (uint32_t)strtoul(p, &end, 16);
		if (end == p) {
			fprintf(stderr, "scmi-probe-host: bad reply %s", reply);
			exit(2);
		}
		p = *end == ',' ? end + 1 : end;
	}
	return x0;
}

void port_halt(bool power_off)
{
	printf("HALT %s\n", power_off ? "off" : "wfi");
	fflush(stdout);
	exit(0);
}

int main(int argc, char **argv)
{
	static uint8_t dtb[1 << 20];
	FILE *f;

	if (argc != 2 || (f = fopen(argv[1], "rb")) == NULL) {
		fprintf(stderr, "usage: scmi-probe-host DTB_FILE\n");
		return 2;
	}
	(void)!fread(dtb, 1, sizeof(dtb), f);
	fclose(f);
	probe_main(dtb);
}
