// SPDX-License-Identifier: BSD-3-Clause
/*
 * Host transport shim: runs the portable server in a process so unit tests
 * can drive it without QEMU (harness/images/scmi/host.py speaks this protocol).
 *
 * stdin, one command per line:
 *   faults HEX                             the fault table (scmi_fault.c), before init
 *   init                                   boot the server (tables -> state)
 *   smc FUNC STATUS LENGTH HEADER HEX|-    fill the SMT page of the agent that
 *                                          owns FUNC, ring the doorbell
 * stdout: "T <trace line>" as the server traces, then for smc
 *   "R ret=N status=X length=X header=X payload=HEX", then "." per command.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../scmi_server.h"

#define PAGE 4096U

static uint32_t pages[SCMI_DIM(SCMI_BOARD_NUM_AGENTS)][PAGE / 4U]
	__attribute__((aligned(PAGE)));

void scmi_port_puts(const char *line)
{
	printf("T %s", line);
}

void scmi_port_lock(void)
{
}

void scmi_port_unlock(void)
{
}

volatile uint32_t *scmi_port_shmem(unsigned int agent_index)
{
	return pages[agent_index];
}

static uint32_t fault_page[PAGE / 4U];

const volatile uint32_t *scmi_port_fault_page(void)
{
	return fault_page;
}

/* "faults HEX": the fault table's bytes, before init */
static void faults(const char *hex)
{
	memset(fault_page, 0, sizeof(fault_page));
	for (size_t i = 0; hex[2 * i] != '\0' && hex[2 * i] != '\n' && i < sizeof(fault_page); i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1) {
			break;
		}
		((uint8_t *)fault_page)[i] = (uint8_t)b;
	}
}

static int hexval(char c)
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

static int agent_of(uint32_t func_id)
{
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_AGENTS; i++) {
		if (scmi_agents[i].func_id == func_id) {
			return (int)i;
		}
	}
	return -1;
}

static void smc(char *args)
{
	unsigned int func, status, length, header;
	char hex[2 * PAGE + 2];
	uint8_t *page;
	int agent, ret;
	size_t n = 0;

	if (sscanf(args, "%x %x %x %x %8193s", &func, &status, &length, &header, hex) != 5) {
		printf("E bad smc arguments\n");
		return;
	}
	agent = agent_of(func);
	if (agent >= 0) {
		page = (uint8_t *)pages[agent];
		memset(page + 28, 0, PAGE - 28);
		if (hex[0] != '-') {
			for (size_t i = 0; hex[i] != '\0' && hex[i + 1] != '\0' &&
			     28 + n < PAGE; i += 2) {
				int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);

				if (hi < 0 || lo < 0) {
					printf("E bad payload hex\n");
					return;
				}
				page[28 + n++] = (uint8_t)(hi * 16 + lo);
			}
		}
		pages[agent][1] = status;
		pages[agent][4] = 0;
		pages[agent][5] = length;
		pages[agent][6] = header;
	}
	ret = scmi_server_doorbell(func);
	if (agent < 0) {
		printf("R ret=%d\n", ret);
		return;
	}
	printf("R ret=%d status=%x length=%x header=%x payload=", ret,
	       pages[agent][1], pages[agent][5], pages[agent][6]);
	length = pages[agent][5];
	/* print what the reply claims, bounded by the page */
	for (uint32_t i = 0; length >= 4U && i < length - 4U && 28U + i < PAGE; i++) {
		printf("%02x", ((uint8_t *)pages[agent])[28 + i]);
	}
	printf("\n");
}

int main(void)
{
	char line[2 * PAGE + 128];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (strncmp(line, "init", 4) == 0) {
			scmi_server_init();
		} else if (strncmp(line, "smc ", 4) == 0) {
			smc(line + 4);
		} else if (strncmp(line, "faults ", 7) == 0) {
			faults(line + 7);
		} else if (strncmp(line, "quit", 4) == 0) {
			break;
		} else {
			printf("E unknown command\n");
		}
		printf(".\n");
	}
	return 0;
}
