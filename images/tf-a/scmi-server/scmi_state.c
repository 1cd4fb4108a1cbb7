// SPDX-License-Identifier: BSD-3-Clause
/*
 * Virtual resources with real state. Every change is traced and remembers
 * which agent made it: each setting (a clock's rate, a clock's gate, a reset
 * line, a power domain) keeps the agent whose write is in force. A
 * RESET_AGENT_CONFIGURATION puts back (to the board default) exactly the
 * settings whose write in force is the target agent's; a setting another
 * agent wrote later is that agent's and stays.
 */
#include "scmi_server.h"

#define NOBODY 0xFFFFU		/* no agent's write is in force: the board default */

static uint64_t clk_rate[SCMI_DIM(SCMI_BOARD_NUM_CLOCKS)];
static uint8_t clk_on[SCMI_DIM(SCMI_BOARD_NUM_CLOCKS)];
static uint8_t rst_asserted[SCMI_DIM(SCMI_BOARD_NUM_RESETS)];
static uint8_t pd_on[SCMI_DIM(SCMI_BOARD_NUM_PDS)];

/* the agent (index) whose write is in force, or NOBODY */
static uint16_t clk_rate_by[SCMI_DIM(SCMI_BOARD_NUM_CLOCKS)];
static uint16_t clk_on_by[SCMI_DIM(SCMI_BOARD_NUM_CLOCKS)];
static uint16_t rst_by[SCMI_DIM(SCMI_BOARD_NUM_RESETS)];
static uint16_t pd_by[SCMI_DIM(SCMI_BOARD_NUM_PDS)];

static void set_nobody(uint16_t *by, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		by[i] = NOBODY;
	}
}

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
	set_nobody(clk_rate_by, SCMI_BOARD_NUM_CLOCKS);
	set_nobody(clk_on_by, SCMI_BOARD_NUM_CLOCKS);
	set_nobody(rst_by, SCMI_BOARD_NUM_RESETS);
	set_nobody(pd_by, SCMI_BOARD_NUM_PDS);
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
	clk_rate_by[id] = (uint16_t)agent;
	if (clk_rate[id] != rate) {
		clk_rate[id] = rate;
		scmi_trace_state("clock", id, "rate", rate, (int)agent, -1);
	}
}

void scmi_clock_set_enabled(unsigned int agent, unsigned int id, bool on)
{
	clk_on_by[id] = (uint16_t)agent;
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
	rst_by[id] = (uint16_t)agent;
	if ((rst_asserted[id] != 0U) != asserted) {
		rst_asserted[id] = asserted ? 1U : 0U;
		scmi_trace_state("reset", id, "asserted", asserted ? 1U : 0U,
				 (int)agent, -1);
	}
}

void scmi_reset_pulse(unsigned int agent, unsigned int id)
{
	/* autonomous reset: the domain ends deasserted */
	rst_by[id] = (uint16_t)agent;
	rst_asserted[id] = 0U;
	scmi_trace_state("reset", id, "pulsed", 1U, (int)agent, -1);
}

bool scmi_pd_on(unsigned int id)
{
	return pd_on[id] != 0U;
}

void scmi_pd_set(unsigned int agent, unsigned int id, bool on)
{
	pd_by[id] = (uint16_t)agent;
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
		if (clk_rate_by[i] == agent) {
			clk_rate_by[i] = NOBODY;
			if (clk_rate[i] != scmi_clocks[i].default_rate) {
				clk_rate[i] = scmi_clocks[i].default_rate;
				scmi_trace_state("clock", i, "rate", clk_rate[i], by, of);
			}
		}
		if (clk_on_by[i] == agent) {
			clk_on_by[i] = NOBODY;
			if (clk_on[i] != scmi_clocks[i].enabled) {
				clk_on[i] = scmi_clocks[i].enabled;
				scmi_trace_state("clock", i, "enabled", clk_on[i], by, of);
			}
		}
	}
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_RESETS; i++) {
		if (rst_by[i] == agent) {
			rst_by[i] = NOBODY;
			if (rst_asserted[i] != scmi_resets[i].asserted) {
				rst_asserted[i] = scmi_resets[i].asserted;
				scmi_trace_state("reset", i, "asserted",
						 rst_asserted[i], by, of);
			}
		}
	}
	for (unsigned int i = 0; i < SCMI_BOARD_NUM_PDS; i++) {
		if (pd_by[i] == agent) {
			pd_by[i] = NOBODY;
			if (pd_on[i] != scmi_pds[i].on) {
				pd_on[i] = scmi_pds[i].on;
				scmi_trace_state("power", i, "on", pd_on[i], by, of);
			}
		}
	}
}
