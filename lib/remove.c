/*
 * shmkit_remove: any object by name, with what it owns, for `shmkit rm`; and the leftovers a
 * kill can leave under a name (an empty file, a semaphore without its region), which must not
 * keep the name from being used again. Never removes what a live creator is still making.
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinds.h"
#include "lease.h"
#include "region.h"

/* Read the header without waiting for READY, so that a region whose creator died while
 * initialising it can still be removed. 0 when the file is a shmkit region; -ENODATA when it
 * is what a create killed before writing the header leaves (shorter than a header, or no
 * magic yet) and nobody is creating it now; -EBUSY when a live creator is still at it. */
static int read_header(const char *name, struct shmkit__hdr *h)
{
	struct stat st;
	ssize_t n;
	int fd, err = 0;

	/* O_NONBLOCK: never wait on a FIFO someone made under the name. */
	fd = shm_open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EBADMSG;
		goto out;
	}
	memset(h, 0, sizeof(*h));
	n = (uint64_t)st.st_size < sizeof(*h) ? 0 : pread(fd, h, sizeof(*h), 0);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != sizeof(*h) || h->magic == 0)
		/* The creator takes its lease right after making the name, before anything
		 * else: no lease means nobody will ever finish this one. */
		err = shmkit__lease_held(fd, SHMKIT__LEASE_CREATOR) ? -EBUSY : -ENODATA;
	else if (h->magic != SHMKIT__MAGIC)
		err = -EBADMSG;
out:
	close(fd);
	return err;
}

SHMKIT__API int shmkit_remove(const char *name)
{
	struct shmkit__hdr h;
	int err;

	if ((err = shmkit_name_check(name)))
		return err;
	err = read_header(name, &h);
	if (err == -ENOENT)
		/* No region: maybe a semaphore's leftover, which would block its create. */
		return shmkit__sem_orphan_remove(name);
	if (err == -ENODATA)
		return shmkit__region_unlink(name);
	if (err)
		return err;
	switch (h.kind) {
	case SHMKIT_KIND_VALUE:
		return shmkit_value_unlink(name);
	case SHMKIT_KIND_ARRAY:
		return shmkit_array_unlink(name);
	case SHMKIT_KIND_LOCK:
		return shmkit_lock_unlink(name);
	case SHMKIT_KIND_SEM:
		return shmkit_sem_unlink(name);
	case SHMKIT_KIND_QUEUE:
		return shmkit_queue_unlink(name);
	case SHMKIT_KIND_PIPE:
		return shmkit_pipe_unlink(name);
	case SHMKIT_KIND_EVENT:
		return shmkit_event_unlink(name);
	case SHMKIT_KIND_COND:
		return shmkit_cond_unlink(name);
	case SHMKIT_KIND_BARRIER:
		return shmkit_barrier_unlink(name);
	case SHMKIT_KIND_BLOCK:
		return shmkit_block_unlink(name);
	default: /* a kind from a newer layout owns nothing we know of */
		return shmkit__region_unlink(name);
	}
}
