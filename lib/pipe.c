/*
 * Pipe: two ends in one region, joined by one ring per direction (ring k carries end k's
 * messages to the other end; a simplex pipe has ring 0 only).
 *
 * Each end is held by one process, through its seat (lease.c). Closing an end, or dying with it, closes
 * its outgoing ring for writing (the peer drains it, then reads EOF) and its incoming ring for
 * reading (the peer's sends fail with -EPIPE). A dead end is noticed by its peer while the peer
 * waits (the ring's recover callback), and its half-written slot, if any, is skipped.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "notify.h"
#include "proc.h"
#include "region.h"
#include "ring.h"
#include "wait.h"

enum { END_FREE = 0, END_ATTACHED = 1, END_CLOSED = 2 };

struct pipe_end {
	_Atomic int32_t pid;
	_Atomic uint32_t state;
	_Atomic uint64_t start;
	/* What it claimed: put_* in its outgoing ring, get_* in its incoming one (ring.h). */
	struct shmkit__claim claim;
	_Atomic uint32_t seat; /* the holder's seat: its lease says whether it lives */
	_Atomic uint32_t seat_gen; /* and that seat's gen when it attached */
	uint8_t pad[8];
};
_Static_assert(sizeof(struct pipe_end) == 64, "one end per cache line");

#define PIPE_SEATS 64u /* the two ends, and whoever else opens the pipe to try to attach */

struct pipe_region {
	struct shmkit__hdr hdr; /* param: capacity, max_size | payload << 32; flags: SHMKIT_SIMPLEX */
	struct shmkit__lk admin;
	_Alignas(SHMKIT__CACHELINE) struct pipe_end end[2];
	struct shmkit__ring_sh ring[2];
	_Alignas(SHMKIT__CACHELINE) unsigned char slots[];
};

struct shmkit_pipe {
	struct shmkit__region r;
	struct pipe_region *p;
	struct shmkit__ring ring[2];
	struct shmkit__who who;
	int nrings;
	int end;      /* -1 until attached */
	unsigned gen; /* fork generation of the attach */
	int64_t last_check; /* when recover() last looked at the peer */
	bool has_fd;        /* shmkit_pipe_fd made `note` (in fork generation note.gen) */
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
}

SHMKIT__API int shmkit_pipe_create(const char *name, uint32_t capacity, uint32_t max_size,
				   unsigned flags, unsigned mode, shmkit_pipe **out)
{
	struct shmkit_pipe *h;
	int err, k, nrings = flags & SHMKIT_SIMPLEX ? 1 : 2;
	uint32_t max = shmkit__ring_max_size(max_size), payload = shmkit__ring_payload(max, 0);
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
	for (k = 0; k < 2; k++)
		shmkit__ring_claim_clear(&h->p->end[k].claim);
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

/* End e is gone (closed or dead): its outgoing ring ends, its incoming ring has no reader. */
static void end_gone(struct shmkit_pipe *h, int e)
{
	if (e < h->nrings)
		shmkit__ring_close(&h->ring[e]);
	if (1 - e < h->nrings)
		shmkit__ring_close_read(&h->ring[1 - e]);
}

/* The ring's recover callback: has the peer died holding its end? */
static void recover(void *arg)
{
	struct shmkit_pipe *h = arg;
	struct pipe_end *pe;
	int peer = 1 - h->end;
	int64_t now = shmkit__now();

	/* Polling callers (the _try forms) come here at every empty try: look at most every
	 * PEER_CHECK_NS, since a look takes the admin lock and tests the peer's lease (system
	 * calls). */
	if (now - h->last_check < PEER_CHECK_NS && now >= h->last_check)
		return;
	h->last_check = now;
	if (h->end < 0 || shmkit__lk_acquire(&h->r, 0, false) < 0)
		return;
	pe = &h->p->end[peer];
	if (shmkit__sc_load(&pe->state) == END_ATTACHED &&
	    !shmkit__seat_alive_gen(&h->r, shmkit__sc_load(&pe->seat), shmkit__sc_load(&pe->seat_gen))) {
		/* The peer is the only other participant: nobody alive claims what it did. It
		 * put on its own ring and got from ours. */
		if (peer < h->nrings)
			shmkit__ring_reap(&h->ring[peer], (uint32_t)peer, &pe->claim, RING_SIDE_PUT,
					  RING_NONE, RING_NONE, NULL, NULL);
		if (h->end < h->nrings)
			shmkit__ring_reap(&h->ring[h->end], (uint32_t)peer, &pe->claim,
					  RING_SIDE_GET, RING_NONE, RING_NONE, NULL, NULL);
		shmkit__sc_store(&pe->state, END_CLOSED);
		end_gone(h, peer);
	}
	shmkit__lk_release(&h->r);
}

SHMKIT__API int shmkit_pipe_attach(shmkit_pipe *h, int end)
{
	struct pipe_end *pe;
	int32_t pid;
	uint64_t start;
	int rc, seat;

	if (end != 0 && end != 1)
		return -EINVAL;
	if (h->end >= 0 && h->gen == shmkit__fork_generation())
		return h->end == end ? 0 : -EBUSY;
	h->end = -1;
	shmkit__self(&pid, &start);
	if ((seat = shmkit__seat_take(&h->r)) < 0)
		return seat;
	rc = shmkit__lk_acquire(&h->r, shmkit__deadline(SHMKIT__STATE_LOCK_NS), false);
	if (rc < 0)
		return rc;
	rc = 0;
	pe = &h->p->end[end];
	switch (shmkit__sc_load(&pe->state)) {
	case END_FREE:
		shmkit__sc_store(&pe->start, start);
		shmkit__sc_store(&pe->pid, pid);
		shmkit__sc_store(&pe->seat, (uint32_t)seat);
		shmkit__sc_store(&pe->seat_gen, shmkit__seat_gen(&h->r, (uint32_t)seat));
		shmkit__sc_store(&pe->state, END_ATTACHED);
		break;
	case END_ATTACHED:
		rc = shmkit__seat_alive_gen(&h->r, shmkit__sc_load(&pe->seat),
					    shmkit__sc_load(&pe->seat_gen))
			     ? -EBUSY
			     : -EPIPE;
		break;
	default:
		rc = -EPIPE;
	}
	shmkit__lk_release(&h->r);
	if (rc)
		return rc;
	h->end = end;
	h->gen = shmkit__fork_generation();
	shmkit__ring_who_bind(&h->who, &pe->claim, (uint32_t)end, NULL);
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
	h->has_fd = false;
}

SHMKIT__API int shmkit_pipe_fd(shmkit_pipe *h)
{
	int rc, seat;

	if (!ring_for(h, 1))
		return -EBADF; /* not attached, or an end that only sends */
	if (h->has_fd && h->note.gen == shmkit__fork_generation())
		return h->note.epfd;
	fd_drop(h);
	seat = shmkit__seat_mine(&h->r);
	if (seat < 0 || (uint32_t)seat >= RING_FD_SEATS)
		return -EUSERS;
	if ((rc = shmkit__notify_open(&h->r, (uint32_t)seat, true, &h->note)))
		return rc;
	h->has_fd = true;
	shmkit__notify_self(&h->note); /* readable to begin with, see shmkit_queue_fd */
	return h->note.epfd;
}

SHMKIT__API int shmkit_pipe_close(shmkit_pipe *h)
{
	if (!h)
		return 0;
	fd_drop(h);
	if (h->end >= 0 && h->gen == shmkit__fork_generation()) {
		shmkit__sc_store(&h->p->end[h->end].state, END_CLOSED);
		end_gone(h, h->end);
	}
	shmkit__region_close(&h->r);
	free(h);
	return 0;
}

/* The ring this handle sends on (dir 0) or receives from (dir 1), or NULL. */
static struct shmkit__ring *ring_for(struct shmkit_pipe *h, int dir)
{
	int k;

	if (h->end < 0 || h->gen != shmkit__fork_generation())
		return NULL;
	k = dir == 0 ? h->end : 1 - h->end;
	return k < h->nrings ? &h->ring[k] : NULL;
}

static int send_(shmkit_pipe *h, const void *msg, size_t len, int64_t deadline)
{
	struct shmkit__ring *r = ring_for(h, 0);

	if (!r)
		return -EBADF;
	return shmkit__ring_put(r, &h->who, msg, len, deadline, recover, h);
}

/* One receive into buf, or (alloc non-NULL) into a buffer it allocates. */
static int ring_get(shmkit_pipe *h, struct shmkit__ring *r, void *buf, size_t size,
		    void **alloc, int64_t deadline, shmkit__ring_recover_fn rec)
{
	return alloc ? shmkit__ring_get_alloc(r, &h->who, alloc, deadline, rec, h)
		     : shmkit__ring_get(r, &h->who, buf, size, deadline, rec, h);
}

static int recv_(shmkit_pipe *h, void *buf, size_t size, void **alloc, int64_t deadline)
{
	struct shmkit__ring *r = ring_for(h, 1);
	int rc;

	if (!r)
		return -EBADF;
	rc = ring_get(h, r, buf, size, alloc, deadline, recover);
	if (rc == -EAGAIN && h->has_fd && h->note.gen == shmkit__fork_generation()) {
		/* As in queue.c: empty, arm, and look once more. */
		shmkit__notify_drain(&h->note);
		shmkit__ring_fd_arm(r, h->note.seat);
		rc = ring_get(h, r, buf, size, alloc, 0, NULL);
	}
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
	uint32_t max, payload;
	int err = check_region(r), k;

	if (err)
		return err;
	shmkit__ring_param_split(r->hdr->param[1], &max, &payload);
	info->flags = r->hdr->flags;
	for (k = 0; k < 2; k++) {
		info->ends[k] = shmkit__sc_load(&p->end[k].state) == END_ATTACHED
					? shmkit__sc_load(&p->end[k].pid)
					: 0;
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
