// SPDX-License-Identifier: BSD-3-Clause
/*
 * Entry of scmi-probe. Xen boots a dom0less domU kernel as an arm64 Linux
 * Image: at EL1, MMU and caches off, x0 = the guest DTB's physical address,
 * loaded at the first RAM bank + text_offset (xen/arch/arm/kernel.c,
 * kernel_zimage_place). Everything here is PC-relative (adr/adrp), so the
 * image runs wherever it is put, as long as that is 4 KiB aligned.
 */

/* arm64 Image header, Documentation/arch/arm64/booting.rst */
	.section .head.text, "ax"
	.globl	_start
_start:
	b	entry			/* code0 */
	.long	0			/* code1 */
	.quad	0			/* text_offset: load at the start of RAM */
	.quad	_image_size		/* image_size incl. .bss and stack (absolute, from probe.ld) */
	.quad	0xa			/* flags: LE, 4K pages, placement anywhere (bit 3) */
	.quad	0			/* res2 */
	.quad	0			/* res3 */
	.quad	0			/* res4 */
	.ascii	"ARM\x64"		/* magic at 0x38: what Xen's loader checks */
	.long	0			/* res5 (no PE header) */

	.text
entry:
	mov	x19, x0			/* the DTB, kept in a callee-saved register */
	msr	daifset, #0xf		/* we poll; no interrupts, ever */

	adr	x1, vectors		/* report faults (e.g. an unmapped shmem=) */
	msr	vbar_el1, x1
	isb

	adrp	x1, stack_top
	add	x1, x1, :lo12:stack_top
	mov	sp, x1

	/* .bss is not in the file: nobody promises it is zero */
	adrp	x1, __bss_start
	add	x1, x1, :lo12:__bss_start
	adrp	x2, __bss_end
	add	x2, x2, :lo12:__bss_end
1:	cmp	x1, x2
	b.hs	2f
	str	xzr, [x1], #8
	b	1b
2:
	mov	x0, x19
	bl	probe_main		/* does not return */
3:	wfi
	b	3b

/* uint64_t probe_smc(uint64_t fid): SMCCC call, x1-x7 = 0, returns x0 */
	.globl	probe_smc
probe_smc:
	mov	x1, xzr
	mov	x2, xzr
	mov	x3, xzr
	mov	x4, xzr
	mov	x5, xzr
	mov	x6, xzr
	mov	x7, xzr
	smc	#0
	ret

/* uint64_t probe_hvc(uint64_t fid): the same over HVC (Xen's own services) */
	.globl	probe_hvc
probe_hvc:
	mov	x1, xzr
	mov	x2, xzr
	mov	x3, xzr
	mov	x4, xzr
	mov	x5, xzr
	mov	x6, xzr
	mov	x7, xzr
	hvc	#0
	ret

/* Exception vectors: every entry reports its index and the syndrome. */
	.macro	ventry index
	.balign	0x80
	mov	x0, #\index
	b	exception
	.endm

	.balign	0x800
vectors:
	ventry	0	/* current EL, SP_EL0: sync, irq, fiq, serror */
	ventry	1
	ventry	2
	ventry	3
	ventry	4	/* current EL, SP_ELx */
	ventry	5
	ventry	6
	ventry	7
	ventry	8	/* lower EL, AArch64 */
	ventry	9
	ventry	10
	ventry	11
	ventry	12	/* lower EL, AArch32 */
	ventry	13
	ventry	14
	ventry	15

exception:
	adrp	x1, stack_top		/* the old stack may be what faulted */
	add	x1, x1, :lo12:stack_top
	mov	sp, x1
	mrs	x1, esr_el1
	mrs	x2, far_el1
	mrs	x3, elr_el1
	bl	probe_exception		/* does not return */
	b	3b

	.bss
	.balign	16
stack:
	.space	16384
stack_top:
