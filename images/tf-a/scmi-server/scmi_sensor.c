// SPDX-License-Identifier: BSD-3-Clause
/*
 * Sensor protocol 0x15, version 1.0: descriptions are public, synchronous
 * readings need the sensor through a granted device. No trip points.
 */
#include "scmi_server.h"

#define SENSOR_VERSION          0x10000U
#define SENSOR_DESCRIPTION_GET  0x3U
#define SENSOR_TRIP_POINT_NOTIFY 0x4U
#define SENSOR_TRIP_POINT_CONFIG 0x5U
#define SENSOR_READING_GET      0x6U

#define READING_ASYNC  0x1U
#define DESC_PER_REPLY 4U      /* 8 + 4 * 28 bytes fits SCMI_OUT_MAX */

struct desc_v1 {
	uint32_t id;
	uint32_t attr_low;     /* no async reads, no trip points */
	uint32_t attr_high;    /* [7:0] type, [15:11] signed unit exponent */
	char name[SCMI_SHORT_NAME];
};

struct sensor_protocol_attributes_p2a {
	int32_t status;
	uint32_t attributes;   /* [15:0] sensors, [23:16] 0 async */
	uint32_t reg_low;
	uint32_t reg_high;
	uint32_t reg_len;
};

struct sensor_description_get_a2p {
	uint32_t desc_index;
};

struct sensor_description_get_p2a {
	int32_t status;
	uint32_t num_sensor_flags;   /* [31:16] remaining, [11:0] returned */
	struct desc_v1 desc[DESC_PER_REPLY];
};

struct sensor_reading_get_a2p {
	uint32_t sensor_id;
	uint32_t flags;
};

struct sensor_reading_get_p2a {
	int32_t status;
	uint32_t value_low;
	uint32_t value_high;
};

static void protocol_attributes(struct scmi_msg *msg)
{
	struct sensor_protocol_attributes_p2a r = {
		SCMI_SUCCESS, SCMI_BOARD_NUM_SENSORS & 0xffffU, 0U, 0U, 0U
	};

	if (!scmi_get_args(msg, NULL, 0U)) {
		return;
	}
	scmi_result_u(msg, "sensors", SCMI_BOARD_NUM_SENSORS);
	scmi_write_response(msg, &r, sizeof(r));
}

static void description_get(struct scmi_msg *msg)
{
	struct sensor_description_get_p2a r = { .status = SCMI_SUCCESS };
	struct sensor_description_get_a2p in;
	uint32_t index, n, remaining;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "index", in.desc_index);
	/* DEN0056 SENSOR_DESCRIPTION_GET: desc_index must name a sensor */
	if (in.desc_index >= SCMI_BOARD_NUM_SENSORS) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	index = scmi_confine(in.desc_index, SCMI_BOARD_NUM_SENSORS);
	n = SCMI_BOARD_NUM_SENSORS - index;
	if (n > DESC_PER_REPLY) {
		n = DESC_PER_REPLY;
	}
	remaining = SCMI_BOARD_NUM_SENSORS - index - n;
	r.num_sensor_flags = (remaining << 16) | n;
	for (uint32_t i = 0; i < n; i++) {
		const struct scmi_sensor_desc *s = &scmi_sensors[index + i];

		r.desc[i].id = index + i;
		r.desc[i].attr_low = 0U;
		r.desc[i].attr_high = (uint32_t)s->type |
				      (((uint32_t)s->scale & 0x1fU) << 11);
		scmi_copy_name(r.desc[i].name, s->name);
	}
	scmi_result_u(msg, "returned", n);
	scmi_result_u(msg, "remaining", remaining);
	scmi_write_response(msg, &r, 8U + n * sizeof(struct desc_v1));
}

static void reading_get(struct scmi_msg *msg)
{
	struct sensor_reading_get_p2a r = { .status = SCMI_SUCCESS };
	struct sensor_reading_get_a2p in;
	uint64_t value;
	int id;

	if (!scmi_get_args(msg, &in, sizeof(in))) {
		return;
	}
	scmi_trace_u(msg, "sensor", in.sensor_id);
	scmi_trace_x(msg, "flags", in.flags);
	id = scmi_resource_id(msg, SCMI_KIND_SENSOR, in.sensor_id, true);
	if (id < 0) {
		return;
	}
	if ((in.flags & ~READING_ASYNC) != 0U) {
		scmi_status_response(msg, SCMI_INVALID_PARAMETERS);
		return;
	}
	if ((in.flags & READING_ASYNC) != 0U) {
		scmi_status_response(msg, SCMI_NOT_SUPPORTED);
		return;
	}
	value = (uint64_t)scmi_sensor_value((unsigned int)id);
	r.value_low = (uint32_t)value;
	r.value_high = (uint32_t)(value >> 32);
	scmi_result_u(msg, "value", value);
	scmi_write_response(msg, &r, sizeof(r));
}

static const scmi_handler_t handlers[] = {
	[SCMI_MSG_PROTOCOL_VERSION] = scmi_common_version,
	[SCMI_MSG_PROTOCOL_ATTRIBUTES] = protocol_attributes,
	[SCMI_MSG_PROTOCOL_MESSAGE_ATTRIBUTES] = scmi_common_message_attributes,
	[SENSOR_DESCRIPTION_GET] = description_get,
	[SENSOR_TRIP_POINT_NOTIFY] = NULL,
	[SENSOR_TRIP_POINT_CONFIG] = NULL,
	[SENSOR_READING_GET] = reading_get,
};

static const char *const names[] = {
	"PROTOCOL_VERSION", "PROTOCOL_ATTRIBUTES", "PROTOCOL_MESSAGE_ATTRIBUTES",
	"SENSOR_DESCRIPTION_GET", "SENSOR_TRIP_POINT_NOTIFY",
	"SENSOR_TRIP_POINT_CONFIG", "SENSOR_READING_GET",
};

_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(handlers) / sizeof(handlers[0]),
	       "one name per sensor message");

const struct scmi_protocol scmi_proto_sensor = {
	.id = SCMI_PROTO_SENSOR,
	.kind = SCMI_KIND_SENSOR,
	.version = SENSOR_VERSION,
	.num_handlers = sizeof(handlers) / sizeof(handlers[0]),
	.handlers = handlers,
	.names = names,
};
