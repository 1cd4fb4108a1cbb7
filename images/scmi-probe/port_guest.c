// SPDX-License-Identifier: BSD-3-Clause
/*
 * Guest port: Xen's emulated PL011 for dom0less domUs, the SMC doorbell
 * and PSCI over HVC, plus the two libc functions GCC may emit calls to.
 *
 * The MMU is off, so every data access is Device-nGnRnE: no unaligned
 * accesses (-mstrict-align), and the UART is touched only with plain
 * 32-bit ldr/str so the trap to Xen carries a valid syndrome (ISV=1),
 * which Xen's MMIO emulation needs.
 */
#include "probe.h"

#define GUEST_PL011_BASE 0x22000000UL   /* xen/include/public/arch-arm.h */
#define UARTDR 0x00U
#define UARTFR 0x18U
#define FR_TXFF (1U << 5)

#define PSCI_0_2_FN_SYSTEM_OFF 0x84000008U

/* start.S */
uint64_t probe_smc(uint64_t fid);
uint64_t probe_hvc(uint64_t fid);

/* One page of our own RAM (in .bss) for when no shmem= is given. */
static uint32_t own_page[1024] __attribute__((aligned(4096)));

static uint32_t mmio_read32(uintptr_t addr)
{
	uint32_t v;

	__asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
	return v;
}

static void mmio_write32(uintptr_t addr, uint32_t v)
{
	__asm__ volatile("str %w0, [%1]" : : "r"(v), "r"(addr) : "memory");
}

void port_putc(char c)
{
	while ((mmio_read32(GUEST_PL011_BASE + UARTFR) & FR_TXFF) != 0U) {
	}
	mmio_write32(GUEST_PL011_BASE + UARTDR, (uint8_t)c);
}

void port_mb(void)
{
	__asm__ volatile("dsb sy\n\tisb" : : : "memory");
}

uint64_t port_smc(uint32_t fid, volatile uint32_t *shm)
{
	uint64_t x0;

	(void)shm;
	port_mb();              /* the message is in memory before the doorbell */
	x0 = probe_smc(fid);
	port_mb();
	return x0;
}

volatile uint32_t *port_shmem(uint64_t addr)
{
	return (volatile uint32_t *)(uintptr_t)addr;   /* MMU off: VA = IPA */
}

volatile uint32_t *port_own_page(uint64_t *addr)
{
	*addr = (uint64_t)(uintptr_t)own_page;         /* PC-relative, so the real address */
	return own_page;
}

void port_halt(bool power_off)
{
	if (power_off) {
		/* Xen's virtual PSCI (the domU's /psci says method = "hvc"):
		 * SYSTEM_OFF shuts this domain down and does not return. */
		(void)probe_hvc(PSCI_0_2_FN_SYSTEM_OFF);
	}
	for (;;) {
		__asm__ volatile("wfi");
	}
}

/* GCC may turn struct copies and zeroing into calls to these. */
void *memset(void *s, int c, size_t n)
{
	uint8_t *p = s;

	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t)c;
	}
	return s;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	for (size_t i = 0; i < n; i++) {
		d[i] = s[i];
	}
	return dst;
}
