/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Types of the board tables. The tables themselves (scmi_board.c) and their
 * sizes (scmi_board.h) are generated from boards/<name>.toml by
 * harness/images/scmi/tables.py; nothing here is board specific.
 */
#ifndef SCMI_TABLES_H
#define SCMI_TABLES_H

#include <stdint.h>

#include "scmi_board.h"

/* Array dimensions must stay positive even when a board has no sensors. */
#define SCMI_DIM(n) ((n) > 0 ? (n) : 1)

struct scmi_agent_desc {
	uint32_t id;              /* SCMI agent id (from the board) */
	const char *name;
	uint32_t func_id;         /* SMC function id = this agent's doorbell */
	uint64_t shmem;           /* physical address of its 4 KiB SMT page */
	uint8_t privileged;       /* Xen's management agent */
	uint8_t num_boot_devices;
	const uint8_t *boot_devices; /* device indexes granted at boot */
};

struct scmi_clock_desc {
	const char *name;
	uint8_t num_rates;
	const uint64_t *rates;    /* ascending */
	uint64_t default_rate;
	uint8_t enabled;
};

struct scmi_reset_desc {
	const char *name;
	uint8_t asserted;
};

struct scmi_pd_desc {
	const char *name;
	uint8_t on;
};

struct scmi_sensor_desc {
	const char *name;
	uint8_t type;             /* SCMI sensor type (2 = degrees C, ...) */
	int8_t scale;             /* unit multiplier exponent (-3 = milli) */
	int64_t value;
};

struct scmi_device_desc {
	uint32_t id;              /* SCMI device id (access-controllers arg) */
	const char *name;
	uint8_t num_res[4];       /* per enum scmi_kind */
	const uint8_t *res[4];    /* resource ids per enum scmi_kind */
};

extern const char scmi_board_name[];
extern const struct scmi_agent_desc scmi_agents[SCMI_DIM(SCMI_BOARD_NUM_AGENTS)];
extern const struct scmi_clock_desc scmi_clocks[SCMI_DIM(SCMI_BOARD_NUM_CLOCKS)];
extern const struct scmi_reset_desc scmi_resets[SCMI_DIM(SCMI_BOARD_NUM_RESETS)];
extern const struct scmi_pd_desc scmi_pds[SCMI_DIM(SCMI_BOARD_NUM_PDS)];
extern const struct scmi_sensor_desc scmi_sensors[SCMI_DIM(SCMI_BOARD_NUM_SENSORS)];
extern const struct scmi_device_desc scmi_devices[SCMI_DIM(SCMI_BOARD_NUM_DEVICES)];

#endif /* SCMI_TABLES_H */
