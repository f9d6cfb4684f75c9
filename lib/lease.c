/*
 * Leases: who is alive, as the kernel sees it.
 *
 * Every participant of a region (a queue producer or consumer, a pipe end, a barrier party, a
 * lock holder) sits in a seat, and seat k is *held* while some open file description (OFD) of
 * the region's file holds an OFD write lock (fcntl F_OFD_SETLK) on byte SHMKIT__LEASE_BASE + k.
 * The kernel drops OFD locks when the last descriptor of the description closes, which a
 * process's death does, whatever its pid namespace. So:
 *  - a dead process's seats are free the moment it is gone (no pid, no /proc involved);
 *  - a stopped process still holds its locks: stopped is alive;
 *  - a reused pid, or the same pid in another namespace, is a different description: never
 *    mistaken for the old holder;
 *  - taking seat k (F_OFD_SETLK) is itself exclusive, decided by the kernel, so two processes
 *    can never hold one seat, and whoever takes a seat a dead process held knows it is the only
 *    one cleaning up after it.
 * Anyone can ask whether seat k is held (F_OFD_GETLK), even through a read-only descriptor.
 * A caller that must act on a dead seat (recover a lock its dead holder named) first takes the
 * dead seat's lease itself ("freezes" it), so nobody can take the seat and start using it while
 * the recovery runs, then lets go.
 *
 * Each handle opens its own description (region.c keeps the fd), so two handles in one process
 * hold separate seats. fork() shares descriptions between parent and child: a child holding the
 * parent's leases would make a dead parent look alive, and leases the child took on a shared
 * description would die only with both. So the child handler below gives every region handle
 * of the child a description of its own (reopening /proc/self/fd/N, or the name), before the
 * child can run anything else; the child then takes seats of its own when it needs them.
 *
 * The lease bytes lie far past any region's end (locks need no backing bytes), so they never
 * meet data. The seat table names who holds each seat (for display, for the deadlock
 * detector, and through its gen for whether a record made by a seat's earlier holder is still
 * that holder's); liveness itself is only ever read from the kernel.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hold.h"
#include "lease.h"
#include "mutex.h"
#include "proc.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct shmkit__region *registry;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static int lease_op(int fd, int cmd, short type, uint64_t byte, short *seen)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)byte;
	fl.l_len = 1;
	if (fcntl(fd, cmd, &fl) < 0)
		return -errno;
	if (seen)
		*seen = fl.l_type;
	return 0;
}

int shmkit__lease_take(int fd, uint64_t byte)
{
	int rc = lease_op(fd, F_OFD_SETLK, F_WRLCK, byte, NULL);

	return rc == -EACCES ? -EAGAIN : rc; /* both mean: another description holds it */
}

int shmkit__lease_share(int fd, uint64_t byte)
{
	int rc = lease_op(fd, F_OFD_SETLK, F_RDLCK, byte, NULL);

	return rc == -EACCES ? -EAGAIN : rc;
}

void shmkit__lease_drop(int fd, uint64_t byte)
{
	lease_op(fd, F_OFD_SETLK, F_UNLCK, byte, NULL);
}

int shmkit__lease_held(int fd, uint64_t byte)
{
	short seen = F_UNLCK;
	int rc = lease_op(fd, F_OFD_GETLK, F_WRLCK, byte, &seen);

	/* Unable to ask (no fd, a kernel without OFD locks): say held, so nothing is reclaimed
	 * from a process that may be alive. */
	if (rc < 0)
		return 1;
	return seen != F_UNLCK;
}

/* ---- the registry of mapped regions and fork ------------------------------------------ */

static void reopen_own(struct shmkit__region *r)
{
	char path[64];
	int nfd, flags = (r->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;

	if (r->fd < 0)
		return;
	/* A new description of the same file: /proc/self/fd/N opens the file, not the fd. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->fd);
	nfd = open(path, flags);
	if (nfd < 0 && r->named)
		nfd = shm_open(r->name, flags & ~O_CLOEXEC, 0);
	if (nfd < 0) {
		/* Without a description of our own, any lease we took would be shared with the
		 * parent: take none (seat_take says -ENOLCK), and drop the parent's. */
		close(r->fd);
		r->fd = -1;
		return;
	}
	/* The child holds the object through its own description before the shared one goes
	 * (hold.c), so there is no moment when nobody seems to hold it. */
	(void)shmkit__hold_take(nfd);
	if (dup2(nfd, r->fd) < 0) {
		close(r->fd);
		r->fd = nfd;
	} else {
		close(nfd);
	}
	fcntl(r->fd, F_SETFD, FD_CLOEXEC);
}

static void registry_prepare(void)
{
	pthread_mutex_lock(&registry_mu);
}

static void registry_parent(void)
{
	pthread_mutex_unlock(&registry_mu);
}

static void registry_child(void)
{
	struct shmkit__region *r;

	for (r = registry; r; r = r->next) {
		reopen_own(r);
		/* The parent's seat: the child takes its own when it needs one (the generation in
		 * seat_word already says so); a taker in another thread of the parent may have
		 * held seat_mu, which in the child nobody will release. */
		atomic_store_explicit(&r->seat_word, 0, memory_order_relaxed);
		pthread_mutex_init(&r->seat_mu, NULL);
	}
	pthread_mutex_unlock(&registry_mu);
}

static void registry_init(void)
{
	pthread_atfork(registry_prepare, registry_parent, registry_child);
}

void shmkit__region_track(struct shmkit__region *r)
{
	pthread_once(&registry_once, registry_init);
	pthread_mutex_lock(&registry_mu);
	r->prev = NULL;
	r->next = registry;
	if (registry)
		registry->prev = r;
	registry = r;
	pthread_mutex_unlock(&registry_mu);
}

void shmkit__region_untrack(struct shmkit__region *r)
{
	pthread_mutex_lock(&registry_mu);
	if (r->prev)
		r->prev->next = r->next;
	else if (registry == r)
		registry = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	pthread_mutex_unlock(&registry_mu);
}

int shmkit__region_lookup(uint64_t dev, uint64_t ino, int (*fn)(struct shmkit__region *, void *),
			  void *arg)
{
	struct shmkit__region *r;
	int rc = -ENOENT;

	pthread_mutex_lock(&registry_mu);
	for (r = registry; r; r = r->next) {
		if (r->dev == dev && r->ino == ino && r->hdr) {
			rc = fn(r, arg);
			break;
		}
	}
	pthread_mutex_unlock(&registry_mu);
	return rc;
}

/* ---- seats ---------------------------------------------------------------------------- */

int shmkit__seat_mine(const struct shmkit__region *r)
{
	/* Acquire: pairs with the release store in take_seat, so a thread that sees the seat
	 * sees it fully taken. */
	uint64_t w = atomic_load_explicit(&((struct shmkit__region *)r)->seat_word,
					  memory_order_acquire);

	if (!w || (unsigned)(w >> 32) != shmkit__fork_generation())
		return -1;
	return (int)(uint32_t)w - 1;
}

bool shmkit__seat_alive(const struct shmkit__region *r, uint32_t k)
{
	if (k >= r->nseats)
		return false;
	if ((int)k == shmkit__seat_mine(r))
		return true; /* our own description: GETLK would not report our own lock */
	return shmkit__lease_held(r->fd, SHMKIT__LEASE_BASE + k);
}

uint32_t shmkit__seat_gen(const struct shmkit__region *r, uint32_t k)
{
	return k < r->nseats ? atomic_load_explicit(&r->seats[k].gen, memory_order_relaxed) : 0;
}

bool shmkit__seat_alive_gen(const struct shmkit__region *r, uint32_t k, uint32_t gen)
{
	/* The lease first: a seat taken again after a death has a new gen, and whoever took it
	 * bumped gen before it could be seen alive through this seat. */
	return shmkit__seat_alive(r, k) && shmkit__seat_gen(r, k) == gen;
}

int shmkit__seat_freeze(struct shmkit__region *r, uint32_t k)
{
	if (k >= r->nseats || r->fd < 0 || r->rdonly)
		return -EINVAL;
	if ((int)k == shmkit__seat_mine(r))
		return -EBUSY; /* ours: alive, and never to be released by a recovery */
	return shmkit__lease_take(r->fd, SHMKIT__LEASE_BASE + k);
}

void shmkit__seat_thaw(struct shmkit__region *r, uint32_t k)
{
	shmkit__lease_drop(r->fd, SHMKIT__LEASE_BASE + k);
}

static int take_seat(struct shmkit__region *r, uint32_t k)
{
	struct shmkit__seat *s = &r->seats[k];
	int32_t pid;
	uint64_t start;

	if (shmkit__lease_take(r->fd, SHMKIT__LEASE_BASE + k) < 0)
		return -1;
	/* The lease is ours: whoever sat here before is gone. What it left behind is cleaned up
	 * now, by us alone (nobody else can take the seat while we hold it). */
	/* Release: pairs with the acquire load in shmkit__seat_mine. Published before the lock
	 * is reclaimed, which asks whose seat k is. */
	atomic_store_explicit(&r->seat_word,
			      ((uint64_t)shmkit__fork_generation() << 32) | (k + 1),
			      memory_order_release);
	if (r->lk)
		shmkit__lk_reclaim_seat(r, k);
	shmkit__self(&pid, &start);
	atomic_store_explicit(&s->pid, pid, memory_order_relaxed);
	atomic_store_explicit(&s->start, start, memory_order_relaxed);
	atomic_store_explicit(&s->ns, shmkit__pidns(), memory_order_relaxed);
	atomic_store_explicit(&s->waiting, 0, memory_order_relaxed);
	/* We hold the lease: nobody else writes gen now. */
	atomic_store_explicit(&s->gen, atomic_load_explicit(&s->gen, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&s->state, SHMKIT__SEAT_TAKEN, memory_order_release);
	/* What else the dead occupant left (a queue entry's claims, a pipe end) is its kind's to
	 * clean, which each does when it first uses the seat (queue.c: ensure_part). */
	return (int)k;
}

static int take_free(struct shmkit__region *r)
{
	uint32_t i, k, first;
	int pass, seat;

	if ((seat = shmkit__seat_mine(r)) >= 0)
		return seat; /* another thread took it while we waited */
	/* Start at a place of our own, so processes arriving together do not all contend for
	 * seat 0; take a free-looking seat first, a dead one's only when none is free. */
	first = (uint32_t)shmkit__pid() % r->nseats;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < r->nseats; i++) {
			k = (first + i) % r->nseats;
			if (pass == 0 && atomic_load_explicit(&r->seats[k].state,
							      memory_order_relaxed) != SHMKIT__SEAT_FREE)
				continue;
			if (take_seat(r, k) >= 0)
				return (int)k;
		}
	}
	return -EUSERS;
}

int shmkit__seat_take(struct shmkit__region *r)
{
	int seat;

	if (shmkit__likely((seat = shmkit__seat_mine(r)) >= 0))
		return seat;
	if (r->fd < 0 || r->rdonly || !r->nseats)
		return -ENOLCK;
	/* Threads sharing a handle (a Lock's may be shared) take one seat between them. */
	pthread_mutex_lock(&r->seat_mu);
	seat = take_free(r);
	pthread_mutex_unlock(&r->seat_mu);
	return seat;
}

void shmkit__seat_leave(struct shmkit__region *r)
{
	struct shmkit__seat *s;
	int seat = shmkit__seat_mine(r);

	if (seat < 0)
		return;
	s = &r->seats[seat];
	atomic_store_explicit(&s->waiting, 0, memory_order_relaxed);
	atomic_store_explicit(&s->state, SHMKIT__SEAT_FREE, memory_order_release);
	/* Published free first, lease last: whoever takes the lease finds the seat clean. */
	shmkit__seat_thaw(r, (uint32_t)seat);
	atomic_store_explicit(&r->seat_word, 0, memory_order_relaxed);
}
