/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The narrow waist between the portable SCMI server and its environment.
 *
 * Protocol, policy and transport code include only this header (plus the
 * generated board tables), never TF-A headers, so the same .c files build
 * inside TF-A BL31 (tfa/port_tfa.h, tfa/scmi_sip_svc.c) and natively on the
 * host for unit tests (host/port_host.h, host/host_main.c).
 */
#ifndef SCMI_PORT_H
#define SCMI_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef SCMI_SERVER_HOST
#include "host/port_host.h"
#else
#include "tfa/port_tfa.h"
#endif

/*
 * Every port provides:
 *   void scmi_port_puts(const char *line);   one trace line, '\n' included
 *   void scmi_port_lock(void);               serialises the whole server
 *   void scmi_port_unlock(void);
 *   void scmi_port_wmb(void);                order SMT payload before status
 *   void scmi_port_csdb(void);               speculation barrier after a
 *                                            confined index (scmi_confine)
 *   volatile uint32_t *scmi_port_shmem(unsigned int agent_index);
 *                                            the agent's mapped SMT page
 *   const volatile uint32_t *scmi_port_fault_page(void);
 *                                            the page a boot's fault table is
 *                                            loaded into (scmi_fault.c), or NULL
 */
void scmi_port_puts(const char *line);
void scmi_port_lock(void);
void scmi_port_unlock(void);
volatile uint32_t *scmi_port_shmem(unsigned int agent_index);
const volatile uint32_t *scmi_port_fault_page(void);

#endif /* SCMI_PORT_H */
