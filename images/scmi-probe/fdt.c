// SPDX-License-Identifier: BSD-3-Clause
/*
 * Just enough of a flattened device tree walker to find /chosen/bootargs
 * (devicetree specification v0.4, chapter 5). The blob comes from Xen, but a
 * probe that faults on a malformed one would tell a test nothing, so every
 * offset is checked against the blob's own sizes. Bytes are read one at a
 * time: big-endian fields, and no alignment assumptions with the MMU off.
 */
#include "probe.h"

#define FDT_MAGIC      0xd00dfeedU
#define FDT_BEGIN_NODE 0x1U
#define FDT_END_NODE   0x2U
#define FDT_PROP       0x3U
#define FDT_NOP        0x4U
#define FDT_END        0x9U

#define FDT_MAX_SIZE   (2U << 20)   /* Xen gives a domU a few KiB; refuse nonsense */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t align4(uint32_t v)
{
	return (v + 3U) & ~3U;
}

/* Length of the NUL-terminated string at p, or -1 if no NUL before max. */
static int32_t bounded_strlen(const uint8_t *p, uint32_t max)
{
	for (uint32_t i = 0; i < max; i++) {
		if (p[i] == 0U) {
			return (int32_t)i;
		}
	}
	return -1;
}

static bool equals(const uint8_t *p, int32_t len, const char *s)
{
	int32_t i = 0;

	for (; i < len && s[i] != '\0'; i++) {
		if (p[i] != (uint8_t)s[i]) {
			return false;
		}
	}
	return i == len && s[i] == '\0';
}

enum fdt_result fdt_chosen_bootargs(const void *fdt, const char **args, size_t *len)
{
	const uint8_t *b = fdt;
	uint32_t total, off, end, strings, strings_size;
	uint32_t depth = 0;
	bool in_chosen = false;

	if (b == NULL || be32(b) != FDT_MAGIC) {
		return FDT_BAD;
	}
	total = be32(b + 4);
	off = be32(b + 8);                 /* off_dt_struct */
	strings = be32(b + 12);            /* off_dt_strings */
	strings_size = be32(b + 32);       /* size_dt_strings (version >= 3) */
	end = be32(b + 36);                /* size_dt_struct (version >= 17) */
	if (total < 40U || total > FDT_MAX_SIZE || be32(b + 20) < 17U ||
	    off > total || end > total - off || strings > total ||
	    strings_size > total - strings) {
		return FDT_BAD;
	}
	end += off;

	for (;;) {
		uint32_t tag;

		if (off + 4U > end) {
			return FDT_BAD;
		}
		tag = be32(b + off);
		off += 4U;
		switch (tag) {
		case FDT_BEGIN_NODE: {
			int32_t n = bounded_strlen(b + off, end - off);

			if (n < 0) {
				return FDT_BAD;
			}
			depth++;
			/* depth 1 is the root node, so /chosen opens at depth 2 */
			if (depth == 2U && equals(b + off, n, "chosen")) {
				in_chosen = true;
			}
			off += align4((uint32_t)n + 1U);
			break;
		}
		case FDT_END_NODE:
			if (depth == 0U) {
				return FDT_BAD;
			}
			if (depth == 2U) {
				in_chosen = false;
			}
			depth--;
			break;
		case FDT_PROP: {
			uint32_t plen, nameoff;
			int32_t n;

			if (off + 8U > end) {
				return FDT_BAD;
			}
			plen = be32(b + off);
			nameoff = be32(b + off + 4U);
			off += 8U;
			if (plen > end - off || nameoff >= strings_size) {
				return FDT_BAD;
			}
			n = bounded_strlen(b + strings + nameoff, strings_size - nameoff);
			if (n < 0) {
				return FDT_BAD;
			}
			if (in_chosen && depth == 2U && equals(b + strings + nameoff, n, "bootargs")) {
				const uint8_t *v = b + off;

				/* a string property ends in NUL; tolerate one that does not */
				while (plen > 0U && v[plen - 1U] == 0U) {
					plen--;
				}
				*args = (const char *)v;
				*len = plen;
				return FDT_FOUND;
			}
			off += align4(plen);
			break;
		}
		case FDT_NOP:
			break;
		case FDT_END:
			return FDT_NO_BOOTARGS;
		default:
			return FDT_BAD;
		}
	}
}
