// SPDX-License-Identifier: BSD-3-Clause
/*
 * SCMI over SMT shared memory, agent side (DEN0056 section 5.1), as Linux's
 * drivers/firmware/arm_scmi/shmem.c does it: 32-bit word accesses only (the
 * page is Device memory for us with the MMU off, and for the server).
 *
 * Page layout, in 32-bit words: 0 reserved, 1 channel status, 2-3 reserved,
 * 4 flags, 5 length (4 + payload bytes), 6 message header, 7.. payload.
 */
#include "probe.h"

#define SMT_STATUS  1U
#define SMT_FLAGS   4U
#define SMT_LENGTH  5U
#define SMT_HEADER  6U
#define SMT_PAYLOAD 7U

/* [7:0] message id, [9:8] type (0 = command), [17:10] protocol, [27:18] token */
uint32_t scmi_header(uint32_t proto, uint32_t msg, uint32_t token)
{
	return (msg & 0xffU) | (proto & 0xffU) << 10 | (token & 0x3ffU) << 18;
}

void smt_post(volatile uint32_t *shm, uint32_t header, const uint32_t *words, uint32_t nwords)
{
	shm[0] = 0U;
	shm[2] = 0U;
	shm[3] = 0U;
	shm[SMT_FLAGS] = 0U;                 /* polled: no completion interrupt */
	shm[SMT_LENGTH] = 4U + 4U * nwords;
	shm[SMT_HEADER] = header;
	for (uint32_t i = 0; i < nwords; i++) {
		shm[SMT_PAYLOAD + i] = words[i];
	}
	port_mb();
	/*
	 * Posting = clearing FREE: the channel now belongs to the platform. A
	 * server that finds FREE set on a doorbell treats it as "nothing posted"
	 * (our TF-A server traces SCMI-SMT error=channel-free).
	 */
	shm[SMT_STATUS] = 0U;
}

void smt_read(volatile uint32_t *shm, struct smt_reply *r)
{
	uint32_t bytes;

	r->channel_status = shm[SMT_STATUS];
	port_mb();   /* the status word first: the rest is valid once FREE is back */
	r->length = shm[SMT_LENGTH];
	r->header = shm[SMT_HEADER];
	bytes = r->length < 4U ? 0U : r->length - 4U;
	if (bytes > SMT_MAX_PAYLOAD) {
		bytes = SMT_MAX_PAYLOAD;
	}
	r->nwords = (bytes + 3U) / 4U;
	for (uint32_t i = 0; i < r->nwords; i++) {
		r->words[i] = shm[SMT_PAYLOAD + i];
	}
}
