/*
 * shmkit_remove: any object by name, with what it owns, for `shmkit rm`; and what a kill can
 * leave under a name (a region whose creator died before it was READY, a semaphore without its
 * region), which must not keep the name from being used again. Only what is provably shmkit's
 * is removed: a region with shmkit's magic, or a semaphore file under the name a shmkit sem
 * owns. A file without the magic is not ours, whatever its size or content: create links the
 * name only once the header is written (region.c), so no shmkit create leaves one behind.
 * Never removes what a live creator is still making.
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include "kinds.h"
#include "lease.h"
#include "region.h"

/* Read the header without waiting for READY, so that a region whose creator died while
 * initialising it can still be removed. 0 when the file is a shmkit region; -EBADMSG when it
 * is not (not a regular file, shorter than a header, no magic or another magic); -EBUSY when a
 * live creator is still at it. */
#define CREATE_GAP_NS (100 * 1000000LL)

/* Whether a creator holds the lease of fd's file, looking again a little later when the file
 * is younger than CREATE_GAP_NS (a creator between making the name and taking its lease). */
static bool fresh_lease_held(int fd, const struct stat *st)
{
	struct timespec now, nap;
	int64_t age;

	if (shmkit__lease_held(fd, SHMKIT__LEASE_CREATOR))
		return true;
	clock_gettime(CLOCK_REALTIME, &now); /* ctime is on the wall clock */
	age = (int64_t)(now.tv_sec - st->st_ctim.tv_sec) * 1000000000LL +
	      (now.tv_nsec - st->st_ctim.tv_nsec);
	if (age >= 0 && age < CREATE_GAP_NS) {
		nap.tv_sec = 0;
		nap.tv_nsec = (long)(CREATE_GAP_NS - age);
		nanosleep(&nap, NULL);
		return shmkit__lease_held(fd, SHMKIT__LEASE_CREATOR);
	}
	return false;
}

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
		/* Not ours -- unless a creator without O_TMPFILE (region.c's fallback, which
		 * makes the name first) is writing it now: it holds its lease, or takes it in
		 * the microseconds after making the name, which a young file may be in. */
		err = fresh_lease_held(fd, &st) ? -EBUSY : -EBADMSG;
	else if (h->magic != SHMKIT__MAGIC)
		err = -EBADMSG;
	else if (atomic_load_explicit(&h->state, memory_order_relaxed) != SHMKIT__STATE_READY &&
		 shmkit__lease_held(fd, SHMKIT__LEASE_CREATOR))
		err = -EBUSY; /* a live creator is still at it: never pull it from under it */
out:
	close(fd);
	return err;
}

/* What shmkit_remove would do with name: 0 and the kind to remove in *kind (SEM_LEFTOVER for a
 * semaphore's file without its region), or why it would refuse. */
#define SEM_LEFTOVER UINT32_MAX

static int judge(const char *name, uint32_t *kind)
{
	struct shmkit__hdr h;
	int err;

	if ((err = shmkit_name_check(name)))
		return err;
	err = read_header(name, &h);
	if (err == -ENOENT && shmkit__sem_orphan_remove(name, true) == 0) {
		/* No region, but a semaphore's leftover, which would block its create. */
		*kind = SEM_LEFTOVER;
		return 0;
	}
	*kind = err ? 0 : h.kind;
	return err;
}

SHMKIT__API int shmkit_remove_check(const char *name)
{
	uint32_t kind;

	return judge(name, &kind);
}

SHMKIT__API int shmkit_remove(const char *name)
{
	uint32_t kind;
	int err;

	if ((err = judge(name, &kind)))
		return err;
	switch (kind) {
	case SEM_LEFTOVER:
		return shmkit__sem_orphan_remove(name, false);
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
