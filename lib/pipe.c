/*
 * Pipe: two ends in one region, joined by one ring per direction (ring k carries end k's
 * messages to the other end; a simplex pipe has ring 0 only).
 *
 * An end behaves as a file descriptor does. Attaching end e takes a *hold*: a seat whose
 * lease (lease.c) is taken on an open file description of the region's file made for it alone
 * (shmkit__seat_hold), recorded in the participant entry of that seat. Copies of that
 * descriptor -- inherited by fork children, passed with SCM_RIGHTS, handed to another handle
 * with shmkit_pipe_attach_fd -- share the description, so the kernel keeps the lease while any
 * process keeps one open, and drops it when the last one closes or dies, as it does for a
 * pipe(2) end. Counting holders in shared memory instead would need every fork, exit and
 * SIGKILL to update the count; the kernel already counts references to a description.
 *
 * End e is at EOF for its peer when it was held once and no hold of e is alive: whoever notices
 * that (a holder closing its copy, an attacher, a waiter's recover callback every slice, under
 * the admin lock) latches the end CLOSED and closes its rings (end_gone). A hold taken and
 * never used counts the same as a used one, and a fork child holds its parent's ends from the
 * fork on, before it runs anything.
 *
 * Using an end (send, receive, wait) is separate from holding it: each process that uses a
 * handle registers a *use* entry -- the entry of the handle's own seat, taken per process like
 * a queue participant's (queue.c) -- with its claim records, so any number of processes may send
 * or receive on one end, and what a dead user claimed or streamed is resolved (ring.h:
 * shmkit__ring_reap, its entry index as its stream id) while live users' claims are left
 * alone. Within one process a handle takes one sending and one receiving thread at a time:
 * each direction has its own claim record, since both may sleep at once and a record has one
 * waiting flag.
 *
 * A receiver can wait for a message without taking it (shmkit_pipe_wait): a process that only
 * looks never holds a message it could die with.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "notify.h"
#include "proc.h"
#include "region.h"
#include "ring.h"
#include "wait.h"

enum { END_FREE = 0, END_HELD = 1, END_CLOSED = 2 };

struct pipe_end {
	_Atomic uint32_t state; /* FREE (never held), HELD, CLOSED (held once, all holds gone) */
	_Atomic int32_t pid;    /* the last process that attached it, for display */
	uint8_t pad[56];
};
_Static_assert(sizeof(struct pipe_end) == 64, "one end per cache line");

enum { ROLE_HOLD = 1, ROLE_USE = 2 };

/* Participant entry i belongs to whoever holds seat i's lease (see the top of the file). */
struct pipe_part {
	_Atomic int32_t pid; /* 0: free; else its pid, for display (the seat's lease says alive) */
	_Atomic uint32_t role;
	_Atomic uint32_t end;
	_Atomic uint32_t seat_gen; /* the gen of seat i its owner took (see lease.h) */
	_Atomic uint64_t start;
	uint8_t pad[40];
	/* A use entry's claim records (ring.h): sending (put_* on ring `end`), receiving (get_*
	 * on ring 1 - end, and waiting in shmkit_pipe_wait). */
	struct shmkit__claim claim[2];
};
enum { CLAIM_SEND = 0, CLAIM_RECV = 1 };
_Static_assert(sizeof(struct pipe_part) == 128, "its claims on a cache line of their own");

/* Each holding descriptor and each using handle sits in one: ends passed to many processes
 * share their holds, so two per process using the pipe is the usual need. */
#define PIPE_SEATS 128u

struct pipe_region {
	struct shmkit__hdr hdr; /* param: capacity, max_size | payload << 32; flags: SHMKIT_SIMPLEX */
	struct shmkit__lk admin; /* holds, uses, recovery */
	_Alignas(SHMKIT__CACHELINE) struct pipe_end end[2];
	struct shmkit__ring_sh ring[2];
	struct pipe_part part[PIPE_SEATS];
	_Alignas(SHMKIT__CACHELINE) unsigned char slots[];
};

struct shmkit_pipe {
	struct shmkit__region r;
	struct pipe_region *p;
	struct shmkit__ring ring[2];
	int nrings;
	int end;      /* -1 until attached; a fork child's copy holds it too */
	int hold_fd;  /* the descriptor whose lease holds the end (-1: none) */
	int hold_seat;
	int use;      /* our use entry (the handle's seat), -1 before the first use */
	unsigned use_gen; /* fork generation that registered it */
	struct shmkit__who who_put, who_get;
	int64_t last_check; /* when recover() last looked for dead participants */
	bool has_fd;        /* shmkit_pipe_fd made `note` (in fork generation note.gen) */
	int ifd;            /* its inotify descriptor, in note.epfd (-1: none, a timer instead) */
	struct shmkit__notify note;
};

#define PEER_CHECK_NS (50 * 1000000LL)

static size_t region_size(uint32_t capacity, uint32_t payload, int nrings)
{
	return sizeof(struct pipe_region) + nrings * shmkit__ring_bytes(capacity, payload);
}

/* The layout read back from a region: sizes the library itself would have chosen. */
static int params_ok(uint64_t capacity, uint64_t sizes)
{
	uint32_t max_size, payload;

	shmkit__ring_param_split(sizes, &max_size, &payload);
	return capacity >= 1 && capacity <= RING_MAX_CAPACITY && max_size >= 1 &&
	       shmkit__ring_payload(max_size, 0) == payload;
}

static void bind(struct shmkit_pipe *h)
{
	struct shmkit__hdr *hd = h->r.hdr;
	uint32_t cap = (uint32_t)hd->param[0], max, payload;
	int k;

	shmkit__ring_param_split(hd->param[1], &max, &payload);

	h->p = (struct pipe_region *)hd;
	h->nrings = hd->flags & SHMKIT_SIMPLEX ? 1 : 2;
	for (k = 0; k < h->nrings; k++) {
		shmkit__ring_bind(&h->ring[k], &h->p->ring[k],
				  h->p->slots + k * shmkit__ring_bytes(cap, payload), cap, max,
				  payload);
		h->ring[k].dev = h->r.dev;
		h->ring[k].ino = h->r.ino;
	}
	h->end = -1;
	h->hold_fd = -1;
	h->hold_seat = -1;
	h->use = -1;
	h->ifd = -1;
}

SHMKIT__API int shmkit_pipe_create(const char *name, uint32_t capacity, uint32_t max_size,
				   unsigned flags, unsigned mode, shmkit_pipe **out)
{
	struct shmkit_pipe *h;
	int err, k, nrings = flags & SHMKIT_SIMPLEX ? 1 : 2;
	uint32_t i, max = shmkit__ring_max_size(max_size), payload = shmkit__ring_payload(max, 0);
	uint64_t sizes = shmkit__ring_param(max, payload);

	if (!out || !payload || !params_ok(capacity, sizes) || (flags & ~SHMKIT_SIMPLEX))
		return -EINVAL;
	if (!(h = shmkit__handle_new(sizeof(*h))))
		return -ENOMEM;
	err = shmkit__region_create(name, SHMKIT_KIND_PIPE, flags,
				    region_size(capacity, payload, nrings), PIPE_SEATS, mode, &h->r);
	if (err) {
		free(h);
		return err;
	}
	h->r.hdr->param[0] = capacity;
	h->r.hdr->param[1] = sizes;
	bind(h);
	shmkit__region_set_lock(&h->r, &h->p->admin);
	for (i = 0; i < PIPE_SEATS; i++)
		for (k = 0; k < 2; k++)
			shmkit__ring_claim_clear(&h->p->part[i].claim[k]);
	for (k = 0; k < nrings; k++)
		shmkit__ring_init(h->ring[k].sh, h->ring[k].slots, capacity, max, payload);
	shmkit__region_ready(&h->r);
	*out = h;
	return 0;
}

static int check_region(const struct shmkit__region *r)
{
	const struct shmkit__hdr *hd = r->hdr;
	int nrings = hd->flags & SHMKIT_SIMPLEX ? 1 : 2;

	if (!params_ok(hd->param[0], hd->param[1]) || (hd->flags & ~SHMKIT_SIMPLEX) ||
	    !shmkit__obj_size_is(r, region_size((uint32_t)hd->param[0],
						(uint32_t)(hd->param[1] >> 32), nrings)) ||
	    r->nseats != PIPE_SEATS || r->lk != &((struct pipe_region *)hd)->admin)
		return -EBADMSG;
	return 0;
}

SHMKIT__API int shmkit_pipe_open(const char *name, shmkit_pipe **out)
{
	int err = shmkit__handle_open(name, SHMKIT_KIND_PIPE, sizeof(**out), check_region, out);

	if (!err)
		bind(*out);
	return err;
}

SHMKIT__API int shmkit_pipe_unlink(const char *name)
{
	shmkit__notify_reap_name(name); /* socket files of descriptors whose waiters died */
	return shmkit__region_unlink(name);
}

/* ---- holds, uses, and noticing the dead (all under the admin lock) ----------------------- */

/* End e is gone (every hold closed or dead): its outgoing ring ends, its incoming ring has no
 * reader. */
static void end_gone(struct shmkit_pipe *h, int e)
{
	if (e < h->nrings)
		shmkit__ring_close(&h->ring[e]);
	if (1 - e < h->nrings)
		shmkit__ring_close_read(&h->ring[1 - e]);
}

static int admin_lock(struct shmkit_pipe *h, int64_t deadline)
{
	int rc = shmkit__lk_acquire(&h->r, deadline, false);

	return rc < 0 ? rc : 0; /* a dead holder left nothing half-done that we rely on */
}

/* Does a live use entry of end `end` claim position q (get: in its receiving run on ring
 * 1 - end; else in its sending run on ring `end`)? alive[] was filled by the caller. */
struct live_claims {
	struct shmkit_pipe *h;
	const signed char *alive;
	uint32_t end;
	const struct shmkit__ring *ring;
};

static bool claimed_by_live(uint64_t q, bool get, void *arg)
{
	const struct live_claims *lc = arg;
	struct pipe_part *pt;
	struct shmkit__claim *c;
	uint64_t p, n;
	uint32_t i;

	for (i = 0; i < PIPE_SEATS; i++) {
		pt = &lc->h->p->part[i];
		if (lc->alive[i] != 1 || !(shmkit__sc_load(&pt->role) & ROLE_USE) ||
		    shmkit__sc_load(&pt->end) != lc->end)
			continue;
		c = &pt->claim[get ? CLAIM_RECV : CLAIM_SEND];
		/* A3: seq_cst, establishes a synchronizing edge with R3 (a claim word cleared
		 * after its run was finished: the slots are done). */
		p = shmkit__sc_load(get ? &c->get_pos : &c->put_pos);
		if (p == RING_NONE)
			continue;
		n = shmkit__ring_claim_n(lc->ring, shmkit__sc_load(get ? &c->get_cnt : &c->put_cnt));
		if (q >= p && q - p < n)
			return true;
	}
	return false;
}

static void part_clear(struct pipe_part *pt)
{
	shmkit__sc_store(&pt->role, 0);
	shmkit__ring_claim_clear(&pt->claim[CLAIM_SEND]);
	shmkit__ring_claim_clear(&pt->claim[CLAIM_RECV]);
	shmkit__sc_store(&pt->start, 0);
	shmkit__sc_store(&pt->pid, 0);
}

/* Resolve what a dead user (entry i) of end e left in the rings, as a dead queue participant
 * is: its runs, its streams (its entry index is its stream id) and its wait, on ring e as a
 * producer and on ring 1 - e as a consumer; and its armed descriptor. */
static void use_dead(struct shmkit_pipe *h, uint32_t i, signed char *alive, uint64_t *tail0,
		     uint64_t *head0)
{
	struct pipe_part *pt = &h->p->part[i];
	uint32_t e = shmkit__sc_load(&pt->end) & 1;
	struct live_claims lc = { h, alive, e, NULL };

	if ((int)e < h->nrings) {
		lc.ring = &h->ring[e];
		shmkit__ring_reap(&h->ring[e], i, &pt->claim[CLAIM_SEND], RING_SIDE_PUT, tail0[e],
				  head0[e], claimed_by_live, &lc);
	}
	if ((int)(1 - e) < h->nrings) {
		lc.ring = &h->ring[1 - e];
		shmkit__ring_reap(&h->ring[1 - e], i, &pt->claim[CLAIM_RECV], RING_SIDE_GET,
				  tail0[1 - e], head0[1 - e], claimed_by_live, &lc);
		if (i < RING_FD_SEATS)
			shmkit__ring_fd_disarm(&h->ring[1 - e], i);
	}
}

/* Clear the entries of dead participants, and latch the ends whose holds are all gone. `fresh`:
 * an entry whose seat we just took (its contents a dead predecessor's), -1 for none. */
static void reap(struct shmkit_pipe *h, int fresh)
{
	struct pipe_region *p = h->p;
	signed char alive[PIPE_SEATS];
	uint64_t tail0[2] = { 0, 0 }, head0[2] = { 0, 0 };
	bool held[2] = { false, false }, any_dead = false;
	uint32_t i, role;
	int k;

	for (i = 0; i < PIPE_SEATS; i++) {
		int32_t pid = shmkit__sc_load(&p->part[i].pid);

		alive[i] = pid == 0 ? -1
			   : (int)i == fresh
				   ? 0
				   : (signed char)shmkit__seat_alive_gen(&h->r, i,
									 shmkit__sc_load(&p->part[i].seat_gen));
		any_dead |= alive[i] == 0;
		if (alive[i] == 1 && (shmkit__sc_load(&p->part[i].role) & ROLE_HOLD))
			held[shmkit__sc_load(&p->part[i].end) & 1] = true;
	}
	if (any_dead) {
		/* S1 (the reaper's side): seq_cst loads before the scan establish a synchronizing
		 * edge with the claim CASes, as in queue.c's reap_entries: a position below these
		 * was claimed (claim word stored) before we looked. */
		for (k = 0; k < h->nrings; k++) {
			tail0[k] = shmkit__sc_load(&p->ring[k].tail);
			head0[k] = shmkit__sc_load(&p->ring[k].head);
		}
		for (i = 0; i < PIPE_SEATS; i++) {
			if (alive[i] != 0)
				continue;
			role = shmkit__sc_load(&p->part[i].role);
			if (role & ROLE_USE)
				use_dead(h, i, alive, tail0, head0);
			part_clear(&p->part[i]);
		}
	}
	for (k = 0; k < 2; k++) {
		if (!held[k] && shmkit__sc_load(&p->end[k].state) == END_HELD) {
			shmkit__sc_store(&p->end[k].state, END_CLOSED);
			end_gone(h, k);
		}
	}
}

/* The ring's recover callback: has a holder or user died? Throttled, since a look asks the
 * kernel about every seat and _try callers come here on every empty try. */
static void recover(void *arg)
{
	struct shmkit_pipe *h = arg;
	int64_t now = shmkit__now();

	if (now - h->last_check < PEER_CHECK_NS && now >= h->last_check)
		return;
	h->last_check = now;
	if (admin_lock(h, 0) < 0)
		return;
	reap(h, -1);
	shmkit__lk_release(&h->r);
}

/* Record the hold of end `end` by seat `seat` (held through fd) unless the end is closed. */
static int hold_record(struct shmkit_pipe *h, int end, int seat)
{
	struct pipe_part *pt = &h->p->part[seat];
	int32_t pid;
	uint64_t start;
	int rc;

	shmkit__self(&pid, &start);
	if ((rc = admin_lock(h, shmkit__deadline(SHMKIT__STATE_LOCK_NS))))
		return rc;
	reap(h, seat);
	if (shmkit__sc_load(&h->p->end[end].state) == END_CLOSED) {
		rc = -EPIPE;
	} else {
		part_clear(pt);
		shmkit__sc_store(&pt->end, (uint32_t)end);
		shmkit__sc_store(&pt->role, ROLE_HOLD);
		shmkit__sc_store(&pt->start, start);
		shmkit__sc_store(&pt->seat_gen, shmkit__seat_gen(&h->r, (uint32_t)seat));
		shmkit__sc_store(&pt->pid, pid);
		shmkit__sc_store(&h->p->end[end].pid, pid);
		shmkit__sc_store(&h->p->end[end].state, END_HELD);
	}
	shmkit__lk_release(&h->r);
	return rc;
}

SHMKIT__API int shmkit_pipe_attach(shmkit_pipe *h, int end)
{
	int fd = -1, seat, rc;

	if (end != 0 && end != 1)
		return -EINVAL;
	if (h->end >= 0)
		return h->end == end ? 0 : -EBUSY;
	if ((seat = shmkit__seat_hold(&h->r, &fd)) < 0)
		return seat;
	if ((rc = hold_record(h, end, seat))) {
		close(fd); /* drops the lease: the seat is free for the next taker */
		return rc;
	}
	h->end = end;
	h->hold_fd = fd;
	h->hold_seat = seat;
	return 0;
}

SHMKIT__API int shmkit_pipe_hold_fd(shmkit_pipe *h)
{
	return h->end >= 0 ? h->hold_fd : -EBADF;
}

SHMKIT__API int shmkit_pipe_attach_fd(shmkit_pipe *h, int end, int fd)
{
	struct pipe_region *p = h->p;
	struct stat st, own;
	struct flock fl;
	int nfd, rc = -EINVAL;
	uint32_t i, gen;

	if ((end != 0 && end != 1) || fd < 0)
		return -EINVAL;
	if (h->end >= 0)
		return h->end == end ? 0 : -EBUSY;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* A hold is a description of the file our leases live on (lease.c: the lease file of a
	 * named pipe, the memfd of an anonymous one), as shmkit_pipe_hold_fd made it. */
	if (h->r.fd < 0 || fstat(h->r.fd, &own) < 0)
		return -ENOLCK;
	if (st.st_dev != own.st_dev || st.st_ino != own.st_ino)
		return -EINVAL; /* a descriptor of another file */
	if ((rc = admin_lock(h, shmkit__deadline(SHMKIT__STATE_LOCK_NS))))
		return rc;
	reap(h, -1);
	rc = shmkit__sc_load(&p->end[end].state) == END_CLOSED ? -EPIPE : -EINVAL;
	/* The hold fd's description has: a hold of `end` recorded, held (our handle's description
	 * sees the lease taken) by no description but fd's (fd sees no conflict). */
	for (i = 0; i < PIPE_SEATS && rc == -EINVAL; i++) {
		if (!(shmkit__sc_load(&p->part[i].role) & ROLE_HOLD) ||
		    shmkit__sc_load(&p->part[i].end) != (uint32_t)end)
			continue;
		gen = shmkit__sc_load(&p->part[i].seat_gen);
		if (!shmkit__seat_alive_gen(&h->r, i, gen))
			continue;
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = (off_t)(SHMKIT__LEASE_BASE + i);
		fl.l_len = 1;
		if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK &&
		    shmkit__seat_gen(&h->r, i) == gen)
			rc = (int)i;
	}
	shmkit__lk_release(&h->r);
	if (rc < 0)
		return rc;
	if ((nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	h->end = end;
	h->hold_fd = nfd;
	h->hold_seat = rc;
	return 0;
}

/* Make sure this handle has a use entry in this process: the entry of its seat. */
static int ensure_use(struct shmkit_pipe *h)
{
	unsigned gen = shmkit__fork_generation();
	struct pipe_part *pt;
	int32_t pid;
	uint64_t start;
	int rc, seat;

	if (shmkit__likely(h->use >= 0 && h->use_gen == gen))
		return 0;
	if (h->end < 0)
		return -EBADF;
	h->use = -1; /* a fork child's copy: the entry is the parent's */
	if ((seat = shmkit__seat_take(&h->r)) < 0)
		return seat;
	shmkit__self(&pid, &start);
	if ((rc = admin_lock(h, shmkit__deadline(SHMKIT__STATE_LOCK_NS))))
		return rc;
	pt = &h->p->part[seat];
	/* We hold the seat's lease: whatever the entry still says, its owner is gone. */
	reap(h, shmkit__sc_load(&pt->pid) ? seat : -1);
	part_clear(pt);
	shmkit__sc_store(&pt->end, (uint32_t)h->end);
	shmkit__sc_store(&pt->role, ROLE_USE);
	shmkit__sc_store(&pt->start, start);
	shmkit__sc_store(&pt->seat_gen, shmkit__seat_gen(&h->r, (uint32_t)seat));
	shmkit__sc_store(&pt->pid, pid);
	shmkit__lk_release(&h->r);
	/* One id (the entry's index) for both: each names it on a different ring's streams. */
	shmkit__ring_who_bind(&h->who_put, &pt->claim[CLAIM_SEND], (uint32_t)seat, NULL);
	shmkit__ring_who_bind(&h->who_get, &pt->claim[CLAIM_RECV], (uint32_t)seat, NULL);
	h->use = seat;
	h->use_gen = gen;
	return 0;
}

static struct shmkit__ring *ring_for(struct shmkit_pipe *h, int dir);

static void fd_drop(shmkit_pipe *h)
{
	struct shmkit__ring *r = ring_for(h, 1);

	if (!h->has_fd)
		return;
	if (r && h->note.gen == shmkit__fork_generation())
		shmkit__ring_fd_disarm(r, h->note.seat);
	shmkit__notify_close(&h->note);
	if (h->ifd >= 0)
		close(h->ifd);
	h->ifd = -1;
	h->has_fd = false;
}

/* The descriptor is readable only when a receive would not block (as a pipe(2) end's is):
 * empty it, arm it, and look once more, making it readable again if something is there (a
 * message published before the arming notified nobody). deadline 0 with recover: a look
 * that also notices dead holders. */
static void fd_rearm(shmkit_pipe *h, struct shmkit__ring *r, bool look_for_dead)
{
	char ev[4096];

	shmkit__notify_drain(&h->note);
	while (h->ifd >= 0 && read(h->ifd, ev, sizeof(ev)) > 0)
		;
	shmkit__ring_fd_arm(r, h->note.seat);
	if (shmkit__ring_wait_ready(r, &h->who_get, 0, look_for_dead ? recover : NULL, h) != -EAGAIN)
		shmkit__notify_self(&h->note);
}

/* A holder that closes its end latches EOF itself (close's reap wakes armed descriptors); one
 * that dies does not, and nothing else may run meanwhile. But the kernel reports the last close
 * of an open file description of the region's file, a dying process's included, to inotify
 * (IN_CLOSE_WRITE): that, rather than a timer, makes the descriptor readable, so readiness is
 * never spurious while holders come and go by no more than opening. Without inotify (limits),
 * a slice timer as for queues. */
static int fd_watch_closes(shmkit_pipe *h)
{
	struct epoll_event ev = { .events = EPOLLIN };
	char path[64];

	h->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (h->ifd < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", h->r.fd);
	ev.data.fd = h->ifd;
	if (inotify_add_watch(h->ifd, path, IN_CLOSE_WRITE) < 0 ||
	    epoll_ctl(h->note.epfd, EPOLL_CTL_ADD, h->ifd, &ev) < 0) {
		close(h->ifd);
		h->ifd = -1;
		return -errno;
	}
	return 0;
}

SHMKIT__API int shmkit_pipe_fd(shmkit_pipe *h)
{
	struct shmkit__ring *r = ring_for(h, 1);
	int rc;

	if (!r)
		return -EBADF; /* not attached, or an end that only sends */
	if ((rc = ensure_use(h)))
		return rc;
	if (h->has_fd && h->note.gen == shmkit__fork_generation())
		return h->note.epfd;
	fd_drop(h);
	if ((uint32_t)h->use >= RING_FD_SEATS)
		return -EUSERS;
	if ((rc = shmkit__notify_open(&h->r, (uint32_t)h->use, false, &h->note)))
		return rc;
	if (fd_watch_closes(h) < 0) {
		shmkit__notify_close(&h->note);
		if ((rc = shmkit__notify_open(&h->r, (uint32_t)h->use, true, &h->note)))
			return rc;
	}
	h->has_fd = true;
	fd_rearm(h, r, true);
	return h->note.epfd;
}

SHMKIT__API int shmkit_pipe_close(shmkit_pipe *h)
{
	if (!h)
		return 0;
	fd_drop(h);
	if (h->use >= 0 && h->use_gen == shmkit__fork_generation() &&
	    admin_lock(h, shmkit__deadline(SHMKIT__STATE_LOCK_NS)) == 0) {
		part_clear(&h->p->part[h->use]);
		shmkit__lk_release(&h->r);
	}
	if (h->hold_fd >= 0) {
		/* Our copy of the hold goes; the end goes with the last copy, which the look
		 * below notices at once (or a waiter's recover, for a copy closed by a death). */
		close(h->hold_fd);
		h->hold_fd = -1;
		if (admin_lock(h, shmkit__deadline(SHMKIT__STATE_LOCK_NS)) == 0) {
			reap(h, -1);
			shmkit__lk_release(&h->r);
		}
	}
	shmkit__region_close(&h->r);
	free(h);
	return 0;
}

/* The ring this handle sends on (dir 0) or receives from (dir 1), or NULL. */
static struct shmkit__ring *ring_for(struct shmkit_pipe *h, int dir)
{
	int k;

	if (h->end < 0)
		return NULL;
	k = dir == 0 ? h->end : 1 - h->end;
	return k < h->nrings ? &h->ring[k] : NULL;
}

/* ring_for, with this process's use entry registered: NULL with *rc set when it cannot be. */
static struct shmkit__ring *using(struct shmkit_pipe *h, int dir, int *rc)
{
	struct shmkit__ring *r = ring_for(h, dir);

	*rc = r ? ensure_use(h) : -EBADF;
	return *rc ? NULL : r;
}

static int send_(shmkit_pipe *h, const void *msg, size_t len, int64_t deadline)
{
	int rc;
	struct shmkit__ring *r = using(h, 0, &rc);

	return r ? shmkit__ring_put(r, &h->who_put, msg, len, deadline, recover, h) : rc;
}

/* One receive into buf, or (alloc non-NULL) into a buffer it allocates. */
static int recv_(shmkit_pipe *h, void *buf, size_t size, void **alloc, int64_t deadline)
{
	int rc;
	struct shmkit__ring *r = using(h, 1, &rc);

	if (!r)
		return rc;
	rc = alloc ? shmkit__ring_get_alloc(r, &h->who_get, alloc, deadline, recover, h)
		   : shmkit__ring_get(r, &h->who_get, buf, size, deadline, recover, h);
	/* With a descriptor out: readable from now on only if more is there (a message published
	 * before the arming notified nobody: fd_rearm looks once more). */
	if (shmkit__unlikely(h->has_fd) && h->note.gen == shmkit__fork_generation() &&
	    (rc >= 0 || rc == -EAGAIN))
		fd_rearm(h, r, false);
	return rc;
}

/* Wait until a receive would not block (a message, or EOF), taking nothing. */
static int wait_(shmkit_pipe *h, int64_t deadline)
{
	int rc;
	struct shmkit__ring *r = using(h, 1, &rc);

	if (!r)
		return rc;
	rc = shmkit__ring_wait_ready(r, &h->who_get, deadline, recover, h);
	if (shmkit__unlikely(h->has_fd) && h->note.gen == shmkit__fork_generation() &&
	    rc == -EAGAIN)
		fd_rearm(h, r, false); /* a poll that found nothing empties the descriptor */
	return rc;
}

SHMKIT__API int shmkit_pipe_recv_alloc(shmkit_pipe *h, void **msg)
{
	return recv_(h, NULL, 0, msg, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_pipe_recv_alloc_try(shmkit_pipe *h, void **msg)
{
	return recv_(h, NULL, 0, msg, 0);
}

SHMKIT__API int shmkit_pipe_recv_alloc_timeout(shmkit_pipe *h, void **msg, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(recv_(h, NULL, 0, msg, deadline));
}

SHMKIT__API int shmkit_pipe_next_size(shmkit_pipe *h)
{
	struct shmkit__ring *r = ring_for(h, 1);

	return r ? shmkit__ring_next_size(r) : -EBADF;
}

SHMKIT__API uint32_t shmkit_pipe_max_size(shmkit_pipe *h)
{
	return h->ring[0].max_size;
}

SHMKIT__API uint32_t shmkit_pipe_slot_size(shmkit_pipe *h)
{
	return h->ring[0].payload;
}

SHMKIT__API int shmkit_pipe_wait(shmkit_pipe *h)
{
	return wait_(h, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_pipe_wait_try(shmkit_pipe *h)
{
	return wait_(h, 0);
}

SHMKIT__API int shmkit_pipe_wait_timeout(shmkit_pipe *h, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(wait_(h, deadline));
}

SHMKIT__API int shmkit_pipe_send(shmkit_pipe *h, const void *msg, size_t len)
{
	return send_(h, msg, len, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_pipe_send_try(shmkit_pipe *h, const void *msg, size_t len)
{
	return send_(h, msg, len, 0);
}

SHMKIT__API int shmkit_pipe_send_timeout(shmkit_pipe *h, const void *msg, size_t len,
					 int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(send_(h, msg, len, deadline));
}

SHMKIT__API int shmkit_pipe_recv(shmkit_pipe *h, void *buf, size_t size)
{
	return recv_(h, buf, size, NULL, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_pipe_recv_try(shmkit_pipe *h, void *buf, size_t size)
{
	return recv_(h, buf, size, NULL, 0);
}

SHMKIT__API int shmkit_pipe_recv_timeout(shmkit_pipe *h, void *buf, size_t size,
					 int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(recv_(h, buf, size, NULL, deadline));
}

int shmkit__pipe_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	struct pipe_region *p = (struct pipe_region *)r->hdr;
	struct shmkit_queue_stats *st[2] = { &info->queue, &info->queue2 };
	struct shmkit__ring ring;
	int err = check_region(r), k;
	uint32_t i, max, payload;

	if (err)
		return err;
	shmkit__ring_param_split(r->hdr->param[1], &max, &payload);
	info->flags = r->hdr->flags;
	info->ends[0] = info->ends[1] = 0;
	for (i = 0; i < PIPE_SEATS; i++) {
		struct pipe_part *pt = &p->part[i];
		int32_t pid = shmkit__sc_load(&pt->pid);

		/* A live holder's pid (the last one that attached, when it is alive). */
		if (pid && (shmkit__sc_load(&pt->role) & ROLE_HOLD) &&
		    shmkit__seat_alive_gen(r, i, shmkit__sc_load(&pt->seat_gen))) {
			k = shmkit__sc_load(&pt->end) & 1;
			if (!info->ends[k] || pid == shmkit__sc_load(&p->end[k].pid))
				info->ends[k] = pid;
		}
	}
	for (k = 0; k < 2; k++) {
		if (k == 1 && (r->hdr->flags & SHMKIT_SIMPLEX))
			break;
		shmkit__ring_bind(&ring, &p->ring[k],
				  p->slots + k * shmkit__ring_bytes((uint32_t)r->hdr->param[0], payload),
				  (uint32_t)r->hdr->param[0], max, payload);
		memset(st[k], 0, sizeof(*st[k]));
		st[k]->capacity = ring.capacity;
		st[k]->max_size = ring.max_size;
		st[k]->slot_size = ring.payload;
		st[k]->depth = shmkit__ring_depth(&ring);
		st[k]->eof = shmkit__sc_load(&p->ring[k].closed) != 0;
		st[k]->put_total = shmkit__ring_put_total(&ring);
		st[k]->get_total = shmkit__ring_get_total(&ring);
		st[k]->slots_reclaimed = shmkit__sc_load(&p->ring[k].slots_reclaimed);
		st[k]->lost_dead_consumer = shmkit__sc_load(&p->ring[k].lost_dead_consumer);
	}
	return 0;
}
