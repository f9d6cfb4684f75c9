/*
 * Regions: create, open and validate, close, unlink.
 *
 * Create is exclusive and fixes the mode with fchmod, so neither a squatter's object nor the
 * umask can decide what we get. The header goes through an INIT state until the creator has
 * initialised the object, so an opener racing the creator waits (a bounded time) instead of
 * reading half-built state, and one whose creator died fails instead of waiting forever: the
 * creator holds a lease (lease.c) from the moment the name exists until the object is READY, so
 * "died while creating" is the kernel's word, not a guess from a pid.
 *
 * Every region ends with a seat table (lease.c) and every handle keeps its own descriptor of
 * the region's file open, because that descriptor is what holds the handle's leases.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "hold.h"
#include "lease.h"
#include "mutex.h"
#include "proc.h"
#include "region.h"
#include "wait.h"

/* How long open waits for a creator that is still initialising. */
#define OPEN_WAIT_NS 1000000000LL

SHMKIT__API int shmkit_name_check(const char *name)
{
	size_t n;

	if (!name || name[0] != '/')
		return -EINVAL;
	for (n = 1; name[n]; n++) {
		char c = name[n];
		if (n > SHMKIT_NAME_MAX)
			return -EINVAL;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	if (n == 1 || !strcmp(name, "/.") || !strcmp(name, "/.."))
		return -EINVAL;
	/* /dev/shm/sem.X is where sem_open keeps semaphore X: such a name is not ours to take. */
	if (!strncmp(name, "/sem.", 5))
		return -EINVAL;
	return 0;
}

void *shmkit__handle_new(size_t size)
{
	shmkit__proc_init(); /* handles must notice a fork: see shmkit__fork_generation() */
	return calloc(1, size);
}

static void write_header(struct shmkit__region *r, uint32_t kind, uint32_t flags,
			 uint64_t seats_off, uint32_t nseats)
{
	struct shmkit__hdr *h = r->hdr;
	int32_t pid;
	uint64_t start;

	shmkit__self(&pid, &start);
	h->version = SHMKIT__LAYOUT_VERSION;
	h->kind = kind;
	h->size = r->size;
	h->flags = flags;
	h->creator_pid = pid;
	h->creator_start = start;
	h->seats_off = seats_off;
	h->nseats = nseats;
	atomic_store_explicit(&h->state, SHMKIT__STATE_INIT, memory_order_relaxed);
	/* M1: establishes a synchronizing edge with M2 (the acquire load of magic in
	 * await_header): an opener that sees the magic sees every field above. Last. */
	atomic_store_explicit((_Atomic uint64_t *)&h->magic, SHMKIT__MAGIC, memory_order_release);
}

/* Process-local bookkeeping every handle has, from a mapped and validated region. */
/*
 * The descriptor that holds this handle's leases must not be the one its mapping was made
 * through: a mapping keeps its open file description alive, and a fork child inherits the
 * mapping, so leases on that description would outlive the process that took them for as long
 * as any child of it lives (a dead lock holder's child would keep the holder "alive"). So the
 * region is mapped through `fd` and the leases go on a second description of the same file,
 * which no mapping references and which a fork child replaces (lease.c). `creating`: the
 * creator's lease, taken on `fd` the moment the name existed, moves to the new description.
 * Without /proc (and for an anonymous region, without a name to open again) the mapping's own
 * description has to serve, and a fork child then keeps its parent's leases.
 */
static int lease_fd(struct shmkit__region *r, int fd, bool creating)
{
	int flags = (r->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
	struct stat a, b;
	char path[64];
	int lfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	lfd = open(path, flags);
	if (lfd < 0 && r->named)
		lfd = shm_open(r->name, flags, 0);
	if (lfd >= 0 && (fstat(lfd, &a) < 0 || fstat(fd, &b) < 0 || a.st_dev != b.st_dev ||
			 a.st_ino != b.st_ino)) {
		close(lfd); /* the name now holds another file */
		lfd = -1;
	}
	if (lfd < 0)
		return fd;
	if (creating) {
		if (shmkit__lease_take(lfd, SHMKIT__LEASE_CREATOR) < 0) {
			close(lfd);
			return fd;
		}
		shmkit__lease_drop(fd, SHMKIT__LEASE_CREATOR);
	}
	close(fd); /* the mapping keeps its description */
	return lfd;
}

static void bind_common(struct shmkit__region *r, int fd, uint64_t seats_off, uint32_t nseats,
			uint32_t lk_off, bool creating)
{
	struct stat st;

	r->lk = lk_off ? (struct shmkit__lk *)((char *)r->hdr + lk_off) : NULL;
	r->lk_recursive = r->hdr->flags & SHMKIT_RECURSIVE;
	r->fd = lease_fd(r, fd, creating);
	fd = r->fd;
	/* Every handle holds the file (hold.c): nobody removes a name unused while it is open.
	 * Failing that (a remover kept the byte past the wait), open checks the name below. */
	(void)shmkit__hold_take(fd);
	pthread_mutex_init(&r->seat_mu, NULL);
	r->obj_size = (size_t)seats_off;
	r->nseats = nseats;
	r->seats = (struct shmkit__seat *)((char *)r->hdr + r->obj_size);
	if (fstat(fd, &st) == 0) {
		r->dev = (uint64_t)st.st_dev;
		r->ino = (uint64_t)st.st_ino;
	}
	shmkit__region_track(r);
}

static size_t seats_at(size_t size)
{
	return (size + SHMKIT__CACHELINE - 1) & ~(size_t)(SHMKIT__CACHELINE - 1);
}

/*
 * Make `name` exclusively, with the creator's lease already held when the name appears, so that
 * `shmkit rm` can never mistake a live create for a dead one's leftover. The file is made
 * nameless (O_TMPFILE in /dev/shm), leased, then linked under the name, which fails if the name
 * is taken (exclusive, like O_EXCL). Where that cannot be done (no O_TMPFILE, no /proc), the
 * name is made with O_EXCL and leased a moment later; rm then waits out a young nameless-
 * looking file before judging it (remove.c).
 */
static int create_leased(const char *name)
{
	char path[SHMKIT_NAME_MAX + 16], self[64];
	int fd, err;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		if ((err = shmkit__lease_take(fd, SHMKIT__LEASE_CREATOR)) == 0 &&
		    linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
			return fd;
		err = err ? err : -errno;
		close(fd);
		if (err == -EEXIST || err == -ENOSPC || err == -EACCES || err == -EROFS)
			return err;
		/* No /proc, or linkat refused: the old way below. */
	}
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if ((err = shmkit__lease_take(fd, SHMKIT__LEASE_CREATOR)) < 0) {
		close(fd);
		shm_unlink(name);
		return err;
	}
	return fd;
}

int shmkit__region_create(const char *name, uint32_t kind, uint32_t flags, size_t size,
			  uint32_t nseats, unsigned mode, struct shmkit__region *r)
{
	size_t off = seats_at(size);
	int fd, err;
	void *p;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (size < sizeof(struct shmkit__hdr) || nseats > SHMKIT__SEATS_MAX)
		return -EINVAL;
	if (mode == 0)
		mode = 0600;
	/* Permission bits only: set-id and sticky bits mean nothing on shared memory. */
	if (mode & ~0777u)
		return -EINVAL;
	if (name && (err = shmkit_name_check(name)))
		return err;
	r->size = off + (size_t)nseats * sizeof(struct shmkit__seat);
	if (!name) {
		/* Anonymous, for fork: a memfd rather than MAP_ANONYMOUS, because leases need a
		 * file to lock. */
		fd = memfd_create("shmkit", MFD_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, (off_t)r->size) < 0)
			goto fail_errno;
	} else {
		if ((fd = create_leased(name)) < 0)
			return fd;
		/* From here on the name is ours, and leased: every failure removes it. */
		if (fchmod(fd, mode) < 0)
			goto fail_errno;
		/* Reserve the pages now: ENOSPC here beats SIGBUS on first touch later. */
		err = posix_fallocate(fd, 0, (off_t)r->size);
		if (err == EOPNOTSUPP || err == EINVAL)
			err = ftruncate(fd, (off_t)r->size) < 0 ? errno : 0;
		if (err) {
			errno = err;
			goto fail_errno;
		}
	}
	p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail_errno;
	r->hdr = p;
	if (name) {
		r->named = true;
		snprintf(r->name, sizeof(r->name), "%s", name);
	}
	write_header(r, kind, flags, off, nseats);
	bind_common(r, fd, off, nseats, 0, name != NULL);
	return 0;

fail_errno:
	err = -errno;
	close(fd);
	if (name)
		shm_unlink(name);
	return err;
}

void shmkit__region_set_lock(struct shmkit__region *r, struct shmkit__lk *lk)
{
	r->hdr->lk_off = (uint32_t)((char *)lk - (char *)r->hdr);
	r->lk = lk;
	r->lk_recursive = r->hdr->flags & SHMKIT_RECURSIVE;
	shmkit__lk_init(lk);
}

void shmkit__region_ready(struct shmkit__region *r)
{
	/* Y1: establishes a synchronizing edge with Y2 (the acquire loads of state in
	 * await_header): READY publishes the object the creator initialised. */
	atomic_store_explicit(&r->hdr->state, SHMKIT__STATE_READY, memory_order_release);
	shmkit__lease_drop(r->fd, SHMKIT__LEASE_CREATOR);
}

void shmkit__region_abort(struct shmkit__region *r)
{
	if (r->named)
		shm_unlink(r->name);
	shmkit__region_close(r);
}

void shmkit__region_close(struct shmkit__region *r)
{
	if (r->hdr) {
		shmkit__seat_leave(r);
		shmkit__region_untrack(r);
		munmap(r->hdr, r->size);
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->hdr = NULL;
}

int shmkit__region_unlink(const char *name)
{
	int err = shmkit_name_check(name);

	if (err)
		return err;
	return shm_unlink(name) < 0 ? -errno : 0;
}

static void nap_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

/* Check what fstat says against what a region must be; fills *st. */
static int check_file(int fd, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EBADMSG;
	/* Someone else's object that others may write could be rewritten under us at any time. */
	if (st->st_uid != geteuid() && (st->st_mode & (S_IWGRP | S_IWOTH)))
		return -EACCES;
	return 0;
}

/* Wait until the header at fd is READY; 0, or the reason it never will be. A region that may
 * still be in its creator's hands (too short, all zero, INIT with a live creator) is retried
 * for OPEN_WAIT_NS before the last reason is returned. */
static int await_header(int fd, int prot, uint32_t kind, int64_t wait_ns)
{
	int64_t deadline = shmkit__now() + wait_ns;
	struct shmkit__hdr *h;
	struct stat st;
	uint64_t magic;
	uint32_t state;
	bool transient;
	int err;

	for (;;) {
		if ((err = check_file(fd, &st)))
			return err;
		transient = true;
		err = -EBADMSG;
		if ((uint64_t)st.st_size >= sizeof(*h)) {
			h = mmap(NULL, sizeof(*h), prot, MAP_SHARED, fd, 0);
			if (h == MAP_FAILED)
				return -errno;
			transient = false;
			/* M2: establishes a synchronizing edge with M1 (write_header's release). */
			magic = atomic_load_explicit((_Atomic uint64_t *)&h->magic,
						     memory_order_acquire);
			if (magic == 0) {
				/* A creator may be writing it: the magic goes in last. */
				transient = true;
			} else if (magic != SHMKIT__MAGIC) {
				err = -EBADMSG;
			} else if (h->version != SHMKIT__LAYOUT_VERSION) {
				err = -EPROTO;
			} else if (kind && h->kind != kind) {
				err = -EPROTOTYPE;
			} else if ((state = atomic_load_explicit(&h->state,
								 /* Y2: with Y1 (shmkit__region_ready) */
								 memory_order_acquire)) ==
				   SHMKIT__STATE_READY) {
				err = h->size == (uint64_t)st.st_size ? 0 : -EBADMSG;
			} else if (state != SHMKIT__STATE_INIT) {
				err = -EBADMSG;
			} else if (!shmkit__lease_held(fd, SHMKIT__LEASE_CREATOR) &&
				   /* Y2: with Y1, as above */
				   atomic_load_explicit(&h->state, memory_order_acquire) !=
					   SHMKIT__STATE_READY) {
				/* (Looked again: it may have finished and exited since.) */
				err = -ENOTRECOVERABLE;
			} else {
				err = -EAGAIN;
				transient = true;
			}
			munmap(h, sizeof(*h));
		}
		if (!transient || shmkit__now() >= deadline)
			return err;
		nap_ms(2);
	}
}

/* The seat table must lie inside the region, after the header, on a cache line. */
static int check_seats(const struct shmkit__hdr *h, size_t size, uint64_t *seats_off,
		       uint32_t *nseats, uint32_t *lk_off)
{
	uint64_t off = *seats_off = h->seats_off, n = *nseats = h->nseats;
	uint32_t lk = *lk_off = h->lk_off;

	/* The lock, if any, lies between the header and the seats, on its alignment. */
	if (lk && (lk < sizeof(*h) || lk % _Alignof(struct shmkit__lk) ||
		   (uint64_t)lk + sizeof(struct shmkit__lk) > off))
		return -EBADMSG;

	if (off < sizeof(*h) || off % SHMKIT__CACHELINE || n > SHMKIT__SEATS_MAX ||
	    off > size || (size - off) / sizeof(struct shmkit__seat) != n ||
	    (size - off) % sizeof(struct shmkit__seat))
		return -EBADMSG;
	return 0;
}

int shmkit__region_open_mode(const char *name, uint32_t kind, bool inspect,
			     struct shmkit__region *r)
{
	bool rdonly = inspect;
	int prot = PROT_READ | (rdonly ? 0 : PROT_WRITE);
	struct stat st;
	uint64_t seats_off = 0;
	uint32_t nseats = 0, lk_off = 0;
	int fd, err;
	void *p;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if ((err = shmkit_name_check(name)))
		return err;
	/* O_NONBLOCK: a FIFO someone made under the name must not block us in open. */
	fd = shm_open(name, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if ((err = await_header(fd, prot, kind, inspect ? 0 : OPEN_WAIT_NS)))
		goto fail;
	/* The header was READY and matched fstat a moment ago; check again after mapping, as a
	 * peer may have truncated it in between. */
	if ((err = check_file(fd, &st)))
		goto fail;
	p = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	r->hdr = p;
	r->size = (size_t)st.st_size;
	r->named = true;
	r->rdonly = rdonly;
	snprintf(r->name, sizeof(r->name), "%s", name);
	if (r->hdr->size != r->size || (kind && r->hdr->kind != kind) ||
	    r->hdr->magic != SHMKIT__MAGIC || check_seats(r->hdr, r->size, &seats_off, &nseats, &lk_off)) {
		munmap(p, r->size);
		r->hdr = NULL;
		err = -EBADMSG;
		goto fail;
	}
	bind_common(r, fd, seats_off, nseats, lk_off, false);
	/* A remover of unused names may have taken the name between our open and our hold. */
	if ((err = shmkit__hold_verify(r))) {
		shmkit__region_close(r);
		return err;
	}
	return 0;
fail:
	close(fd);
	return err;
}

int shmkit__region_open(const char *name, uint32_t kind, struct shmkit__region *r)
{
	return shmkit__region_open_mode(name, kind, false, r);
}

int shmkit__handle_open(const char *name, uint32_t kind, size_t size,
			int (*check)(const struct shmkit__region *r), void *out)
{
	struct shmkit__region *h;
	int err;

	if (!out)
		return -EINVAL;
	if (!(h = shmkit__handle_new(size)))
		return -ENOMEM;
	if ((err = shmkit__region_open(name, kind, h)) == 0 && (err = check(h)) != 0)
		shmkit__region_close(h);
	if (err) {
		free(h);
		return err;
	}
	*(void **)out = h;
	return 0;
}
