/*
 * Queue and JoinableQueue: one ring (ring.c) plus a table of participants.
 *
 * Every handle that puts or gets sits in a seat (lease.c) and registers the participant entry
 * of the same index (its claim words, writer bit and debts), so that a process that dies can
 * be noticed and what it held resolved: its claimed slots (ring.h), its writer attachment (so
 * EOF still arrives), the messages it took but never task_done'd (so join still returns).
 * Entry i belongs to whoever holds seat i's lease; when that lease is free and the entry is
 * not, its owner died. Noticing happens in recover(), which a waiter calls every slice it
 * sleeps and shmkit_queue_stats() calls before reporting, and when a handle takes a seat a
 * dead process held (it cleans the entry before using it).
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "notify.h"
#include "proc.h"
#include "region.h"
#include "ring.h"
#include "wait.h"

#define NPARTS ((int)SHMKIT_QUEUE_WRITERS_MAX)
#define ROLE_WRITER 1u
#define REAP_INTERVAL_NS (50 * 1000000LL)

struct part {
	_Atomic int32_t pid; /* 0: free; else its pid, for display (the seat's lease says alive) */
	_Atomic uint32_t role;
	_Atomic uint64_t start;
	struct shmkit__claim claim; /* what it claimed in the ring (ring.h) */
	_Atomic uint64_t owed;      /* joinable: got (or being got) and not yet task_done */
	_Atomic uint32_t seat_gen;  /* the gen of seat i its owner took (see lease.h) */
	uint8_t pad[4];
};
_Static_assert(sizeof(struct part) == 64, "one participant per cache line");

struct queue_region {
	struct shmkit__hdr hdr; /* param: capacity, max_size | payload << 32, writers expected,
				   NPARTS; NPARTS seats follow the slots */
	struct shmkit__lk admin; /* registration, writers, recovery */
	_Alignas(SHMKIT__CACHELINE) uint32_t reserved0;
	_Atomic uint32_t writers_total;
	_Atomic uint32_t join_word; /* futex: bumped by task_done and reaping for joiners */
	_Atomic uint32_t joiners;
	_Atomic uint64_t reaped;
	_Atomic int64_t last_reap; /* CLOCK_MONOTONIC ns of the last look for dead participants */
	struct shmkit__ring_sh ring;
	struct part part[NPARTS];
	_Alignas(SHMKIT__CACHELINE) unsigned char slots[];
};

struct shmkit_queue {
	struct shmkit__region r;
	struct queue_region *q;
	struct shmkit__ring ring;
	struct shmkit__who who;
	int part;      /* our entry, -1 before the first put/get */
	unsigned gen;  /* fork generation that registered it */
	bool writer;
	bool joinable;
	uint32_t expected;
	bool has_fd;                /* shmkit_queue_fd made `note` (in fork generation note.gen) */
	struct shmkit__notify note;
};

static size_t region_size(uint32_t capacity, uint32_t payload)
{
	return sizeof(struct queue_region) + shmkit__ring_bytes(capacity, payload);
}

/* The layout read back from a region: sizes the library itself would have chosen. */
static int params_ok(uint64_t capacity, uint64_t sizes, uint64_t writers)
{
	uint32_t max_size, payload;

	shmkit__ring_param_split(sizes, &max_size, &payload);
	return capacity >= 1 && capacity <= RING_MAX_CAPACITY && max_size >= 1 &&
	       payload >= 1 && shmkit__ring_payload(max_size, payload) == payload &&
	       writers <= NPARTS;
}

static void bind(struct shmkit_queue *h)
{
	struct shmkit__hdr *hd = h->r.hdr;
	uint32_t max_size, payload;

	h->q = (struct queue_region *)hd;
	shmkit__ring_param_split(hd->param[1], &max_size, &payload);
	shmkit__ring_bind(&h->ring, &h->q->ring, h->q->slots, (uint32_t)hd->param[0], max_size,
			  payload);
	h->expected = (uint32_t)hd->param[2];
	h->joinable = hd->flags & SHMKIT_JOINABLE;
	h->part = -1;
	h->who.loan_put = h->who.loan_get = RING_NONE;
	h->ring.dev = h->r.dev;
	h->ring.ino = h->r.ino;
}

SHMKIT__API int shmkit_queue_create(const char *name, const struct shmkit_queue_attr *attr,
				    shmkit_queue **out)
{
	struct shmkit_queue *h;
	struct shmkit__hdr *hd;
	uint32_t max_size, payload;
	unsigned i;
	int err;

	if (!out || !attr)
		return -EINVAL;
	max_size = shmkit__ring_max_size(attr->max_size);
	payload = shmkit__ring_payload(attr->max_size, attr->slot_size);
	for (i = 0; i < sizeof(attr->reserved) / sizeof(attr->reserved[0]); i++)
		if (attr->reserved[i])
			return -EINVAL; /* a field of a later version this library does not know */
	if (!payload || !params_ok(attr->capacity, shmkit__ring_param(max_size, payload),
				   attr->writers) ||
	    (attr->flags & ~SHMKIT_JOINABLE))
		return -EINVAL;
	if (!(h = shmkit__handle_new(sizeof(*h))))
		return -ENOMEM;
	err = shmkit__region_create(name, SHMKIT_KIND_QUEUE, attr->flags,
				    region_size(attr->capacity, payload), NPARTS, attr->mode, &h->r);
	if (err) {
		free(h);
		return err;
	}
	hd = h->r.hdr;
	hd->param[0] = attr->capacity;
	hd->param[1] = shmkit__ring_param(max_size, payload);
	hd->param[2] = attr->writers;
	hd->param[3] = NPARTS;
	bind(h);
	shmkit__region_set_lock(&h->r, &h->q->admin);
	for (i = 0; i < NPARTS; i++)
		shmkit__ring_claim_clear(&h->q->part[i].claim);
	shmkit__ring_init(&h->q->ring, h->q->slots, attr->capacity, max_size, payload);
	shmkit__region_ready(&h->r);
	*out = h;
	return 0;
}

/* Validate a mapped queue region's parameters against its size. */
static int check_region(const struct shmkit__region *r)
{
	const struct shmkit__hdr *hd = r->hdr;

	if (!params_ok(hd->param[0], hd->param[1], hd->param[2]) || hd->param[3] != NPARTS ||
	    !shmkit__obj_size_is(r, region_size((uint32_t)hd->param[0],
						(uint32_t)(hd->param[1] >> 32))) ||
	    r->nseats != NPARTS || r->lk != &((struct queue_region *)hd)->admin ||
	    (hd->flags & ~SHMKIT_JOINABLE))
		return -EBADMSG;
	return 0;
}

SHMKIT__API int shmkit_queue_open(const char *name, shmkit_queue **out)
{
	int err = shmkit__handle_open(name, SHMKIT_KIND_QUEUE, sizeof(**out), check_region, out);

	if (!err)
		bind(*out);
	return err;
}

SHMKIT__API int shmkit_queue_unlink(const char *name)
{
	shmkit__notify_reap_name(name); /* socket files of descriptors whose waiters died */
	return shmkit__region_unlink(name);
}

/* ---- a descriptor for event loops (notify.c) --------------------------------------------- */

static int ensure_part(struct shmkit_queue *h);

static void fd_drop(shmkit_queue *h)
{
	if (!h->has_fd)
		return;
	if (h->note.gen == shmkit__fork_generation() && h->part >= 0)
		shmkit__ring_fd_disarm(&h->ring, (uint32_t)h->part);
	shmkit__notify_close(&h->note);
	h->has_fd = false;
}

SHMKIT__API int shmkit_queue_fd(shmkit_queue *h)
{
	int rc;

	if ((rc = ensure_part(h)))
		return rc;
	if (h->has_fd && h->note.gen == shmkit__fork_generation())
		return h->note.epfd;
	fd_drop(h); /* a fork child's copy of its parent's */
	if ((uint32_t)h->part >= RING_FD_SEATS)
		return -EUSERS;
	if ((rc = shmkit__notify_open(&h->r, (uint32_t)h->part, true, &h->note)))
		return rc;
	h->has_fd = true;
	/* Readable to begin with: the first _try call finds out and arms it. */
	shmkit__notify_self(&h->note);
	return h->note.epfd;
}

/* A _try call found nothing: empty the descriptor, arm it, and look once more, since what was
 * put before the arming notified nobody. */
static bool fd_rearm(shmkit_queue *h)
{
	if (shmkit__likely(!h->has_fd) || h->note.gen != shmkit__fork_generation())
		return false;
	shmkit__notify_drain(&h->note);
	shmkit__ring_fd_arm(&h->ring, (uint32_t)h->part);
	return true;
}

static void wake_joiners(struct queue_region *q)
{
	atomic_fetch_add_explicit(&q->join_word, 1, memory_order_seq_cst);
	shmkit__futex_wake(&q->join_word, INT_MAX);
}

/* A JoinableQueue's unfinished work is what the ring holds plus what participants owe:
 * nothing is counted at put, so a producer that dies anywhere leaves no count behind, and a
 * consumer's debt dies with its participant entry. */
static bool unfinished(struct shmkit_queue *h)
{
	struct queue_region *q = h->q;
	int i;

	/* Ring first: a consumer counts what it owes before its claim empties the ring. Skipped
	 * positions are not work: one published after EOF may never be consumed by anyone. */
	if (shmkit__ring_busy(&h->ring))
		return true;
	for (i = 0; i < NPARTS; i++)
		if (shmkit__sc_load(&q->part[i].owed))
			return true;
	return false;
}

/* J1: establishes a synchronizing edge with J2 (join's announce): task_done's seq_cst store
 * of owed, then this fence, then the load of joiners: either we see the joiner counted and
 * wake it, or its recheck sees the work finished. */
static void joiners_wake(struct queue_region *q)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&q->joiners, memory_order_relaxed))
		wake_joiners(q);
}

/* Writers attached now: the entries with ROLE_WRITER. Derived rather than counted, so a
 * process killed halfway through attaching, detaching or reaping leaves nothing to miscount:
 * each of those changes is the one store of a role bit. */
static uint32_t writers_attached(const struct queue_region *q)
{
	uint32_t n = 0;
	int i;

	for (i = 0; i < NPARTS; i++)
		n += shmkit__sc_load(&q->part[i].pid) && (shmkit__sc_load(&q->part[i].role) & ROLE_WRITER);
	return n;
}

/* Called with admin held: latch EOF if the writers say so. */
static void maybe_eof(struct shmkit_queue *h)
{
	struct queue_region *q = h->q;
	uint32_t total = shmkit__sc_load(&q->writers_total);

	if (writers_attached(q) == 0 && total > 0 &&
	    (h->expected == 0 || total >= h->expected))
		shmkit__ring_close(&h->ring);
}

static int admin_lock(struct shmkit_queue *h, int64_t deadline)
{
	int rc = shmkit__lk_acquire(&h->r, deadline, false);

	return rc < 0 ? rc : 0; /* a dead holder left nothing half-done that we rely on */
}

/* Does any live participant name position q in its put run (get: its get run)? alive[] was
 * filled by the caller. */
struct live_claims {
	struct shmkit_queue *h;
	const signed char *alive;
};

static bool claimed_by_live(uint64_t q, bool get, void *arg)
{
	const struct live_claims *lc = arg;
	struct queue_region *qr = lc->h->q;
	struct shmkit__claim *c;
	uint64_t p, n;
	int i;

	for (i = 0; i < NPARTS; i++) {
		if (lc->alive[i] != 1)
			continue;
		c = &qr->part[i].claim;
		/* A3: seq_cst, establishes a synchronizing edge with R3 (a claim word cleared
		 * after its run was finished: the slots are done). */
		p = shmkit__sc_load(get ? &c->get_pos : &c->put_pos);
		if (p == RING_NONE)
			continue;
		n = shmkit__ring_claim_n(&lc->h->ring,
					 shmkit__sc_load(get ? &c->get_cnt : &c->put_cnt));
		if (q >= p && q - p < n)
			return true;
	}
	return false;
}

/* Reap dead participants; called with admin held. `fresh`: our own entry, whose seat we hold
 * but whose contents a dead predecessor left, is to be reaped too (-1: none). */
static void reap_entries(struct shmkit_queue *h, int fresh)
{
	struct queue_region *q = h->q;
	signed char alive[NPARTS];
	struct live_claims lc = { h, alive };
	bool any_dead = false;
	uint64_t tail0, head0;
	int i;

	for (i = 0; i < NPARTS; i++) {
		int32_t pid = shmkit__sc_load(&q->part[i].pid);
		/* Entry i is its seat's: a seat whose lease nobody holds lost its process. */
		alive[i] = pid == 0 ? -1
				    : i == fresh ? 0
						 : (signed char)shmkit__seat_alive_gen(
							   &h->r, (uint32_t)i,
							   shmkit__sc_load(&q->part[i].seat_gen));
		any_dead |= alive[i] == 0;
	}
	if (!any_dead)
		return;
	/* S1 (the reaper's side): seq_cst loads before the scan establish a synchronizing edge
	 * with the claim CASes: whoever claimed a position below these did so (claim word
	 * stored) before we look, so the scan sees a live claimant. A position claimed after this
	 * may belong to a live participant the scan already passed. */
	tail0 = shmkit__sc_load(&q->ring.tail);
	head0 = shmkit__sc_load(&q->ring.head);
	for (i = 0; i < NPARTS; i++) {
		struct part *pt = &q->part[i];

		if (alive[i] != 0)
			continue;
		/* Its runs (a batch's or a large message's whole range), streams and wait. */
		shmkit__ring_reap(&h->ring, (uint32_t)i, &pt->claim, RING_SIDE_PUT | RING_SIDE_GET,
				  tail0, head0, claimed_by_live, &lc);
		/* A descriptor it armed: nobody is left to notify. */
		shmkit__ring_fd_disarm(&h->ring, (uint32_t)i);
		shmkit__sc_store(&pt->role, 0);
		shmkit__sc_store(&pt->owed, 0); /* what it owed join() died with it */
		shmkit__ring_claim_clear(&pt->claim);
		shmkit__sc_store(&pt->start, 0);
		shmkit__sc_store(&pt->pid, 0);
		shmkit__sc_fetch_add(&q->reaped, 1);
	}
	maybe_eof(h);
	joiners_wake(q);
}

static void reap(struct shmkit_queue *h)
{
	reap_entries(h, -1);
}

/* The ring's recover callback: reap, unless another process is at it or did it within the
 * last REAP_INTERVAL_NS (so many idle waiters do not each test every seat's lease ten times a
 * second: a system call per seat). */
static void reap_now(struct shmkit_queue *h)
{
	if (admin_lock(h, 0) == 0) {
		shmkit__sc_store(&h->q->last_reap, shmkit__now());
		reap(h);
		shmkit__lk_release(&h->r);
	}
}

static void recover(void *arg)
{
	struct shmkit_queue *h = arg;
	int64_t now = shmkit__now(), last = shmkit__sc_load(&h->q->last_reap);

	if (now - last < REAP_INTERVAL_NS && now >= last)
		return;
	reap_now(h);
}

/* Make sure this handle has a participant entry in this process: the entry of its seat. */
static int ensure_part(struct shmkit_queue *h)
{
	struct queue_region *q = h->q;
	unsigned gen = shmkit__fork_generation();
	struct part *pt;
	int32_t pid;
	uint64_t start;
	int rc, seat;

	if (shmkit__likely(h->part >= 0 && h->gen == gen))
		return 0;
	/* A fork child's inherited handle: the entry and writer status are the parent's. */
	h->part = -1;
	h->writer = false;
	if ((seat = shmkit__seat_take(&h->r)) < 0)
		return seat;
	shmkit__self(&pid, &start);
	if ((rc = admin_lock(h, shmkit__deadline(SHMKIT__STATE_LOCK_NS))))
		return rc;
	pt = &q->part[seat];
	/* We hold the seat's lease: whatever the entry still says, its owner is gone. */
	if (shmkit__sc_load(&pt->pid))
		reap_entries(h, seat);
	shmkit__sc_store(&pt->role, 0);
	shmkit__sc_store(&pt->owed, 0);
	shmkit__ring_claim_clear(&pt->claim);
	shmkit__sc_store(&pt->start, start);
	shmkit__sc_store(&pt->seat_gen, shmkit__seat_gen(&h->r, (uint32_t)seat));
	shmkit__sc_store(&pt->pid, pid);
	shmkit__lk_release(&h->r);
	h->part = seat;
	h->gen = gen;
	/* A fork child's inherited loans are the parent's to finish (who_bind forgets them). */
	shmkit__ring_who_bind(&h->who, &pt->claim, (uint32_t)seat,
			      h->joinable ? &pt->owed : NULL);
	return 0;
}

SHMKIT__API int shmkit_queue_attach_writer(shmkit_queue *h)
{
	struct queue_region *q = h->q;
	int rc;

	if ((rc = ensure_part(h)))
		return rc;
	if (h->writer)
		return 0;
	if ((rc = admin_lock(h, shmkit__deadline(SHMKIT__STATE_LOCK_NS))))
		return rc;
	if (shmkit__sc_load(&q->ring.closed))
		rc = -EPIPE;
	else if (h->expected && shmkit__sc_load(&q->writers_total) >= h->expected)
		rc = -EDQUOT; /* every writer the queue was made for has attached */
	if (!rc) {
		/* Total first: dying between the two is a writer that came and went. */
		shmkit__sc_fetch_add(&q->writers_total, 1);
		shmkit__sc_fetch_or(&q->part[h->part].role, ROLE_WRITER);
		h->writer = true;
	}
	shmkit__lk_release(&h->r);
	return rc;
}

SHMKIT__API int shmkit_queue_detach_writer(shmkit_queue *h)
{
	struct queue_region *q = h->q;
	int rc;

	if (!h->writer || h->gen != shmkit__fork_generation())
		return 0;
	if ((rc = admin_lock(h, shmkit__deadline(SHMKIT__STATE_LOCK_NS))))
		return rc;
	shmkit__sc_fetch_and(&q->part[h->part].role, ~ROLE_WRITER);
	h->writer = false;
	maybe_eof(h);
	shmkit__lk_release(&h->r);
	return 0;
}

SHMKIT__API int shmkit_queue_shutdown(shmkit_queue *h)
{
	shmkit__ring_close(&h->ring);
	return 0;
}

SHMKIT__API int shmkit_queue_close(shmkit_queue *h)
{
	struct part *pt;

	if (!h)
		return 0;
	fd_drop(h);
	if (h->part >= 0 && h->gen == shmkit__fork_generation()) {
		/* A loan never outlives its handle: a reserved slot is skipped, a peeked message
		 * is released (consumed). */
		if (h->who.loan_put != RING_NONE)
			shmkit__ring_commit(&h->ring, &h->who, 0, true);
		if (h->who.loan_get != RING_NONE)
			shmkit__ring_release(&h->ring, &h->who);
		shmkit_queue_detach_writer(h);
		if (admin_lock(h, shmkit__deadline(SHMKIT__STATE_LOCK_NS)) == 0) {
			pt = &h->q->part[h->part];
			/* Messages got and not task_done'd by a handle that goes away would
			 * keep join waiting forever. */
			shmkit__sc_store(&pt->owed, 0);
			shmkit__sc_store(&pt->start, 0);
			shmkit__sc_store(&pt->pid, 0);
			joiners_wake(h->q);
			shmkit__lk_release(&h->r);
		}
	}
	shmkit__region_close(&h->r);
	free(h);
	return 0;
}

/* put's slow path: attach as a writer; -EBUSY while this handle's reserve loan is out (its
 * claim word names the loaned slot and must keep naming it). */
static int attach_for_put(shmkit_queue *h)
{
	if (h->gen == shmkit__fork_generation() && h->part >= 0 &&
	    h->who.loan_put != RING_NONE)
		return -EBUSY;
	return h->writer && h->gen == shmkit__fork_generation() ? 0
								: shmkit_queue_attach_writer(h);
}

static int put(shmkit_queue *h, const void *msg, size_t len, int64_t deadline)
{
	int rc;

	/* Refused before attaching: a put that cannot succeed must not count as a writer. */
	if (shmkit__unlikely(len > h->ring.max_size))
		return -EMSGSIZE;
	if (shmkit__unlikely(!h->writer || h->gen != shmkit__fork_generation() ||
			     h->who.loan_put != RING_NONE)) {
		if ((rc = attach_for_put(h)))
			return rc;
	}
	return shmkit__ring_put(&h->ring, &h->who, msg, len, deadline, recover, h);
}

/* One get into buf, or (alloc non-NULL) into a buffer it allocates. */
static int ring_get(shmkit_queue *h, void *buf, size_t size, void **alloc, int64_t deadline,
		    shmkit__ring_recover_fn rec)
{
	return alloc ? shmkit__ring_get_alloc(&h->ring, &h->who, alloc, deadline, rec, h)
		     : shmkit__ring_get(&h->ring, &h->who, buf, size, deadline, rec, h);
}

static int get(shmkit_queue *h, void *buf, size_t size, void **alloc, int64_t deadline)
{
	int rc;

	if (shmkit__unlikely((rc = ensure_part(h))))
		return rc;
	if (shmkit__unlikely(h->who.loan_get != RING_NONE))
		return -EBUSY; /* a peek is out: the claim word names it */
	rc = ring_get(h, buf, size, alloc, deadline, recover);
	if (rc == -EAGAIN && fd_rearm(h))
		rc = ring_get(h, buf, size, alloc, 0, NULL);
	return rc;
}

SHMKIT__API int shmkit_queue_put(shmkit_queue *h, const void *msg, size_t len)
{
	return put(h, msg, len, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_queue_put_try(shmkit_queue *h, const void *msg, size_t len)
{
	return put(h, msg, len, 0);
}

SHMKIT__API int shmkit_queue_put_timeout(shmkit_queue *h, const void *msg, size_t len,
					 int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(put(h, msg, len, deadline));
}

SHMKIT__API int shmkit_queue_get(shmkit_queue *h, void *buf, size_t size)
{
	return get(h, buf, size, NULL, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_queue_get_try(shmkit_queue *h, void *buf, size_t size)
{
	return get(h, buf, size, NULL, 0);
}

SHMKIT__API int shmkit_queue_get_timeout(shmkit_queue *h, void *buf, size_t size,
					 int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(get(h, buf, size, NULL, deadline));
}

SHMKIT__API int shmkit_queue_next_size(shmkit_queue *h)
{
	return shmkit__ring_next_size(&h->ring);
}

SHMKIT__API int shmkit_queue_get_alloc(shmkit_queue *h, void **msg)
{
	return get(h, NULL, 0, msg, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_queue_get_alloc_try(shmkit_queue *h, void **msg)
{
	return get(h, NULL, 0, msg, 0);
}

SHMKIT__API int shmkit_queue_get_alloc_timeout(shmkit_queue *h, void **msg, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(get(h, NULL, 0, msg, deadline));
}

/* ---- batches ---------------------------------------------------------------------------- */

static int put_many(shmkit_queue *h, const struct iovec *msgs, unsigned n, int64_t deadline)
{
	unsigned i;
	int rc;

	for (i = 0; msgs && i < n; i++)
		if (msgs[i].iov_len > h->ring.max_size)
			return -EMSGSIZE;
	if ((rc = attach_for_put(h)))
		return rc;
	return shmkit__ring_put_many(&h->ring, &h->who, msgs, n, deadline, recover, h);
}

static int get_many(shmkit_queue *h, struct iovec *bufs, unsigned n, int64_t deadline)
{
	int rc;

	if (shmkit__unlikely((rc = ensure_part(h))))
		return rc;
	if (h->who.loan_get != RING_NONE)
		return -EBUSY;
	rc = shmkit__ring_get_many(&h->ring, &h->who, bufs, n, deadline, recover, h);
	if (rc == -EAGAIN && fd_rearm(h))
		rc = shmkit__ring_get_many(&h->ring, &h->who, bufs, n, 0, NULL, NULL);
	return rc;
}

SHMKIT__API int shmkit_queue_put_many(shmkit_queue *h, const struct iovec *msgs, unsigned n)
{
	return put_many(h, msgs, n, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_queue_put_many_try(shmkit_queue *h, const struct iovec *msgs, unsigned n)
{
	return put_many(h, msgs, n, 0);
}

SHMKIT__API int shmkit_queue_put_many_timeout(shmkit_queue *h, const struct iovec *msgs,
					      unsigned n, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(put_many(h, msgs, n, deadline));
}

SHMKIT__API int shmkit_queue_get_many(shmkit_queue *h, struct iovec *bufs, unsigned n)
{
	return get_many(h, bufs, n, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_queue_get_many_try(shmkit_queue *h, struct iovec *bufs, unsigned n)
{
	return get_many(h, bufs, n, 0);
}

SHMKIT__API int shmkit_queue_get_many_timeout(shmkit_queue *h, struct iovec *bufs, unsigned n,
					      int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(get_many(h, bufs, n, deadline));
}

/* ---- loans ------------------------------------------------------------------------------ */

static int reserve(shmkit_queue *h, void **buf, int64_t deadline)
{
	int rc;

	if (!buf)
		return -EINVAL;
	if ((rc = attach_for_put(h)))
		return rc;
	return shmkit__ring_reserve(&h->ring, &h->who, buf, deadline, recover, h);
}

SHMKIT__API int shmkit_queue_reserve(shmkit_queue *h, void **buf)
{
	return reserve(h, buf, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_queue_reserve_try(shmkit_queue *h, void **buf)
{
	return reserve(h, buf, 0);
}

SHMKIT__API int shmkit_queue_reserve_timeout(shmkit_queue *h, void **buf, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(reserve(h, buf, deadline));
}

SHMKIT__API int shmkit_queue_commit(shmkit_queue *h, size_t len)
{
	if (h->part < 0 || h->gen != shmkit__fork_generation())
		return -EINVAL;
	return shmkit__ring_commit(&h->ring, &h->who, len, false);
}

static int peek(shmkit_queue *h, const void **msg, int64_t deadline)
{
	int rc;

	if (!msg)
		return -EINVAL;
	if ((rc = ensure_part(h)))
		return rc;
	rc = shmkit__ring_peek(&h->ring, &h->who, msg, deadline, recover, h);
	if (rc == -EAGAIN && fd_rearm(h))
		rc = shmkit__ring_peek(&h->ring, &h->who, msg, 0, NULL, NULL);
	return rc;
}

SHMKIT__API int shmkit_queue_peek(shmkit_queue *h, const void **msg)
{
	return peek(h, msg, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_queue_peek_try(shmkit_queue *h, const void **msg)
{
	return peek(h, msg, 0);
}

SHMKIT__API int shmkit_queue_peek_timeout(shmkit_queue *h, const void **msg, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(peek(h, msg, deadline));
}

SHMKIT__API int shmkit_queue_release(shmkit_queue *h)
{
	if (h->part < 0 || h->gen != shmkit__fork_generation())
		return -EINVAL;
	return shmkit__ring_release(&h->ring, &h->who);
}

SHMKIT__API int shmkit_queue_task_done(shmkit_queue *h)
{
	_Atomic uint64_t *out;
	uint64_t n;

	if (!h->joinable)
		return -ENOTSUP;
	if (h->part < 0 || h->gen != shmkit__fork_generation())
		return -EINVAL;
	out = &h->q->part[h->part].owed;
	n = atomic_load_explicit(out, memory_order_relaxed);
	if (n == 0)
		return -EINVAL;
	atomic_store_explicit(out, n - 1, memory_order_seq_cst);
	joiners_wake(h->q);
	return 0;
}

static int join(shmkit_queue *h, int64_t deadline)
{
	struct queue_region *q = h->q;
	int64_t now, until, next_recover = 0;
	uint32_t seen;
	int rc;

	if (!h->joinable)
		return -ENOTSUP;
	for (;;) {
		if (!unfinished(h))
			return 0;
		now = shmkit__now();
		if (now >= deadline) {
			/* As in the ring's wait: short timed calls must see dead consumers too. */
			recover(h);
			if (!unfinished(h))
				return 0;
			return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
		}
		if (!next_recover)
			next_recover = now + SHMKIT__SLICE_NS;
		until = deadline < next_recover ? deadline : next_recover;
		/* J2: announce (seq_cst), then recheck, then sleep; with J1 (joiners_wake). */
		shmkit__sc_fetch_add(&q->joiners, 1);
		seen = shmkit__sc_load(&q->join_word);
		rc = !unfinished(h) ? 0 : shmkit__futex_wait(&q->join_word, seen, until);
		shmkit__ring_unwait(&q->joiners);
		if (rc < 0 && rc != -ETIMEDOUT)
			return rc;
		if (shmkit__now() >= next_recover) {
			recover(h); /* consumers that died owe nothing any more */
			next_recover = shmkit__now() + SHMKIT__SLICE_NS;
		}
	}
}

SHMKIT__API int shmkit_queue_join(shmkit_queue *h)
{
	return join(h, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_queue_join_try(shmkit_queue *h)
{
	return join(h, 0);
}

SHMKIT__API int shmkit_queue_join_timeout(shmkit_queue *h, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(join(h, deadline));
}

SHMKIT__API size_t shmkit_queue_size(shmkit_queue *h)
{
	return shmkit__ring_depth(&h->ring);
}

SHMKIT__API int shmkit_queue_empty(shmkit_queue *h)
{
	return shmkit__ring_depth(&h->ring) == 0;
}

SHMKIT__API int shmkit_queue_full(shmkit_queue *h)
{
	return shmkit__ring_depth(&h->ring) >= h->ring.capacity;
}

SHMKIT__API uint32_t shmkit_queue_max_size(shmkit_queue *h)
{
	return h->ring.max_size;
}

SHMKIT__API uint32_t shmkit_queue_slot_size(shmkit_queue *h)
{
	return h->ring.payload;
}

/* Fill stats from a validated queue region (also used read-only by shmkit_info). */
static void fill_stats(const struct shmkit__region *r, struct shmkit_queue_stats *st)
{
	struct queue_region *q = (struct queue_region *)r->hdr;
	struct shmkit__ring ring;
	uint32_t max_size, payload;
	int i;


	memset(st, 0, sizeof(*st));
	shmkit__ring_param_split(r->hdr->param[1], &max_size, &payload);
	shmkit__ring_bind(&ring, &q->ring, q->slots, (uint32_t)r->hdr->param[0], max_size,
			  payload);
	st->capacity = ring.capacity;
	st->max_size = ring.max_size;
	st->slot_size = ring.payload;
	st->depth = shmkit__ring_depth(&ring);
	st->writers_expected = (uint32_t)r->hdr->param[2];
	st->writers_attached = writers_attached(q);
	st->writers_total = shmkit__sc_load(&q->writers_total);
	st->producers_waiting = shmkit__sc_load(&q->ring.prod_waiting);
	st->consumers_waiting = shmkit__sc_load(&q->ring.cons_waiting);
	for (i = 0; i < NPARTS; i++)
		st->participants += shmkit__sc_load(&q->part[i].pid) != 0 &&
				    shmkit__seat_alive_gen(r, (uint32_t)i,
							   shmkit__sc_load(&q->part[i].seat_gen));
	st->eof = shmkit__sc_load(&q->ring.closed) != 0;
	st->joinable = (r->hdr->flags & SHMKIT_JOINABLE) != 0;
	st->put_total = shmkit__ring_put_total(&ring);
	st->get_total = shmkit__ring_get_total(&ring);
	for (i = 0; i < NPARTS; i++)
		st->unfinished += shmkit__sc_load(&q->part[i].owed);
	st->unfinished += st->joinable ? st->depth : 0;
	st->slots_reclaimed = shmkit__sc_load(&q->ring.slots_reclaimed);
	st->lost_dead_consumer = shmkit__sc_load(&q->ring.lost_dead_consumer);
	st->participants_reaped = shmkit__sc_load(&q->reaped);
}

SHMKIT__API int shmkit_queue_stats(shmkit_queue *h, struct shmkit_queue_stats *st)
{
	if (!st)
		return -EINVAL;
	reap_now(h);
	fill_stats(&h->r, st);
	return 0;
}

int shmkit__queue_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	int err = check_region(r);

	if (err)
		return err;
	fill_stats(r, &info->queue);
	info->flags = r->hdr->flags;
	return 0;
}

/*
 * A relay's confession. A process that takes messages from a queue and forwards them elsewhere
 * (shmkit bridge) may die holding some it already got: the queue handed them over, so only the
 * relay's successor, learning from the far side what never arrived, can say how many. It
 * records them here, in the figure the queue keeps for consumers that died holding a message,
 * so the loss shows in stats instead of vanishing.
 */
SHMKIT__API int shmkit_queue_count_lost(shmkit_queue *q, uint64_t n)
{
	/* Relaxed: a statistic, read as a snapshot like the reaper's own increments. */
	atomic_fetch_add_explicit(&q->q->ring.lost_dead_consumer, n, memory_order_relaxed);
	return 0;
}
