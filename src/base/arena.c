/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/log.h"

int varena_create(struct varena *a, size_t size, const char *name)
{
	int err;

	a->fd = -1;
	a->base = NULL;
	a->used = 0;
	a->size = valign_up(size, (size_t)sysconf(_SC_PAGESIZE));

	a->fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (a->fd < 0)
		return verr(-errno, "memfd_create(%s): %s", name, strerror(errno));
	if (ftruncate(a->fd, (off_t)a->size) < 0) {
		err = verr(-errno, "ftruncate arena to %zu bytes: %s", a->size, strerror(errno));
		goto close_fd;
	}
	/*
	 * The backend gets this fd with write access; sealing the size stops it
	 * from shrinking the file under our mapping, which would turn our next
	 * access into SIGBUS.
	 */
	if (fcntl(a->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		err = verr(-errno, "sealing the arena: %s", strerror(errno));
		goto close_fd;
	}
	a->base = mmap(NULL, a->size, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
	if (a->base == MAP_FAILED) {
		a->base = NULL;
		err = verr(-errno, "mmap arena of %zu bytes: %s", a->size, strerror(errno));
		goto close_fd;
	}
	return 0;

close_fd:
	close(a->fd);
	a->fd = -1;
	return err;
}

void *varena_carve(struct varena *a, size_t size, size_t align)
{
	size_t off = valign_up(a->used, align);

	if (off > a->size || size > a->size - off)
		return NULL;
	a->used = off + size;
	return a->base + off;
}

void varena_destroy(struct varena *a)
{
	if (a->base)
		munmap(a->base, a->size);
	a->base = NULL;
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
}
