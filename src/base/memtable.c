/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/memtable.h"

void vmem_init(struct vmem *m, unsigned max)
{
	m->n = 0;
	m->max = max < VMEM_MAX_REGIONS ? max : VMEM_MAX_REGIONS;
}

static int reject(int fd, char *why, size_t whylen, int err, const char *fmt,
		  const struct vhost_user_memory_region *reg)
{
	snprintf(why, whylen, fmt, (unsigned long long)reg->guest_phys_addr,
		 (unsigned long long)reg->memory_size, (unsigned long long)reg->mmap_offset);
	if (fd >= 0)
		close(fd);
	return err;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int vmem_add(struct vmem *m, const struct vhost_user_memory_region *reg, int fd,
	     char *why, size_t whylen)
{
	uint64_t end = reg->mmap_offset + reg->memory_size;
	struct vmem_region *r;
	struct stat st;
	unsigned pos;
	void *map;

	if (fd < 0)
		return reject(fd, why, whylen, -EINVAL,
			      "region gpa 0x%llx size 0x%llx offset 0x%llx comes without an fd", reg);
	if (m->n >= m->max)
		return reject(fd, why, whylen, -ENOSPC,
			      "region gpa 0x%llx size 0x%llx offset 0x%llx is one too many", reg);
	if (!reg->memory_size)
		return reject(fd, why, whylen, -EINVAL,
			      "region gpa 0x%llx size 0x%llx offset 0x%llx is empty", reg);
	if (end < reg->mmap_offset || reg->guest_phys_addr + reg->memory_size < reg->guest_phys_addr ||
	    reg->userspace_addr + reg->memory_size < reg->userspace_addr || end > SIZE_MAX / 2)
		return reject(fd, why, whylen, -EINVAL,
			      "region gpa 0x%llx size 0x%llx offset 0x%llx overflows", reg);
	for (unsigned i = 0; i < m->n; i++)
		if (overlaps(m->r[i].gpa, m->r[i].size, reg->guest_phys_addr, reg->memory_size) ||
		    overlaps(m->r[i].qva, m->r[i].size, reg->userspace_addr, reg->memory_size))
			return reject(fd, why, whylen, -EINVAL,
				      "region gpa 0x%llx size 0x%llx offset 0x%llx overlaps another", reg);
	/*
	 * Touching a mapping beyond the end of its file raises SIGBUS: the
	 * file must hold the whole region now. (A frontend that shrinks an
	 * unsealed file later can still do that; see README, "Trust".)
	 */
	if (fstat(fd, &st) < 0 || (S_ISREG(st.st_mode) && (uint64_t)st.st_size < end))
		return reject(fd, why, whylen, -EINVAL,
			      "region gpa 0x%llx size 0x%llx offset 0x%llx is larger than its file", reg);
	map = mmap(NULL, (size_t)end, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return reject(fd, why, whylen, -errno,
			      "region gpa 0x%llx size 0x%llx offset 0x%llx cannot be mapped", reg);
	close(fd);

	for (pos = 0; pos < m->n && m->r[pos].gpa < reg->guest_phys_addr; pos++)
		;
	memmove(&m->r[pos + 1], &m->r[pos], (m->n - pos) * sizeof(m->r[0]));
	r = &m->r[pos];
	r->gpa = reg->guest_phys_addr;
	r->size = reg->memory_size;
	r->qva = reg->userspace_addr;
	r->mmap_offset = reg->mmap_offset;
	r->map = map;
	r->map_len = (size_t)end;
	r->host = (uint8_t *)map + reg->mmap_offset;
	m->n++;
	return 0;
}

int vmem_remove(struct vmem *m, const struct vhost_user_memory_region *reg)
{
	for (unsigned i = 0; i < m->n; i++) {
		struct vmem_region *r = &m->r[i];

		if (r->gpa == reg->guest_phys_addr && r->size == reg->memory_size &&
		    r->qva == reg->userspace_addr) {
			munmap(r->map, r->map_len);
			memmove(r, r + 1, (m->n - i - 1) * sizeof(*r));
			m->n--;
			return 0;
		}
	}
	return -ENOENT;
}

void vmem_clear(struct vmem *m)
{
	for (unsigned i = 0; i < m->n; i++)
		munmap(m->r[i].map, m->r[i].map_len);
	m->n = 0;
}

void *vmem_qva(const struct vmem *m, uint64_t qva, uint64_t len)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct vmem_region *r = &m->r[i];

		if (qva >= r->qva && qva - r->qva < r->size && len <= r->size - (qva - r->qva))
			return r->host + (qva - r->qva);
	}
	return NULL;
}
