// SPDX-License-Identifier: BSD-3-Clause
/*
 * SMT (shared memory transport) channel handling, DEN0056 section 5.1.
 *
 * The page is non-secure memory the agent can change under our feet: read
 * each header word once, copy the payload into a private buffer before
 * parsing it, and touch the page only with aligned 32-bit accesses (it is
 * mapped as Device memory in BL31).
 */
#include "scmi_server.h"

#define SMT_STATUS   1U        /* word offsets in the page */
#define SMT_FLAGS    4U
#define SMT_LENGTH   5U
#define SMT_HEADER   6U
#define SMT_PAYLOAD  7U

#define SMT_FREE     0x1U
#define SMT_ERROR    0x2U

#define HDR_MSG_ID(h)    ((h) & 0xffU)
#define HDR_PROTO_ID(h)  (((h) >> 10) & 0xffU)

void scmi_smt_init_channel(volatile uint32_t *shm)
{
	for (unsigned int i = 0; i < SMT_PAYLOAD; i++) {
		shm[i] = 0U;
	}
	scmi_port_wmb();
	shm[SMT_STATUS] = SMT_FREE;
}

static void finish(volatile uint32_t *shm, const uint32_t *out, size_t size,
		   uint32_t status)
{
	for (size_t i = 0; i < (size + 3U) / 4U; i++) {
		shm[SMT_PAYLOAD + i] = out[i];
	}
	/* the header word stays as the agent wrote it: Linux matches its token */
	shm[SMT_LENGTH] = (uint32_t)(4U + size);
	scmi_port_wmb();
	shm[SMT_STATUS] = status;
}

int32_t scmi_smt_process(unsigned int agent, volatile uint32_t *shm)
{
	uint32_t in[SCMI_IN_MAX / 4U];
	uint32_t out[SCMI_OUT_MAX / 4U];
	struct scmi_msg msg;
	uint32_t status = shm[SMT_STATUS];
	uint32_t length = shm[SMT_LENGTH];
	uint32_t header = shm[SMT_HEADER];
	int32_t fault;

	if ((status & SMT_FREE) != 0U) {
		/* doorbell without a posted message: nothing to answer */
		scmi_trace_smt(agent, "channel-free", status);
		shm[SMT_STATUS] = status | SMT_ERROR;
		return SCMI_SMC_OK;
	}

	memset(&msg, 0, sizeof(msg));
	memset(out, 0, sizeof(out));
	msg.agent = agent;
	msg.protocol_id = HDR_PROTO_ID(header);
	msg.message_id = HDR_MSG_ID(header);
	msg.in = (const uint8_t *)in;
	msg.out = (uint8_t *)out;
	msg.out_size = sizeof(out);

	if (length < 4U || length - 4U > SCMI_IN_MAX) {
		/* cannot trust the length: answer COMMS_ERROR, flag the channel */
		scmi_trace_u(&msg, "length", length);
		scmi_status_response(&msg, SCMI_COMMS_ERROR);
		scmi_trace_message(&msg, SCMI_COMMS_ERROR);
		finish(shm, out, msg.out_size_out, SMT_FREE | SMT_ERROR);
		return SCMI_SMC_OK;
	}

	/* length is the agent's: use it only confined to what was checked */
	msg.in_size = scmi_confine(length - 4U, SCMI_IN_MAX + 1U);
	for (size_t i = 0; i < (msg.in_size + 3U) / 4U; i++) {
		in[i] = shm[SMT_PAYLOAD + i];
	}
	if (scmi_fault_hit(&msg, SCMI_FAULT_BUSY, &fault)) {
		return SCMI_SMC_OK;           /* never answered: the channel stays busy */
	}
	if (scmi_fault_hit(&msg, SCMI_FAULT_SMC, &fault)) {
		return fault;                 /* the SMC itself refused: the message is not taken */
	}
	scmi_process_message(&msg);
	if (scmi_fault_hit(&msg, SCMI_FAULT_LENGTH, &fault)) {
		int64_t size = (int64_t)msg.out_size_out + fault;

		msg.out_size_out = size < 0 ? 0U : (size > (int64_t)sizeof(out) ? sizeof(out) : (size_t)size);
	}
	finish(shm, out, msg.out_size_out, SMT_FREE);
	return SCMI_SMC_OK;
}
