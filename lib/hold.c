/*
 * Holds: whether anyone has an object open, decided by the kernel, so that a name nobody uses
 * any more can be removed without ever pulling one from under a live user.
 *
 * Every handle (C, the tool, Python; created, opened or inherited through fork) read-locks byte
 * SHMKIT__LEASE_HOLD of the region's file through the open file description its mapping
 * references (region.c: bind_common; fork children inherit it with the mapping), as an OFD lock: the kernel drops it when the description's last
 * descriptor closes, which a close or any death does, in any pid namespace. Read locks share,
 * so any number of holders coexist; a write lock on the byte is granted only when nobody holds
 * it. shmkit__remove_unused() takes that write lock and keeps it while it checks and removes the
 * name, so the check and the removal are one step as far as openers are concerned:
 *  - an opener that took its hold first makes the write lock fail: nothing is removed;
 *  - an opener that comes while the remover has the byte waits (hold_take retries), then finds
 *    the name gone (hold_verify) and fails with ENOENT, as if it had come a moment later;
 *  - a creator's name is never taken for unused: the creator holds its creator lease from
 *    before the name exists until READY, and takes its hold before READY.
 * Nothing here trusts a pid or anything written in shared memory.
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hold.h"
#include "lease.h"

/* How long an opener waits for a remover that has the hold byte (it keeps it for a few system
 * calls), and how young a nameless-looking file must be to count as a create in progress (the
 * old create path takes its creator lease a moment after the name appears: remove.c). */
#define HOLD_WAIT_NS (1000 * 1000000LL)
#define YOUNG_NS (1000 * 1000000LL)

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int shmkit__hold_take(int fd)
{
	int64_t deadline = now_ns(CLOCK_MONOTONIC) + HOLD_WAIT_NS;
	struct timespec nap = { 0, 1000000L };
	int rc;

	if (fd < 0)
		return -EBADF;
	while ((rc = shmkit__lease_share(fd, SHMKIT__LEASE_HOLD)) == -EAGAIN) {
		if (now_ns(CLOCK_MONOTONIC) >= deadline)
			return -EBUSY;
		nanosleep(&nap, NULL);
	}
	return rc;
}

/* Whether `name` names the file (dev, ino): 1 yes, 0 no (or gone), -errno unknown. */
static int names_id(const char *name, uint64_t dev, uint64_t ino)
{
	struct stat a;
	int nfd = shm_open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	int same;

	if (nfd < 0)
		return errno == ENOENT ? 0 : -errno;
	same = fstat(nfd, &a) == 0 && (uint64_t)a.st_dev == dev && (uint64_t)a.st_ino == ino;
	close(nfd);
	return same;
}

/* Whether `name` names the file fd is open on: 1 yes, 0 no (or gone), -errno unknown. */
static int names_file(const char *name, int fd)
{
	struct stat b;

	if (fstat(fd, &b) < 0)
		return -errno;
	return names_id(name, (uint64_t)b.st_dev, (uint64_t)b.st_ino);
}

int shmkit__hold_verify(const struct shmkit__region *r)
{
	if (!r->named || !r->ino)
		return 0;
	/* The object's identity, not r->fd's: that is the lease file (lease.c). Unknown (EACCES
	 * after a chmod, say) is not "gone": keep what we opened. */
	return names_id(r->name, r->dev, r->ino) == 0 ? -ENOENT : 0;
}

/* `name` opened (O_NONBLOCK: never wait on a FIFO someone made under it) and fstat'ed into *st:
 * fd, or -errno, or -EBADMSG when it is not a regular file. */
static int open_file(const char *name, int flags, struct stat *st)
{
	int fd, err;

	if ((err = shmkit_name_check(name)))
		return err;
	fd = shm_open(name, flags | O_CLOEXEC | O_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0)
		err = -errno;
	else if (!S_ISREG(st->st_mode))
		err = -EBADMSG;
	else
		return fd;
	close(fd);
	return err;
}

int shmkit__hold_open(const char *name)
{
	struct stat st;
	int fd = open_file(name, O_RDONLY, &st), err;

	if (fd < 0)
		return fd;
	if ((err = shmkit__hold_take(fd)) == 0 && names_file(name, fd) == 0)
		err = -ENOENT;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* With the hold byte write-locked: whether the file is a finished object, or what a create
 * that died left (0: removable), or one a live creator is still making (-EBUSY). */
static int settled(int fd, const struct stat *st)
{
	struct shmkit__hdr h;
	int64_t age;

	memset(&h, 0, sizeof(h));
	if ((uint64_t)st->st_size >= sizeof(h) && pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -errno;
	if (h.magic != 0 && h.magic != SHMKIT__MAGIC)
		return -EBADMSG; /* not a shmkit object: not ours to judge */
	if (h.magic != 0 && atomic_load_explicit(&h.state, memory_order_relaxed) ==
				    SHMKIT__STATE_READY)
		return 0;
	if (shmkit__lease_held(fd, SHMKIT__LEASE_CREATOR))
		return -EBUSY;
	age = now_ns(CLOCK_REALTIME) - ((int64_t)st->st_ctim.tv_sec * 1000000000LL +
					st->st_ctim.tv_nsec);
	return age >= 0 && age < YOUNG_NS ? -EBUSY : 0;
}

int shmkit__remove_unused(const char *name)
{
	struct stat st;
	/* Read-write: a write lock needs it (and a name we may not open so is not ours to drop). */
	int fd = open_file(name, O_RDWR, &st), err;

	if (fd < 0)
		return fd;
	if ((err = shmkit__lease_take(fd, SHMKIT__LEASE_HOLD)) == -EAGAIN) {
		err = -EBUSY; /* somebody has it open */
	} else if (err == 0 && (err = settled(fd, &st)) == 0) {
		/* Nobody holds it and nobody can start to while we keep the byte: remove it, with
		 * what its kind owns, if the name still names this file (names here are random, so
		 * nobody makes it again between this look and the removal). */
		err = names_file(name, fd);
		err = err == 1 ? shmkit_remove(name) : err == 0 ? -ENOENT : err;
	}
	close(fd); /* lets go of the write lock: waiting openers find the name gone */
	return err;
}
