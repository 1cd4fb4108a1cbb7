/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TF-A port: only macros here, so the portable files stay free of TF-A
 * headers; the functions live in tfa/scmi_sip_svc.c.
 */
#ifndef SCMI_PORT_TFA_H
#define SCMI_PORT_TFA_H

/* The carve-out is mapped MT_DEVICE: a DSB orders payload before status. */
#define scmi_port_wmb() __asm__ volatile("dsb sy" ::: "memory")
/* CSDB (hint #20): no speculative use of a value masked by scmi_confine() */
#define scmi_port_csdb() __asm__ volatile("hint #20" ::: "memory")

#endif /* SCMI_PORT_TFA_H */
