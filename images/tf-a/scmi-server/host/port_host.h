/* SPDX-License-Identifier: BSD-3-Clause */
/* Host port: plain libc, single-threaded, trace goes to an in-memory log. */
#ifndef SCMI_PORT_HOST_H
#define SCMI_PORT_HOST_H

#define scmi_port_wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define scmi_port_csdb() __asm__ volatile("" ::: "memory")   /* compiler barrier only */

#endif /* SCMI_PORT_HOST_H */
