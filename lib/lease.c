/*
 * Leases: who is alive, as the kernel sees it.
 *
 * Every participant of a region (a queue producer or consumer, a pipe end, a barrier party, a
 * lock holder) sits in a seat, and seat k is *held* while some open file description (OFD)
 * holds an OFD write lock (fcntl F_OFD_SETLK) on byte SHMKIT__LEASE_BASE + k of the region's
 * lease file. The kernel drops OFD locks when the last descriptor of the description closes,
 * which a process's death does, whatever its pid namespace. So:
 *  - a dead process's seats are free the moment it is gone (no pid, no /proc involved);
 *  - a stopped process still holds its locks: stopped is alive;
 *  - a reused pid, or the same pid in another namespace, is a different description: never
 *    mistaken for the old holder;
 *  - taking seat k (F_OFD_SETLK) is itself exclusive, decided by the kernel, so two processes
 *    can never hold one seat, and whoever takes a seat a dead process held knows it is the only
 *    one cleaning up after it.
 * A caller that must act on a dead seat (recover a lock its dead holder named) first takes the
 * dead seat's lease itself ("freezes" it), so nobody can take the seat and start using it while
 * the recovery runs, then lets go.
 *
 * Why a lease file, and not the region's own file: nothing a process that cannot write an
 * object does may touch its seats, liveness or recovery. Whoever can open a file for reading
 * can take read locks on any bytes of it (F_OFD_SETLK or classic F_SETLK, F_RDLCK, even on a
 * whole range at once), and a read lock blocks every write lock on its bytes: on the region's
 * file a mere reader of a 0644 object could hold every seat's byte (every participant refused
 * with -EUSERS), or queue blocking read locks on held seats' bytes and be granted them when a
 * holder dies (the dead would look alive for good). A named region's leases therefore live on a
 * file of their own, /dev/shm/.shmkit-lease-<64 random bits>, made with O_EXCL before the
 * region's name exists (so nobody can make it first, or guess it in time) and with a mode that
 * lets in exactly the classes (owner, group, others) the object's mode lets write: rw for those,
 * nothing for the rest. A reader cannot open it, so cannot lock any byte of it; a writer can,
 * and a writer could rewrite the object itself anyway. The lease file's owner is checked to be
 * the region's at open (a hostile writer rewriting the key points us nowhere else), and the
 * region and its lease file are removed together.
 * The creator's lease (held from before the name appears until the object is READY) stays on
 * the region's file, where openers who cannot read the lease file must see it: it is only ever
 * asked for with a read-lock query, which reports write locks and never a reader's read lock.
 * An anonymous region is shared with fork children only, and a memfd cannot be opened by
 * another user: its leases stay on its own file.
 *
 * Each handle opens its own description (region.c keeps the fd), so two handles in one process
 * hold separate seats. fork() shares descriptions between parent and child: a child holding the
 * parent's leases would make a dead parent look alive, and leases the child took on a shared
 * description would die only with both. So the child handler below gives every region handle
 * of the child a description of its own (reopening /proc/self/fd/N, or the lease file by name),
 * before the child can run anything else; the child then takes seats of its own when it needs
 * them. Without /proc an anonymous region has no name to reopen: a fork child cannot hold its
 * leases (-ENOLCK, see shmkit_strerror).
 *
 * The lease bytes lie far past any file's end (locks need no backing bytes), so they never
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
#include <sys/random.h>
#include <sys/stat.h>
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
	/* Asked as a read lock: only a write lock conflicts with it, so only a lease is seen,
	 * never a read lock a reader took to make the dead look alive. */
	int rc = lease_op(fd, F_OFD_GETLK, F_RDLCK, byte, &seen);

	/* Unable to ask (no fd, a kernel without OFD locks): say held, so nothing is reclaimed
	 * from a process that may be alive. */
	if (rc < 0)
		return 1;
	return seen != F_UNLCK;
}

/* ---- lease files --------------------------------------------------------------------- */

#define LEASE_PREFIX "/.shmkit-lease-"

void shmkit__lease_name(uint64_t key, char *buf, size_t size)
{
	snprintf(buf, size, LEASE_PREFIX "%016llx", (unsigned long long)key);
}

/* Read and write for each class (owner, group, others) the object's mode lets write, nothing
 * for the rest; the owner always (it could chmod the object anyway). */
static unsigned lease_mode(unsigned mode)
{
	unsigned m = 0600;

	if (mode & 0020)
		m |= 0060;
	if (mode & 0002)
		m |= 0006;
	return m;
}

int shmkit__lease_file_create(unsigned mode, uint64_t *key, char *name, size_t size,
			      uint8_t secret[16])
{
	int fd, tries;

	if (getrandom(secret, 16, 0) != 16)
		return -EIO;
	for (tries = 0; tries < 8; tries++) {
		if (getrandom(key, sizeof(*key), 0) != (ssize_t)sizeof(*key))
			return -EIO;
		if (!*key)
			continue;
		shmkit__lease_name(*key, name, size);
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			continue; /* 64 random bits met: draw again */
		if (fd < 0)
			return -errno;
		/* The exact mode, whatever the umask; and the writers' secret (notify.c), which
		 * the mode keeps from everyone else. */
		if (fchmod(fd, lease_mode(mode)) < 0 || pwrite(fd, secret, 16, 0) != 16) {
			int err = -errno;

			close(fd);
			shm_unlink(name);
			return err;
		}
		return fd;
	}
	return -EEXIST;
}

int shmkit__lease_file_open(const char *name, int region_fd, bool rdonly, uint8_t secret[16])
{
	struct stat st, rst;
	int fd = shm_open(name, (rdonly ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
			  0);

	if (fd < 0 && errno == ENOENT)
		/* Removed with its region since we opened that (unlink removes the region's
		 * name first): "not there"; else a region without its lease file. */
		return fstat(region_fd, &rst) == 0 && rst.st_nlink == 0 ? -ENOENT : -EBADMSG;
	if (fd < 0)
		return -errno;
	/* Made by the region's creator: a regular file of the region's owner. Anything else is
	 * a hostile writer's key or a squatter's file. */
	if (fstat(fd, &st) < 0 || fstat(region_fd, &rst) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != rst.st_uid || pread(fd, secret, 16, 0) != 16) {
		close(fd);
		return -EBADMSG;
	}
	return fd;
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
	if (nfd < 0 && (r->lease_name[0] || r->named))
		/* The lease file; or the graph (deadlock.c), which holds its own leases. */
		nfd = shm_open(r->lease_name[0] ? r->lease_name : r->name, flags, 0);
	if (nfd < 0) {
		/* Without a description of our own, any lease we took would be shared with the
		 * parent: take none (seat_take says -ENOLCK), and drop the parent's. */
		close(r->fd);
		r->fd = -1;
		return;
	}
	/* The object itself stays held through the mapping the child inherited (hold.c). */
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
		/* The parent's sleeping threads are not the child's. */
		atomic_store_explicit(&r->sleepers, 0, memory_order_relaxed);
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

/* Take seat k's lease on description fd: the handle's own (mine: it becomes this handle's
 * seat), or a descriptor of its own (shmkit__seat_hold). */
static int take_seat(struct shmkit__region *r, uint32_t k, int fd, bool mine)
{
	struct shmkit__seat *s = &r->seats[k];
	int32_t pid;
	uint64_t start;

	if (shmkit__lease_take(fd, SHMKIT__LEASE_BASE + k) < 0)
		return -1;
	/* The lease is ours: whoever sat here before is gone. What it left behind is cleaned up
	 * now, by us alone (nobody else can take the seat while we hold it). */
	/* Release: pairs with the acquire load in shmkit__seat_mine. Published before the lock
	 * is reclaimed, which asks whose seat k is. */
	if (mine)
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

static int take_free(struct shmkit__region *r, int fd, bool mine)
{
	uint32_t i, k, first;
	int pass, seat;

	if (mine && (seat = shmkit__seat_mine(r)) >= 0)
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
			if ((int)k != shmkit__seat_mine(r) && take_seat(r, k, fd, mine) >= 0)
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
	seat = take_free(r, r->fd, true);
	pthread_mutex_unlock(&r->seat_mu);
	return seat;
}

int shmkit__seat_hold(struct shmkit__region *r, int *fd_out)
{
	char path[64];
	int fd, seat;

	if (r->fd < 0 || r->rdonly || !r->nseats)
		return -ENOLCK;
	/* A description of its own (see reopen_own): its leases are not the handle's. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->fd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && r->lease_name[0])
		fd = shm_open(r->lease_name, O_RDWR | O_CLOEXEC, 0); /* the file leases live on */
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&r->seat_mu);
	seat = take_free(r, fd, false);
	pthread_mutex_unlock(&r->seat_mu);
	if (seat < 0) {
		close(fd);
		return seat;
	}
	*fd_out = fd;
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
