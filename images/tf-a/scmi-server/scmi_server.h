/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internal interface of the multi-agent SCMI server: status codes, the
 * message context, the per-protocol handler tables, policy and state.
 * Agents are referred to by *index* into scmi_agents[] inside the server;
 * SCMI agent ids (board ids) appear only on the wire and in the trace.
 */
#ifndef SCMI_SERVER_H
#define SCMI_SERVER_H

#include "scmi_port.h"
#include "scmi_protocols.h"   /* generated from harness/images/scmi/protocols.py */
#include "scmi_tables.h"

/* Status codes, DEN0056 section 4.1.4 */
#define SCMI_SUCCESS             0
#define SCMI_NOT_SUPPORTED      -1
#define SCMI_INVALID_PARAMETERS -2
#define SCMI_DENIED             -3
#define SCMI_NOT_FOUND          -4
#define SCMI_OUT_OF_RANGE       -5
#define SCMI_BUSY               -6
#define SCMI_COMMS_ERROR        -7
#define SCMI_GENERIC_ERROR      -8
#define SCMI_HARDWARE_ERROR     -9
#define SCMI_PROTOCOL_ERROR    -10
#define SCMI_IN_USE            -11

/* DEN0056 4.1.2: agent id 0 identifies the platform; real agents start at 1. */
#define SCMI_PLATFORM_AGENT_ID  0U

/* Messages every protocol has */
#define SCMI_MSG_PROTOCOL_VERSION            0x0U
#define SCMI_MSG_PROTOCOL_ATTRIBUTES         0x1U
#define SCMI_MSG_PROTOCOL_MESSAGE_ATTRIBUTES 0x2U

#define SCMI_SHORT_NAME 16U

/* Resource kinds; each is served by one protocol. */
enum scmi_kind {
	SCMI_KIND_CLOCK = 0,
	SCMI_KIND_RESET = 1,
	SCMI_KIND_POWER = 2,
	SCMI_KIND_SENSOR = 3,
	SCMI_KIND_COUNT = 4,
};

/* Largest message payload accepted / produced (legacy SMT size, as Linux). */
#define SCMI_IN_MAX  128U
#define SCMI_OUT_MAX 128U

/* SMC return values of the doorbell */
#define SCMI_SMC_OK   0
#define SCMI_SMC_UNK -1

struct scmi_msg {
	unsigned int agent;          /* caller, index into scmi_agents[] */
	unsigned int protocol_id;
	unsigned int message_id;
	const uint8_t *in;           /* payload copied out of shared memory */
	size_t in_size;
	uint8_t *out;                /* response payload, status first */
	size_t out_size;
	size_t out_size_out;
	/* trace fragments: " key=value" before and after the status */
	char params[128];
	size_t params_len;
	char results[96];
	size_t results_len;
};

typedef void (*scmi_handler_t)(struct scmi_msg *msg);

struct scmi_protocol {
	uint8_t id;
	int kind;                    /* enum scmi_kind, or -1 for Base */
	uint32_t version;
	uint8_t num_handlers;
	const scmi_handler_t *handlers;   /* indexed by message id */
	const char *const *names;         /* message names, same index */
};

extern const struct scmi_protocol scmi_proto_base;
extern const struct scmi_protocol scmi_proto_clock;
extern const struct scmi_protocol scmi_proto_reset;
extern const struct scmi_protocol scmi_proto_power;
extern const struct scmi_protocol scmi_proto_sensor;

/* scmi_msg.c: dispatch and responses */
void scmi_process_message(struct scmi_msg *msg);
void scmi_status_response(struct scmi_msg *msg, int32_t status);
void scmi_write_response(struct scmi_msg *msg, const void *payload, size_t size);
const struct scmi_protocol *scmi_find_protocol(unsigned int protocol_id);
const struct scmi_protocol *scmi_protocol_of_kind(int kind);
bool scmi_message_exists(const struct scmi_protocol *p, unsigned int message_id);
const struct scmi_protocol *scmi_protocol_at(unsigned int index); /* ascending ids */
void scmi_copy_name(char dst[SCMI_SHORT_NAME], const char *name);
/*
 * The prologue of every handler: the request must be exactly `size` bytes
 * (PROTOCOL_ERROR otherwise, DEN0056 4.1.4); copies it into the handler's
 * typed struct. false = the response is written, return.
 */
bool scmi_get_args(struct scmi_msg *msg, void *args, size_t size);
/*
 * Ids and indexes from the normal world: `index` if below `size`, else 0,
 * computed without a branch and followed by a speculation barrier, so a
 * mispredicted bounds check cannot index past a table (Spectre v1). Use
 * the result, never the raw value, after the bounds check.
 */
unsigned int scmi_confine(uint32_t index, uint32_t size);
/*
 * A resource id of `kind` from a request: NOT_FOUND if there is no such
 * resource, DENIED if need_access and the caller may not use it. Returns the
 * confined id, or -1 when the response is written.
 */
int scmi_resource_id(struct scmi_msg *msg, int kind, uint32_t id, bool need_access);
/* Common handlers shared by all protocols */
void scmi_common_version(struct scmi_msg *msg);
void scmi_common_message_attributes(struct scmi_msg *msg);

/* scmi_trace.c: one line per message, one per state change */
void scmi_trace_u(struct scmi_msg *msg, const char *key, uint64_t value);
void scmi_trace_x(struct scmi_msg *msg, const char *key, uint32_t value);
void scmi_result_u(struct scmi_msg *msg, const char *key, uint64_t value);
void scmi_result_x(struct scmi_msg *msg, const char *key, uint32_t value);
void scmi_result_s(struct scmi_msg *msg, const char *key, const char *value);
void scmi_trace_message(const struct scmi_msg *msg, int32_t status);
void scmi_trace_state(const char *object, unsigned int id, const char *field,
		      uint64_t value, int by_agent, int reset_of);
void scmi_trace_grant(unsigned int agent, unsigned int device, bool granted,
		      int by_agent);
void scmi_trace_protocol(unsigned int agent, unsigned int device,
			 unsigned int protocol_id, bool allowed, int by_agent);
void scmi_trace_agent_reset(unsigned int agent, uint32_t flags, int by_agent);
void scmi_trace_smt(unsigned int agent, const char *error, uint32_t value);
void scmi_trace_boot(void);
void scmi_trace_faults_armed(unsigned int count);
void scmi_trace_fault(const struct scmi_msg *msg, uint32_t kind, int32_t value);

/* Faults on purpose (scmi_fault.c): a per-boot table, read once at init */
#define SCMI_FAULT_MAX		16U
#define SCMI_FAULT_ANY		0xffffffffU
#define SCMI_FAULT_STATUS	1U
#define SCMI_FAULT_BUSY		2U
#define SCMI_FAULT_AGENT_ID	3U
#define SCMI_FAULT_LENGTH	4U
#define SCMI_FAULT_SMC		5U
void scmi_fault_init(const volatile uint32_t *page);
bool scmi_fault_hit(const struct scmi_msg *msg, uint32_t kind, int32_t *value);
void scmi_result_deviation(struct scmi_msg *msg, const char *what);
const char *scmi_status_name(int32_t status);

/* scmi_policy.c: device and protocol permissions */
void scmi_policy_init(void);
bool scmi_policy_may_use(unsigned int agent, int kind, unsigned int res_id);
bool scmi_policy_protocol_allowed(unsigned int agent, unsigned int protocol_id);
int scmi_agent_index(uint32_t agent_id);      /* -1 if unknown */
int scmi_device_index(uint32_t device_id);    /* -1 if unknown */
int32_t scmi_policy_set_device(unsigned int caller, unsigned int agent,
			       unsigned int device, bool allow);
int32_t scmi_policy_set_protocol(unsigned int caller, unsigned int agent,
				 unsigned int device, int kind, bool allow);
void scmi_policy_restore_defaults(unsigned int caller, unsigned int agent);

/* scmi_state.c: virtual resources, their defaults and who touched them */
void scmi_state_init(void);
unsigned int scmi_resource_count(int kind);
uint64_t scmi_clock_rate(unsigned int id);
bool scmi_clock_enabled(unsigned int id);
void scmi_clock_set_rate(unsigned int agent, unsigned int id, uint64_t rate);
void scmi_clock_set_enabled(unsigned int agent, unsigned int id, bool on);
bool scmi_reset_asserted(unsigned int id);
void scmi_reset_set(unsigned int agent, unsigned int id, bool asserted);
void scmi_reset_pulse(unsigned int agent, unsigned int id);
bool scmi_pd_on(unsigned int id);
void scmi_pd_set(unsigned int agent, unsigned int id, bool on);
int64_t scmi_sensor_value(unsigned int id);
void scmi_state_restore_agent(unsigned int caller, unsigned int agent);

/* scmi_smt.c + scmi_server.c: transport and entry points */
void scmi_smt_init_channel(volatile uint32_t *shm);
/* returns the doorbell SMC's x0: SCMI_SMC_OK, or what an "smc" fault makes it */
int32_t scmi_smt_process(unsigned int agent, volatile uint32_t *shm);
void scmi_server_init(void);
int scmi_server_doorbell(uint32_t func_id);

#endif /* SCMI_SERVER_H */
