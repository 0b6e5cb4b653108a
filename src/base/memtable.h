/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A frontend's memory as a vhost device sees it: regions it sent with their
 * fds, mapped here, and the translation of its addresses. Every translation
 * checks the whole range [addr, addr + len) against one region, so a buffer
 * that runs off a region's end, or straddles two, is refused rather than
 * followed.
 */
#ifndef VUSER_BASE_MEMTABLE_H
#define VUSER_BASE_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "vuser/uapi/vhost_user.h"

#define VMEM_MAX_REGIONS 509

struct vmem_region {
	uint64_t gpa;          /* guest physical start */
	uint64_t size;
	uint64_t qva;          /* the frontend's own virtual address of gpa */
	uint64_t mmap_offset;
	uint8_t *host;         /* where gpa lives in our address space */
	void *map;             /* the mapping, from file offset 0 */
	size_t map_len;
};

struct vmem {
	unsigned n;
	unsigned max;
	struct vmem_region r[VMEM_MAX_REGIONS]; /* sorted by gpa */
};

void vmem_init(struct vmem *m, unsigned max);

/*
 * Check and map one region. Takes the fd (closed here in every case: the
 * mapping keeps the memory). Returns 0, or a negative errno with why[]
 * describing the rejection.
 */
int vmem_add(struct vmem *m, const struct vhost_user_memory_region *reg, int fd,
	     char *why, size_t whylen);

/* Unmap the region that matches reg exactly; -ENOENT when none does. */
int vmem_remove(struct vmem *m, const struct vhost_user_memory_region *reg);

/* Unmap everything. */
void vmem_clear(struct vmem *m);

/* Host address of [gpa, gpa + len) when it lies in one region, else NULL. */
static inline void *vmem_gpa(const struct vmem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct vmem_region *r = &m->r[i];

		/* Written so that no sum can overflow: gpa - r->gpa only when gpa >= r->gpa. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

/* The same for the frontend's virtual addresses (ring addresses). */
void *vmem_qva(const struct vmem *m, uint64_t qva, uint64_t len);

#endif
