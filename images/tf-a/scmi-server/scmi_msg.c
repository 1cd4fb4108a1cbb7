// SPDX-License-Identifier: BSD-3-Clause
/*
 * Message dispatch: find the protocol, check the caller may use it, run the
 * message's handler, trace the outcome. Handlers only ever see a payload
 * already copied out of shared memory and write into a bounded buffer.
 */
#include "scmi_server.h"

/* Ascending protocol ids (scmi_protocols.h): DISCOVER_LIST_PROTOCOLS walks this order. */
static const struct scmi_protocol *const protocols[] = {
	&scmi_proto_base,
	&scmi_proto_power,
	&scmi_proto_clock,
	&scmi_proto_sensor,
	&scmi_proto_reset,
};

#define NUM_PROTOCOLS (sizeof(protocols) / sizeof(protocols[0]))

_Static_assert(NUM_PROTOCOLS == SCMI_NUM_PROTOCOLS,
	       "one handler table per protocol of harness/images/scmi/protocols.py");

const struct scmi_protocol *scmi_protocol_at(unsigned int index)
{
	return index < NUM_PROTOCOLS ? protocols[index] : NULL;
}

unsigned int scmi_confine(uint32_t index, uint32_t size)
{
	/* all ones when index < size: the sign of the 64-bit difference */
	uint32_t mask = (uint32_t)(((int64_t)index - (int64_t)size) >> 63);

	index &= mask;
	scmi_port_csdb();
	return index;
}

bool scmi_get_args(struct scmi_msg *msg, void *args, size_t size)
{
	if (msg->in_size != size) {
		scmi_status_response(msg, SCMI_PROTOCOL_ERROR);
		return false;
	}
	if (size != 0U) {
		memcpy(args, msg->in, size);
	}
	return true;
}

int scmi_resource_id(struct scmi_msg *msg, int kind, uint32_t id, bool need_access)
{
	unsigned int n = scmi_resource_count(kind);

	if (id >= n) {
		scmi_status_response(msg, SCMI_NOT_FOUND);
		return -1;
	}
	id = scmi_confine(id, n);
	if (need_access && !scmi_policy_may_use(msg->agent, kind, id)) {
		scmi_status_response(msg, SCMI_DENIED);
		return -1;
	}
	return (int)id;
}

const struct scmi_protocol *scmi_find_protocol(unsigned int protocol_id)
{
	for (size_t i = 0; i < NUM_PROTOCOLS; i++) {
		if (protocols[i]->id == protocol_id) {
			return protocols[i];
		}
	}
	return NULL;
}

const struct scmi_protocol *scmi_protocol_of_kind(int kind)
{
	for (size_t i = 0; i < NUM_PROTOCOLS; i++) {
		if (protocols[i]->kind == kind) {
			return protocols[i];
		}
	}
	return NULL;
}

bool scmi_message_exists(const struct scmi_protocol *p, unsigned int message_id)
{
	return message_id < p->num_handlers &&
	       p->handlers[scmi_confine(message_id, p->num_handlers)] != NULL;
}

void scmi_copy_name(char dst[SCMI_SHORT_NAME], const char *name)
{
	size_t i = 0;

	memset(dst, 0, SCMI_SHORT_NAME);
	while (name != NULL && name[i] != '\0' && i < SCMI_SHORT_NAME - 1U) {
		dst[i] = name[i];
		i++;
	}
}

void scmi_status_response(struct scmi_msg *msg, int32_t status)
{
	memcpy(msg->out, &status, sizeof(status));
	msg->out_size_out = sizeof(status);
}

void scmi_write_response(struct scmi_msg *msg, const void *payload, size_t size)
{
	if (size < sizeof(int32_t) || size > msg->out_size) {
		/* a handler bug, not the caller's fault: say so, do not overflow */
		scmi_status_response(msg, SCMI_GENERIC_ERROR);
		return;
	}
	memcpy(msg->out, payload, size);
	msg->out_size_out = size;
}

struct protocol_version_p2a {
	int32_t status;
	uint32_t version;
};

struct message_attributes_a2p {
	uint32_t message_id;
};

struct message_attributes_p2a {
	int32_t status;
	uint32_t attributes;
};

void scmi_common_version(struct scmi_msg *msg)
{
	const struct scmi_protocol *p = scmi_find_protocol(msg->protocol_id);
	struct protocol_version_p2a r = { SCMI_SUCCESS, p->version };

	if (!scmi_get_args(msg, NULL, 0U)) {
		return;
	}
	scmi_result_x(msg, "version", r.version);
	scmi_write_response(msg, &r, sizeof(r));
}

void scmi_common_message_attributes(struct scmi_msg *msg)
{
	const struct scmi_protocol *p = scmi_find_protocol(msg->protocol_id);
	struct message_attributes_p2a r = { SCMI_SUCCESS, 0U };
	struct message_attributes_a2p in;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_x(msg, "message", in.message_id);
	if (!scmi_message_exists(p, in.message_id)) {
		scmi_status_response(msg, SCMI_NOT_FOUND);
		return;
	}
	scmi_write_response(msg, &r, sizeof(r));
}

void scmi_process_message(struct scmi_msg *msg)
{
	const struct scmi_protocol *p = scmi_find_protocol(msg->protocol_id);
	int32_t status, fault;

	msg->out_size_out = 0U;
	if (scmi_fault_hit(msg, SCMI_FAULT_STATUS, &fault)) {
		scmi_status_response(msg, fault);    /* as the firmware answered: nothing done */
	} else if (p == NULL) {
		scmi_status_response(msg, SCMI_NOT_SUPPORTED);
	} else if (!scmi_policy_protocol_allowed(msg->agent, p->id)) {
		/* the protocol exists but this agent holds no device using it */
		scmi_status_response(msg, SCMI_DENIED);
	} else if (!scmi_message_exists(p, msg->message_id)) {
		/* DEN0056 4.1.4: a message the protocol does not implement is NOT_FOUND */
		scmi_status_response(msg, SCMI_NOT_FOUND);
	} else {
		p->handlers[scmi_confine(msg->message_id, p->num_handlers)](msg);
	}
	memcpy(&status, msg->out, sizeof(status));
	if (status == SCMI_SUCCESS && msg->protocol_id == SCMI_PROTO_BASE && msg->message_id == 0x7U &&
	    msg->out_size_out >= 8U && scmi_fault_hit(msg, SCMI_FAULT_AGENT_ID, &fault)) {
		memcpy(msg->out + 4U, &fault, sizeof(fault));   /* DISCOVER_AGENT's agent_id, a lie */
	}
	scmi_trace_message(msg, status);
}
