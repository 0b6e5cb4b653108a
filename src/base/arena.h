/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shared arena: one memfd mapping that holds a port's rings and buffers,
 * handed to the backend as a single memory region. The backend sees it at
 * the same addresses the port does (guest physical == our virtual), so no
 * translation happens on our side.
 */
#ifndef VUSER_BASE_ARENA_H
#define VUSER_BASE_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct varena {
	int fd;          /* -1 when closed */
	uint8_t *base;   /* NULL when unmapped */
	size_t size;
	size_t used;
};

/* Map size bytes (rounded up to a page) of fresh zeroed shared memory. */
int varena_create(struct varena *a, size_t size, const char *name);

/* Carve size bytes aligned to align (a power of two) from the arena; NULL if full. */
void *varena_carve(struct varena *a, size_t size, size_t align);

/* Unmap and close; safe to call twice. */
void varena_destroy(struct varena *a);

static inline size_t valign_up(size_t v, size_t align)
{
	return (v + align - 1) & ~(align - 1);
}

#endif
