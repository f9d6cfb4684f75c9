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
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
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
	/* /dev/shm/.shmkit-*: the library's own files (lease files, the deadlock graph). */
	if (!strncmp(name, "/.shmkit-", 9))
		return -EINVAL;
	return 0;
}

void *shmkit__handle_new(size_t size)
{
	shmkit__proc_init(); /* handles must notice a fork: see shmkit__fork_generation() */
	return calloc(1, size);
}

static void write_header(struct shmkit__region *r, uint32_t kind, uint32_t flags,
			 uint64_t seats_off, uint32_t nseats, uint64_t lease_key)
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
	h->lease_key = lease_key;
	atomic_store_explicit(&h->state, SHMKIT__STATE_INIT, memory_order_relaxed);
	/* M1: establishes a synchronizing edge with M2 (the acquire load of magic in
	 * await_header): an opener that sees the magic sees every field above. Last. */
	atomic_store_explicit((_Atomic uint64_t *)&h->magic, SHMKIT__MAGIC, memory_order_release);
}

/*
 * The descriptor that holds this handle's leases is never the one its mapping was made
 * through: a mapping keeps its open file description alive, and a fork child inherits the
 * mapping, so leases on that description would outlive the process that took them for as long
 * as any child of it lives (a dead lock holder's child would keep the holder "alive"). A named
 * region's leases are on its lease file (lease.c), which no mapping references; an anonymous
 * region's on a second description of its memfd (/proc/self/fd/N), which a fork child replaces
 * (lease.c). When that second description cannot be had, the handle is refused: -EMFILE (or
 * whatever open said) rather than a handle whose leases outlive it. Only without /proc does an
 * anonymous region fall back to its mapping's description, for its creator alone: its fork
 * children cannot reopen it and hold no leases (-ENOLCK).
 */
static int anon_lease_fd(int fd)
{
	char path[64];
	int lfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	lfd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (lfd >= 0)
		return lfd;
	if (errno == ENOENT || errno == EACCES || errno == ENOTDIR) {
		/* No /proc (see above); but a descriptor short is still a descriptor short. */
		if ((lfd = dup(fd)) < 0)
			return -errno;
		close(lfd);
		return -ENOENT;
	}
	return -errno;
}

/* Process-local bookkeeping every handle has, from a mapped and validated region: the mapping's
 * descriptor `fd` is closed (the mapping keeps its description) unless it holds the creator's
 * lease, and `lfd` becomes the handle's lease descriptor. */
static void bind_common(struct shmkit__region *r, int fd, int lfd, uint64_t seats_off,
			uint32_t nseats, uint32_t lk_off, bool creating)
{
	struct stat st;

	r->lk = lk_off ? (struct shmkit__lk *)((char *)r->hdr + lk_off) : NULL;
	r->lk_recursive = r->hdr->flags & SHMKIT_RECURSIVE;
	if (fstat(fd, &st) == 0) {
		r->dev = (uint64_t)st.st_dev;
		r->ino = (uint64_t)st.st_ino;
	}
	/* Every handle holds the object's file (hold.c) through the description its mapping
	 * references, which outlives fd's close below and is inherited by fork children:
	 * nobody removes a name as unused while it is mapped. Failing that (a remover kept the
	 * byte past the wait), open checks the name (shmkit__hold_verify). */
	(void)shmkit__hold_take(fd);
	r->fd = lfd < 0 ? -1 : lfd;
	if (creating && r->named) {
		r->cfd = fd;
	} else if (lfd != fd) {
		close(fd);
	}
	pthread_mutex_init(&r->seat_mu, NULL);
	r->obj_size = (size_t)seats_off;
	r->nseats = nseats;
	r->seats = (struct shmkit__seat *)((char *)r->hdr + r->obj_size);
	shmkit__region_track(r);
}

/*
 * An anonymous region's pages are reserved at create, as a named region's are in /dev/shm, so
 * that memory that is not there fails the create (-ENOSPC) instead of a later touch (SIGBUS)
 * or an hour of growth. A memfd lives in no file system with a size: what can back it is the
 * memory the kernel says is available plus free swap, asked first, since reserving more than
 * that would not fail but push the machine into the OOM killer.
 */
static int anon_reserve(int fd, size_t size)
{
	unsigned long long kb, avail = 0;
	char line[128];
	bool known = false;
	FILE *f = fopen("/proc/meminfo", "re");
	int err;

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1 ||
			    sscanf(line, "SwapFree: %llu kB", &kb) == 1) {
				avail += kb * 1024;
				known = true;
			}
		}
		fclose(f);
	}
	if (!known) {
		struct sysinfo si;

		if (sysinfo(&si) == 0)
			avail = ((unsigned long long)si.freeram + si.bufferram + si.freeswap) *
				si.mem_unit;
		else
			avail = ~0ULL;
	}
	if ((unsigned long long)size > avail)
		return -ENOSPC;
	err = posix_fallocate(fd, 0, (off_t)size);
	if (err == EOPNOTSUPP || err == EINVAL)
		err = ftruncate(fd, (off_t)size) < 0 ? errno : 0;
	return err == ENOMEM ? -ENOSPC : -err;
}

static size_t seats_at(size_t size)
{
	return (size + SHMKIT__CACHELINE - 1) & ~(size_t)(SHMKIT__CACHELINE - 1);
}

/*
 * Make `name` exclusively, with the creator's lease already held and the header written when
 * the name appears, so that `shmkit rm` can never mistake a live create for a dead one's
 * leftover, nor a file without shmkit's header for one of ours. The file is made nameless
 * (O_TMPFILE in /dev/shm) and leased here; region_create writes the header, then links it under
 * the name (link_name), which fails if the name is taken (exclusive, like O_EXCL): *linked is
 * false. Where that cannot be done (no O_TMPFILE, no /proc), the name is made with O_EXCL and
 * leased a moment later (*linked true); rm then waits out a young header-less file before
 * judging it (remove.c).
 */
static int create_leased(const char *name, bool *linked)
{
	char path[SHMKIT_NAME_MAX + 16], self[64];
	int fd, err;

	*linked = false;
	/* A taken name fails now rather than after the pages are reserved (link_name decides). */
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	if (access(path, F_OK) == 0)
		return -EEXIST;
	fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		if ((err = shmkit__lease_take(fd, SHMKIT__LEASE_CREATOR)) == 0 &&
		    access(self, F_OK) == 0)
			return fd;
		close(fd);
		if (err == -ENOSPC || err == -EACCES || err == -EROFS)
			return err;
		/* No /proc, or no lease on it: the old way below. */
	}
	*linked = true;
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

/* Give create_leased's nameless file its name: 0, or -EEXIST when the name is taken. */
static int link_name(int fd, const char *name)
{
	char path[SHMKIT_NAME_MAX + 16], self[64];

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

int shmkit__region_create(const char *name, uint32_t kind, uint32_t flags, size_t size,
			  uint32_t nseats, unsigned mode, struct shmkit__region *r)
{
	size_t off = seats_at(size);
	bool linked = true;
	uint64_t key = 0;
	int fd, lfd = -1, err;
	void *p;

	memset(r, 0, sizeof(*r));
	r->fd = r->cfd = -1;
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
		if ((err = anon_reserve(fd, r->size))) {
			errno = -err;
			goto fail_errno;
		}
		if (getrandom(r->secret, sizeof(r->secret), 0) != (ssize_t)sizeof(r->secret)) {
			errno = EIO;
			goto fail_errno;
		}
		r->has_secret = true;
		if ((lfd = anon_lease_fd(fd)) == -ENOENT) {
			lfd = fd; /* no /proc: the dup above made sure descriptors were not short */
		} else if (lfd < 0) {
			errno = -lfd;
			goto fail_errno;
		}
	} else {
		/* The lease file first: it exists before anyone can learn its name. */
		lfd = shmkit__lease_file_create(mode, &key, r->lease_name, sizeof(r->lease_name),
						r->secret);
		if (lfd < 0)
			return lfd;
		r->has_secret = true;
		if ((fd = create_leased(name, &linked)) < 0) {
			close(lfd);
			shm_unlink(r->lease_name);
			return fd;
		}
		/* From here on the file is ours, and leased: every failure removes its name if
		 * it has one yet, and the lease file. */
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
	write_header(r, kind, flags, off, nseats, key);
	if (name && !linked && (err = link_name(fd, name)) < 0) {
		munmap(p, r->size);
		close(fd);
		close(lfd);
		shm_unlink(r->lease_name);
		r->hdr = NULL;
		return err;
	}
	bind_common(r, fd, lfd, off, nseats, 0, true);
	return 0;

fail_errno:
	err = -errno;
	close(fd);
	if (lfd >= 0 && lfd != fd)
		close(lfd);
	if (name) {
		if (linked)
			shm_unlink(name);
		shm_unlink(r->lease_name);
	}
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
	if (r->cfd >= 0) {
		shmkit__lease_drop(r->cfd, SHMKIT__LEASE_CREATOR);
		close(r->cfd); /* the mapping keeps its description */
		r->cfd = -1;
	}
}

void shmkit__region_abort(struct shmkit__region *r)
{
	if (r->named) {
		shm_unlink(r->name);
		shm_unlink(r->lease_name);
	}
	shmkit__region_close(r);
}

void shmkit__region_quiesce(struct shmkit__region *r, _Atomic uint32_t *word)
{
	struct timespec ms = { 0, 1000000L };

	atomic_store_explicit(&r->closing, 1, memory_order_seq_cst);
	while (atomic_load_explicit(&r->sleepers, memory_order_seq_cst)) {
		if (word)
			shmkit__futex_wake(word, INT32_MAX);
		nanosleep(&ms, NULL);
	}
}

void shmkit__region_close(struct shmkit__region *r)
{
	if (r->hdr && r->lk)
		shmkit__region_quiesce(r, &r->lk->word); /* its lock's waiters, first */
	if (r->hdr) {
		shmkit__seat_leave(r);
		shmkit__region_untrack(r);
		munmap(r->hdr, r->size);
	}
	if (r->fd >= 0)
		close(r->fd);
	if (r->cfd >= 0 && r->cfd != r->fd)
		close(r->cfd);
	r->fd = r->cfd = -1;
	r->hdr = NULL;
}

/* The name of `name`'s lease file, from its header, if it is a region of the same owner's
 * lease file: "" when there is none to remove with it. */
static void lease_of(const char *name, char *lease, size_t size)
{
	struct shmkit__hdr h;
	struct stat st, lst;
	int fd;

	lease[0] = '\0';
	fd = shm_open(name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && h.magic == SHMKIT__MAGIC &&
	    h.lease_key) {
		char path[64];

		shmkit__lease_name(h.lease_key, lease, size);
		snprintf(path, sizeof(path), "/dev/shm%s", lease);
		/* Never another owner's file, whatever a writer put in the header. */
		if (lstat(path, &lst) < 0 || !S_ISREG(lst.st_mode) || lst.st_uid != st.st_uid)
			lease[0] = '\0';
	}
	close(fd);
}

int shmkit__region_unlink(const char *name)
{
	char lease[40];
	int err = shmkit_name_check(name);

	if (err)
		return err;
	lease_of(name, lease, sizeof(lease));
	if (shm_unlink(name) < 0)
		return -errno;
	/* The name is gone (we may remove it): its lease file goes with it. Handles still open
	 * keep their descriptors of both. */
	if (lease[0])
		shm_unlink(lease);
	return 0;
}

static void nap_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

/*
 * Whose writes we accept: the sharing policy (shmkit(7), SHARING). Everything read from an
 * object is validated whoever wrote it, so a hostile writer can make calls fail (-EBADMSG) but
 * not crash us; what it can do is feed us data and states of its choosing. So an object is
 * used only when everyone who may write it is trusted, by SHMKIT_TRUST:
 *   shared (the default): the owner, whom the caller chose by opening its name, and the
 *     owner's group when the mode lets it write (the owner shared it: 0660); never everyone
 *     (o+w) unless the caller owns the object; and for root, nobody but root: an object a
 *     less privileged user owns, or whose group or others may write, is theirs to rewrite at
 *     will, and root does not consume what they can forge.
 *   own: only objects nobody but the caller (and root) may write.
 *   any: whatever the mode lets us open.
 * Views (shmkit ls, stat, info) only look, and look at anything.
 */
static int trust_ok(const struct stat *st)
{
	const char *t = getenv("SHMKIT_TRUST");
	uid_t me = geteuid();
	bool gw = st->st_mode & S_IWGRP, ow = st->st_mode & S_IWOTH;

	if (t && !strcmp(t, "any"))
		return 0;
	if (t && !strcmp(t, "own"))
		return (st->st_uid == me || st->st_uid == 0) && !ow && !gw ? 0 : -EACCES;
	if (me == 0)
		return st->st_uid == 0 && !ow && (!gw || st->st_gid == 0) ? 0 : -EACCES;
	return !ow || st->st_uid == me ? 0 : -EACCES;
}

/* Check what fstat says against what a region must be (and, unless only looking, against the
 * sharing policy); fills *st. */
static int check_file(int fd, struct stat *st, bool inspect)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EBADMSG;
	return inspect ? 0 : trust_ok(st);
}

/* Wait until the header at fd is READY; 0, or the reason it never will be. A region that may
 * still be in its creator's hands (too short, all zero, INIT with a live creator) is retried
 * for OPEN_WAIT_NS before the last reason is returned. */
static int await_header(int fd, int prot, uint32_t kind, int64_t wait_ns, bool inspect)
{
	int64_t deadline = shmkit__now() + wait_ns;
	struct shmkit__hdr *h;
	struct stat st;
	uint64_t magic;
	uint32_t state;
	bool transient;
	int err;

	for (;;) {
		if ((err = check_file(fd, &st, inspect)))
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
	int fd, lfd, err;
	void *p;

	memset(r, 0, sizeof(*r));
	r->fd = r->cfd = -1;
	if ((err = shmkit_name_check(name)))
		return err;
	/* O_NONBLOCK: a FIFO someone made under the name must not block us in open. */
	fd = shm_open(name, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if ((err = await_header(fd, prot, kind, inspect ? 0 : OPEN_WAIT_NS, inspect)))
		goto fail;
	/* The header was READY and matched fstat a moment ago; check again after mapping, as a
	 * peer may have truncated it in between. */
	if ((err = check_file(fd, &st, inspect)))
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
	    r->hdr->magic != SHMKIT__MAGIC || check_seats(r->hdr, r->size, &seats_off, &nseats, &lk_off) ||
	    !r->hdr->lease_key) {
		munmap(p, r->size);
		r->hdr = NULL;
		err = -EBADMSG;
		goto fail;
	}
	/* The key is read once: a writer changing it later changes nothing for this handle. */
	shmkit__lease_name(r->hdr->lease_key, r->lease_name, sizeof(r->lease_name));
	lfd = shmkit__lease_file_open(r->lease_name, fd, rdonly, r->secret);
	r->has_secret = lfd >= 0;
	if (lfd < 0 && !(rdonly && lfd == -EACCES)) {
		/* A reader of an object it may not write asks nobody's leases: its handle says
		 * "cannot tell" (lease.h), never "dead". Anyone else needs them. */
		munmap(p, r->size);
		r->hdr = NULL;
		err = lfd;
		goto fail;
	}
	bind_common(r, fd, lfd, seats_off, nseats, lk_off, false);
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
