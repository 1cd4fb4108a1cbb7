// SPDX-License-Identifier: BSD-3-Clause
/*
 * Virtual resources with real state. Every change is traced and remembers
 * which agent made it, so RESET_AGENT_CONFIGURATION can put back exactly
 * what that agent touched (to the board default).
 */
#include "scmi_server.h"

#define NA SCMI_DIM(SCMI_BOARD_NUM_AGENTS)

static uint64_t clk_rate[SCMI_DIM(SCMI_BOARD_NUM_CLOCKS)];
static uint8_t clk_on[SCMI_DIM(SCMI_BOARD_NUM_CLOCKS)];
static uint8_t rst_asserted[SCMI_DIM(SCMI_BOARD_NUM_RESETS)];
static uint8_t pd_on[SCMI_DIM(SCMI_BOARD_NUM_PDS)];

static uint8_t clk_touched[NA][SCMI_DIM(SCMI_BOARD_NUM_CLOCKS)];
static uint8_t rst_touched[NA][SCMI_DIM(SCMI_BOARD_NUM_RESETS)];
static uint8_t pd_touched[NA][SCMI_DIM(SCMI_BOARD_NUM_PDS)];

void scmi_state_init(void)
{
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_CLOCKS; i++) {
		clk_rate[i] = scmi_clocks[i].default_rate;
		clk_on[i] = scmi_clocks[i].enabled;
	}
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_RESETS; i++) {
		rst_asserted[i] = scmi_resets[i].asserted;
	}
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_PDS; i++) {
		pd_on[i] = scmi_pds[i].on;
	}
	memset(clk_touched, 0, sizeof(clk_touched));
	memset(rst_touched, 0, sizeof(rst_touched));
	memset(pd_touched, 0, sizeof(pd_touched));
}

unsigned int scmi_resource_count(int kind)
{
	switch (kind) {
	case SCMI_KIND_CLOCK:
		return SCMI_BOARD_NUM_CLOCKS;
	case SCMI_KIND_RESET:
		return SCMI_BOARD_NUM_RESETS;
	case SCMI_KIND_POWER:
		return SCMI_BOARD_NUM_PDS;
	case SCMI_KIND_SENSOR:
		return SCMI_BOARD_NUM_SENSORS;
	default:
		return 0U;
	}
}

uint64_t scmi_clock_rate(unsigned int id)
{
	return clk_rate[id];
}

bool scmi_clock_enabled(unsigned int id)
{
	return clk_on[id] != 0U;
}

void scmi_clock_set_rate(unsigned int agent, unsigned int id, uint64_t rate)
{
	clk_touched[agent][id] = 1U;
	if (clk_rate[id] != rate) {
		clk_rate[id] = rate;
		scmi_trace_state("clock", id, "rate", rate, (int)agent, -1);
	}
}

void scmi_clock_set_enabled(unsigned int agent, unsigned int id, bool on)
{
	clk_touched[agent][id] = 1U;
	if ((clk_on[id] != 0U) != on) {
		clk_on[id] = on ? 1U : 0U;
		scmi_trace_state("clock", id, "enabled", on ? 1U : 0U, (int)agent, -1);
	}
}

bool scmi_reset_asserted(unsigned int id)
{
	return rst_asserted[id] != 0U;
}

void scmi_reset_set(unsigned int agent, unsigned int id, bool asserted)
{
	rst_touched[agent][id] = 1U;
	if ((rst_asserted[id] != 0U) != asserted) {
		rst_asserted[id] = asserted ? 1U : 0U;
		scmi_trace_state("reset", id, "asserted", asserted ? 1U : 0U,
				 (int)agent, -1);
	}
}

void scmi_reset_pulse(unsigned int agent, unsigned int id)
{
	/* autonomous reset: the domain ends deasserted */
	rst_touched[agent][id] = 1U;
	rst_asserted[id] = 0U;
	scmi_trace_state("reset", id, "pulsed", 1U, (int)agent, -1);
}

bool scmi_pd_on(unsigned int id)
{
	return pd_on[id] != 0U;
}

void scmi_pd_set(unsigned int agent, unsigned int id, bool on)
{
	pd_touched[agent][id] = 1U;
	if ((pd_on[id] != 0U) != on) {
		pd_on[id] = on ? 1U : 0U;
		scmi_trace_state("power", id, "on", on ? 1U : 0U, (int)agent, -1);
	}
}

int64_t scmi_sensor_value(unsigned int id)
{
	return scmi_sensors[id].value;
}

void scmi_state_restore_agent(unsigned int caller, unsigned int agent)
{
	int by = (int)caller, of = (int)agent;

	for (unsigned int i = 0; i < SCMI_BOARD_NUM_CLOCKS; i++) {
		if (clk_touched[agent][i] == 0U) {
			continue;
		}
		clk_touched[agent][i] = 0U;
		if (clk_rate[i] != scmi_clocks[i].default_rate) {
			clk_rate[i] = scmi_clocks[i].default_rate;
			scmi_trace_state("clock", i, "rate", clk_rate[i], by, of);
		}
		if (clk_on[i] != scmi_clocks[i].enabled) {
			clk_on[i] = scmi_clocks[i].enabled;
			scmi_trace_state("clock", i, "enabled", clk_on[i], by, of);
		}
	}
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_RESETS; i++) {
		if (rst_touched[agent][i] != 0U) {
			rst_touched[agent][i] = 0U;
			if (rst_asserted[i] != scmi_resets[i].asserted) {
				rst_asserted[i] = scmi_resets[i].asserted;
				scmi_trace_state("reset", i, "asserted",
						 rst_asserted[i], by, of);
			}
		}
	}
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_PDS; i++) {
		if (pd_touched[agent][i] != 0U) {
			pd_touched[agent][i] = 0U;
			if (pd_on[i] != scmi_pds[i].on) {
				pd_on[i] = scmi_pds[i].on;
				scmi_trace_state("power", i, "on", pd_on[i], by, of);
			}
		}
	}
}
