/*
 * The message ring: claim, copy, publish; see ring.h for the protocol and its crash safety.
 *
 * Memory ordering in one place:
 *  - slot.len and data are written before the release store of slot.seq that publishes them,
 *    and read after the acquire load that sees it; the consumer's release of the slot is a
 *    release store so the producer of the next lap sees the consumer done with the data.
 *  - the claim word (put_pos/get_pos) is stored relaxed before the seq_cst CAS that claims the
 *    position, so anyone who sees the CAS's effect (tail/head moved) sees the claim word too;
 *    it is cleared with a release store after publish/release, so anyone who sees it cleared
 *    sees the slot already published/released.
 *  - waking: the side that changed a slot issues a seq_cst fence and then reads the waiting
 *    count; a waiter increments the count (seq_cst RMW), reads the futex word, then retries.
 *    Either the waker sees the count, or the waiter's retry sees the slot (store buffering is
 *    what the fence excludes).
 */
#include "config.h"

#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/uio.h>

#include "notify.h"
#include "ring.h"

#define SPIN_TRIES 200     /* bounded: oversubscribed spinners must not starve the rest */
#define SPIN_YIELD_EVERY 50

static inline struct shmkit__slot *slot_at(struct shmkit__ring *r, uint64_t pos)
{
	return (struct shmkit__slot *)(r->slots + (pos & r->mask) * r->slot_size);
}

uint32_t shmkit__ring_slot_size(uint32_t max_size)
{
	/* Whole cache lines, so neighbouring slots written by different processes don't share. */
	uint64_t s = sizeof(struct shmkit__slot) + (uint64_t)max_size;

	return (uint32_t)((s + SHMKIT__CACHELINE - 1) & ~(uint64_t)(SHMKIT__CACHELINE - 1));
}

uint32_t shmkit__ring_nslots(uint32_t capacity)
{
	uint32_t n = 2; /* one slot cannot tell "published" (pos + 1) from "free for pos + 1" */

	while (n < capacity)
		n <<= 1;
	return n;
}

uint64_t shmkit__ring_bytes(uint32_t capacity, uint32_t max_size)
{
	return (uint64_t)shmkit__ring_nslots(capacity) * shmkit__ring_slot_size(max_size);
}

void shmkit__ring_bind(struct shmkit__ring *r, struct shmkit__ring_sh *sh, unsigned char *slots,
		       uint32_t capacity, uint32_t max_size)
{
	r->sh = sh;
	r->slots = slots;
	r->capacity = capacity;
	r->max_size = max_size;
	r->nslots = shmkit__ring_nslots(capacity);
	r->mask = r->nslots - 1;
	r->slot_size = shmkit__ring_slot_size(max_size);
}

void shmkit__ring_init(struct shmkit__ring_sh *sh, unsigned char *slots, uint32_t capacity,
		       uint32_t max_size)
{
	struct shmkit__ring r;
	uint64_t i;

	shmkit__ring_bind(&r, sh, slots, capacity, max_size);
	for (i = 0; i < r.nslots; i++)
		atomic_store_explicit(&slot_at(&r, i)->seq, i, memory_order_relaxed);
}

/*
 * Sleeping is an eventcount whose futex word counts sleepers and wake-ups owed to them:
 *
 *   bits 0..14   W: waiters armed on the word (they may be asleep in the kernel)
 *   bits 15..29  P: wake-ups handed out that no waiter has taken in yet
 *
 * A waiter adds itself to W before its last look at the ring, then sleeps on the value it
 * made. A waker that changed the ring gives out wake-ups only while W > P: one per message (or
 * per slot freed), each an increment of P and a FUTEX_WAKE of one. So with 16 consumers asleep
 * a message wakes one of them, not all; and a burst of puts towards a consumer that was woken
 * but has not run yet costs one wake-up, because P already covers it and the other puts see
 * W == P and make no syscall. Every waiter that comes back from the kernel (woken, timed out,
 * interrupted, or because the word changed) takes one wake-up in (P - 1, not below 0) before
 * it looks again; one that leaves takes itself out of W and keeps P <= W. Taking in a wake-up
 * meant for another only makes P too small, which costs a spurious wake-up, never a lost one:
 * any change to the word also sends back to the ring every waiter about to sleep on the old
 * value. A waiter that dies armed is taken out of W by whoever reaps its participant entry
 * (until then it costs at most one futile FUTEX_WAKE).
 *
 * Bit 30 (EC_FD, on not_empty only) says some handle armed its pollable descriptor: the next
 * waker clears it and notifies every seat in fd_armed (each arming buys one notification).
 */
#define EC_FD (1u << 30)
#define EC_W_ONE 1u
#define EC_P_ONE (1u << 15)
#define EC_FIELD 0x7fffu

static inline uint32_t ec_w(uint32_t v)
{
	return v & EC_FIELD;
}

static inline uint32_t ec_p(uint32_t v)
{
	return (v >> 15) & EC_FIELD;
}

static inline uint32_t ec_make(uint32_t v, uint32_t w, uint32_t p)
{
	return (v & ~(EC_FIELD | EC_FIELD << 15)) | w | p << 15;
}

/* Hand out up to n wake-ups (INT_MAX: one to every armed waiter). */
static void wake_n(_Atomic uint32_t *word, uint32_t n)
{
	uint32_t v = atomic_load_explicit(word, memory_order_relaxed), give, nv;

	do {
		give = ec_w(v) > ec_p(v) ? ec_w(v) - ec_p(v) : 0;
		if (give > n)
			give = n;
		if (!give)
			return;
		nv = ec_make(v, ec_w(v), ec_p(v) + give);
	} while (!atomic_compare_exchange_weak_explicit(word, &v, nv, memory_order_seq_cst,
							memory_order_relaxed));
	shmkit__futex_wake(word, give >= EC_FIELD ? INT_MAX : (int)give);
}

/* Notify the armed descriptors, if the flag says there are any (the one who clears it does). */
static void wake_fds(struct shmkit__ring *r, _Atomic uint32_t *word)
{
	uint64_t bits;
	unsigned i;
	int b;

	if (!(atomic_fetch_and_explicit(word, ~EC_FD, memory_order_seq_cst) & EC_FD))
		return;
	for (i = 0; i < RING_FD_SEATS / 64; i++) {
		if (!atomic_load_explicit(&r->sh->fd_armed[i], memory_order_relaxed))
			continue;
		bits = atomic_exchange_explicit(&r->sh->fd_armed[i], 0, memory_order_seq_cst);
		while (bits) {
			b = __builtin_ctzll(bits);
			bits &= bits - 1;
			shmkit__notify_send(r->dev, r->ino, i * 64 + (unsigned)b);
		}
	}
}

static void wake_all(struct shmkit__ring *r, _Atomic uint32_t *word)
{
	if (atomic_load_explicit(word, memory_order_seq_cst) & EC_FD)
		wake_fds(r, word);
	wake_n(word, EC_FIELD);
}

static inline void wake_sleepers(struct shmkit__ring *r, _Atomic uint32_t *word, uint32_t n)
{
	uint32_t v;

	/* Pairs with the waiter's RMW and heavy fence in wait_loop (and shmkit__ring_fd_arm):
	 * either we see it in W (or EC_FD), or its last look at the ring sees what we published
	 * before this fence. */
	shmkit__light_fence();
	v = atomic_load_explicit(word, memory_order_relaxed);
	if (shmkit__unlikely(ec_w(v) > ec_p(v) || (v & EC_FD))) {
		if (v & EC_FD)
			wake_fds(r, word);
		wake_n(word, n);
	}
}

void shmkit__ring_fd_arm(struct shmkit__ring *r, uint32_t seat)
{
	if (seat >= RING_FD_SEATS)
		return;
	/* The seat first, then the flag: a waker that sees the flag sees the seat. */
	atomic_fetch_or_explicit(&r->sh->fd_armed[seat / 64], 1ULL << (seat % 64),
				 memory_order_seq_cst);
	atomic_fetch_or_explicit(&r->sh->not_empty, EC_FD, memory_order_seq_cst);
	shmkit__heavy_fence();
}

void shmkit__ring_fd_disarm(struct shmkit__ring *r, uint32_t seat)
{
	if (seat < RING_FD_SEATS)
		atomic_fetch_and_explicit(&r->sh->fd_armed[seat / 64], ~(1ULL << (seat % 64)),
					  memory_order_relaxed);
}

/* Arm: W + 1. Returns the value to sleep on. */
static uint32_t ec_arm(_Atomic uint32_t *word)
{
	uint32_t v = atomic_load_explicit(word, memory_order_relaxed), nv;

	do {
		if (ec_w(v) == EC_FIELD)
			return v; /* 32767 waiters on one word: sleep unarmed, slices catch up */
		nv = v + EC_W_ONE;
	} while (!atomic_compare_exchange_weak_explicit(word, &v, nv, memory_order_seq_cst,
							memory_order_relaxed));
	return nv;
}

/* Back from the kernel and still armed: take one wake-up in. Returns the value to sleep on. */
static uint32_t ec_absorb(_Atomic uint32_t *word)
{
	uint32_t v = atomic_load_explicit(word, memory_order_relaxed), nv;

	do {
		nv = ec_p(v) ? v - EC_P_ONE : v;
	} while (!atomic_compare_exchange_weak_explicit(word, &v, nv, memory_order_seq_cst,
							memory_order_relaxed));
	return nv;
}

/* Disarm: W - 1, taking a wake-up in first when back from the kernel, and P <= W after. */
static void ec_leave(_Atomic uint32_t *word, bool absorb)
{
	uint32_t v = atomic_load_explicit(word, memory_order_relaxed), nv, w, p;

	do {
		w = ec_w(v);
		p = ec_p(v);
		if (absorb && p)
			p--;
		if (w)
			w--;
		if (p > w)
			p = w;
		nv = ec_make(v, w, p);
	} while (!atomic_compare_exchange_weak_explicit(word, &v, nv, memory_order_seq_cst,
							memory_order_relaxed));
}

/*
 * head never passes tail (a consumer claims only positions a producer published) and tail never
 * runs more than a lap ahead of head (a producer claims only slots the previous lap's consumer
 * released). Read in this order, each index loaded after the one it is compared with and head
 * with acquire, a ring that breaks either rule was written by someone else: -EBADMSG rather
 * than waiting for ever on a queue that can never move.
 */
static bool ring_broken(const struct shmkit__ring *r)
{
	uint64_t h = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_seq_cst);

	if ((int64_t)(t - h) < 0)
		return true;
	h = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	return (int64_t)(t - h) > 0 && t - h > r->nslots;
}

/* One message: claim, copy, publish. A loan (reserve) stops after the claim and hands out the
 * slot's data through io, leaving the claim word set until commit. */
static inline int try_put_impl(struct shmkit__ring *r, struct shmkit__who *w, void *io,
			       size_t len, bool reserve)
{
	struct shmkit__ring_sh *sh = r->sh;
	struct shmkit__slot *s;
	uint64_t p, seq;
	int64_t dif;

	if (atomic_load_explicit(&sh->closed, memory_order_relaxed) ||
	    atomic_load_explicit(&sh->rd_closed, memory_order_relaxed))
		return -EPIPE;
	p = atomic_load_explicit(&sh->tail, memory_order_relaxed);
	for (;;) {
		if (r->capacity != r->nslots && p - w->head_cache >= r->capacity) {
			w->head_cache = atomic_load_explicit(&sh->head, memory_order_acquire);
			if ((int64_t)(p - w->head_cache) < 0) {
				/* our p is older than the head just read: others moved on, so
				 * tail read now is past it. One that has not moved means head
				 * passed tail, which only a scribbler does: do not spin on it. */
				uint64_t np = atomic_load_explicit(&sh->tail, memory_order_relaxed);
				if (np == p)
					goto broken;
				p = np;
				continue;
			}
			if (p - w->head_cache >= r->capacity)
				goto unclaim;
		}
		s = slot_at(r, p);
		seq = atomic_load_explicit(&s->seq, memory_order_acquire) & ~RING_SKIP;
		dif = (int64_t)(seq - p);
		if (dif == 0) {
			atomic_store_explicit(w->put_pos, p, memory_order_relaxed);
			if (atomic_compare_exchange_weak_explicit(&sh->tail, &p, p + 1,
								  memory_order_seq_cst,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			goto unclaim; /* the consumer of the previous lap has not released it */
		} else {
			uint64_t np = atomic_load_explicit(&sh->tail, memory_order_relaxed);
			if (np == p) {
				/* a slot ahead of tail: not a state we ever write */
				atomic_store_explicit(w->put_pos, RING_NONE, memory_order_relaxed);
				return -EBADMSG;
			}
			p = np;
		}
	}
	/* A close that raced our claim: a consumer may already have taken EOF at this position
	 * (see try_get), so nothing may be published here. */
	if (shmkit__unlikely(atomic_load_explicit(&sh->closed, memory_order_seq_cst))) {
		atomic_fetch_add_explicit(&sh->skipped, 1, memory_order_relaxed);
		atomic_store_explicit(&s->seq, (p + 1) | RING_SKIP, memory_order_release);
		atomic_store_explicit(w->put_pos, RING_NONE, memory_order_release);
		return -EPIPE;
	}
	if (reserve) {
		w->loan_put = p;
		*(void **)io = s->data;
		return 0;
	}
	/* Atomic (relaxed) because a consumer reads len before it claims (see try_get). */
	atomic_store_explicit(&s->len, (uint32_t)len, memory_order_relaxed);
	memcpy(s->data, io, len);
	atomic_store_explicit(&s->seq, p + 1, memory_order_release);
	atomic_store_explicit(w->put_pos, RING_NONE, memory_order_release);
	wake_sleepers(r, &sh->not_empty, 1);
	return 0;

unclaim:
	/* A failed CAS may have left our claim word naming someone else's position; a sleeper
	 * must not seem to claim a slot, or a dead owner's slot would never be resolved. */
	atomic_store_explicit(w->put_pos, RING_NONE, memory_order_relaxed);
	return -EAGAIN;
broken:
	atomic_store_explicit(w->put_pos, RING_NONE, memory_order_relaxed);
	return -EBADMSG;
}

static int try_put(struct shmkit__ring *r, struct shmkit__who *w, void *io, size_t len)
{
	return try_put_impl(r, w, io, len, false);
}

static int try_reserve(struct shmkit__ring *r, struct shmkit__who *w, void *io, size_t len)
{
	return try_put_impl(r, w, io, len, true);
}

static inline void owed_add(_Atomic uint64_t *owed, int d)
{
	atomic_store_explicit(owed, atomic_load_explicit(owed, memory_order_relaxed) + (uint64_t)d,
			      memory_order_relaxed);
}

/* One message: claim, copy out, release. A loan (peek) stops after the claim and hands out the
 * message in place through io, leaving the claim word set until release. */
static inline int try_get_impl(struct shmkit__ring *r, struct shmkit__who *w, void *io,
			       size_t size, bool peek)
{
	struct shmkit__ring_sh *sh = r->sh;
	struct shmkit__slot *s;
	uint64_t p, seq;
	uint32_t len = 0;
	int64_t dif;
	int rc;

	p = atomic_load_explicit(&sh->head, memory_order_relaxed);
	for (;;) {
		s = slot_at(r, p);
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		dif = (int64_t)((seq & ~RING_SKIP) - (p + 1));
		if (dif == 0) {
			if (!(seq & RING_SKIP)) {
				/* Checked before claiming, so a short buffer leaves it queued. If
				 * the CAS below succeeds, nobody has reused the slot since. */
				/* Read before the claim, so a consumer that loses the CAS may
				 * race the next lap's producer here: an atomic read, discarded. */
				len = atomic_load_explicit(&s->len, memory_order_relaxed);
				rc = len > r->max_size ? -EBADMSG
				     : !peek && len > size ? -EMSGSIZE
							   : 0;
				if (rc)
					goto out;
			}
			atomic_store_explicit(w->get_pos, p, memory_order_relaxed);
			/* owed is written only by its owner while alive (a reaper zeroes it only
			 * after death), so a plain increment will do; the CAS publishes it as it
			 * publishes get_pos. */
			if (w->owed)
				owed_add(w->owed, 1);
			if (!atomic_compare_exchange_weak_explicit(&sh->head, &p, p + 1,
								   memory_order_seq_cst,
								   memory_order_relaxed)) {
				if (w->owed)
					owed_add(w->owed, -1);
				continue;
			}
			if (peek && !(seq & RING_SKIP)) {
				w->loan_get = p;
				*(const void **)io = s->data;
				return (int)len;
			}
			if (!(seq & RING_SKIP))
				memcpy(io, s->data, len);
			atomic_store_explicit(&s->seq, p + r->nslots, memory_order_release);
			atomic_store_explicit(w->get_pos, RING_NONE, memory_order_release);
			wake_sleepers(r, &sh->not_full, 1);
			if (!(seq & RING_SKIP))
				return (int)len;
			if (w->owed) /* a skipped position is owed to nobody */
				owed_add(w->owed, -1);
			p = atomic_load_explicit(&sh->head, memory_order_relaxed);
		} else if (dif < 0) {
			/* Empty, or the producer of p has not published yet. EOF only when closed
			 * and nothing was ever claimed here: a claim after the close is skipped
			 * by its producer (try_put). */
			rc = -EAGAIN;
			if (atomic_load_explicit(&sh->closed, memory_order_seq_cst) &&
			    atomic_load_explicit(&sh->tail, memory_order_seq_cst) == p)
				rc = -EPIPE;
			goto out;
		} else {
			uint64_t np = atomic_load_explicit(&sh->head, memory_order_relaxed);
			if (np == p) {
				rc = -EBADMSG;
				goto out;
			}
			p = np;
		}
	}
out:
	/* As in try_put: never sleep with a claim word naming a position we do not hold. */
	atomic_store_explicit(w->get_pos, RING_NONE, memory_order_relaxed);
	return rc;
}


/* ---- batches ---------------------------------------------------------------------------- */

struct batch {
	struct iovec *iov;
	unsigned n;
};

/*
 * k free slots from tail claimed with one CAS: each slot's seq says free for its position,
 * which only a producer holding that position changes, and a producer holds it only after
 * moving tail past it, which would fail our CAS. The claim word carries the count first, then
 * the position, both before the CAS (as for one message), so a reaper sees the whole range.
 */
static int try_put_many(struct shmkit__ring *r, struct shmkit__who *w, void *io, size_t n_)
{
	struct shmkit__ring_sh *sh = r->sh;
	const struct batch *b = io;
	uint64_t p, seq, room;
	unsigned k, i;
	int64_t dif;

	(void)n_;
	if (atomic_load_explicit(&sh->closed, memory_order_relaxed) ||
	    atomic_load_explicit(&sh->rd_closed, memory_order_relaxed))
		return -EPIPE;
	p = atomic_load_explicit(&sh->tail, memory_order_relaxed);
	for (;;) {
		room = r->nslots;
		if (r->capacity != r->nslots) {
			if (p - w->head_cache >= r->capacity || p - w->head_cache + b->n > r->capacity)
				w->head_cache = atomic_load_explicit(&sh->head, memory_order_acquire);
			if ((int64_t)(p - w->head_cache) < 0) {
				uint64_t np = atomic_load_explicit(&sh->tail, memory_order_relaxed);
				if (np == p)
					goto broken;
				p = np;
				continue;
			}
			if (p - w->head_cache >= r->capacity)
				goto unclaim;
			room = r->capacity - (p - w->head_cache);
		}
		k = b->n < room ? b->n : (unsigned)room;
		for (i = 0; i < k; i++) {
			seq = atomic_load_explicit(&slot_at(r, p + i)->seq, memory_order_acquire) &
			      ~RING_SKIP;
			if (seq != p + i)
				break;
		}
		if (i == 0) {
			dif = (int64_t)(atomic_load_explicit(&slot_at(r, p)->seq,
							     memory_order_acquire) & ~RING_SKIP) -
			      (int64_t)p;
			if (dif < 0)
				goto unclaim;
			if (dif == 0)
				continue; /* freed between the two loads: look again */
			{
				uint64_t np = atomic_load_explicit(&sh->tail, memory_order_relaxed);
				if (np == p)
					goto broken;
				p = np;
			}
			continue;
		}
		k = i;
		atomic_store_explicit(w->put_cnt, k, memory_order_relaxed);
		atomic_store_explicit(w->put_pos, p, memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&sh->tail, &p, p + k,
							  memory_order_seq_cst,
							  memory_order_relaxed))
			break;
	}
	/* As in try_put: a close that raced the claim means nothing may be published. */
	if (shmkit__unlikely(atomic_load_explicit(&sh->closed, memory_order_seq_cst))) {
		atomic_fetch_add_explicit(&sh->skipped, k, memory_order_relaxed);
		for (i = 0; i < k; i++)
			atomic_store_explicit(&slot_at(r, p + i)->seq, (p + i + 1) | RING_SKIP,
					      memory_order_release);
		atomic_store_explicit(w->put_pos, RING_NONE, memory_order_release);
		atomic_store_explicit(w->put_cnt, 0, memory_order_relaxed);
		return -EPIPE;
	}
	for (i = 0; i < k; i++) {
		struct shmkit__slot *s = slot_at(r, p + i);

		atomic_store_explicit(&s->len, (uint32_t)b->iov[i].iov_len, memory_order_relaxed);
		memcpy(s->data, b->iov[i].iov_base, b->iov[i].iov_len);
		/* Published one by one: a consumer need not wait for the whole batch. */
		atomic_store_explicit(&s->seq, p + i + 1, memory_order_release);
	}
	atomic_store_explicit(w->put_pos, RING_NONE, memory_order_release);
	atomic_store_explicit(w->put_cnt, 0, memory_order_relaxed);
	wake_sleepers(r, &sh->not_empty, k);
	return (int)k;

unclaim:
	atomic_store_explicit(w->put_pos, RING_NONE, memory_order_relaxed);
	atomic_store_explicit(w->put_cnt, 0, memory_order_relaxed);
	return -EAGAIN;
broken:
	atomic_store_explicit(w->put_pos, RING_NONE, memory_order_relaxed);
	atomic_store_explicit(w->put_cnt, 0, memory_order_relaxed);
	return -EBADMSG;
}

/*
 * The published run from head (up to n, each fitting its buffer) claimed with one CAS. Lengths
 * are read before the claim, as in try_get; the CAS succeeding means nobody consumed (so nobody
 * reused) any slot of the run since.
 */
static int try_get_many(struct shmkit__ring *r, struct shmkit__who *w, void *io, size_t n_)
{
	struct shmkit__ring_sh *sh = r->sh;
	struct batch *b = io;
	uint64_t p, seq;
	unsigned i, j, k, real;
	uint32_t len;
	int64_t dif;
	int rc;

	(void)n_;
	p = atomic_load_explicit(&sh->head, memory_order_relaxed);
	for (;;) {
		rc = 0;
		for (i = 0, j = 0; i < r->nslots; i++) {
			struct shmkit__slot *s = slot_at(r, p + i);

			seq = atomic_load_explicit(&s->seq, memory_order_acquire);
			if ((seq & ~RING_SKIP) != p + i + 1)
				break;
			if (seq & RING_SKIP)
				continue;
			if (j == b->n)
				break;
			len = atomic_load_explicit(&s->len, memory_order_relaxed);
			if (len > r->max_size || len > b->iov[j].iov_len) {
				rc = len > r->max_size ? -EBADMSG : -EMSGSIZE;
				break;
			}
			j++;
		}
		/* A message that does not fit ends the run; first in it, it is the answer
		 * (after any skips before it are taken out of the way). */
		if (rc && i == 0)
			goto out;
		if (i == 0) {
			seq = atomic_load_explicit(&slot_at(r, p)->seq, memory_order_acquire);
			dif = (int64_t)((seq & ~RING_SKIP) - (p + 1));
			if (dif == 0)
				continue;
			if (dif < 0) {
				rc = -EAGAIN;
				if (atomic_load_explicit(&sh->closed, memory_order_seq_cst) &&
				    atomic_load_explicit(&sh->tail, memory_order_seq_cst) == p)
					rc = -EPIPE;
				goto out;
			}
			{
				uint64_t np = atomic_load_explicit(&sh->head, memory_order_relaxed);
				if (np == p) {
					rc = -EBADMSG;
					goto out;
				}
				p = np;
			}
			continue;
		}
		k = i;
		atomic_store_explicit(w->get_cnt, k, memory_order_relaxed);
		atomic_store_explicit(w->get_pos, p, memory_order_relaxed);
		if (w->owed)
			owed_add(w->owed, (int)j);
		if (atomic_compare_exchange_weak_explicit(&sh->head, &p, p + k,
							  memory_order_seq_cst,
							  memory_order_relaxed))
			break;
		if (w->owed)
			owed_add(w->owed, -(int)j);
	}
	for (i = 0, real = 0; i < k; i++) {
		struct shmkit__slot *s = slot_at(r, p + i);

		seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
		if (!(seq & RING_SKIP)) {
			len = atomic_load_explicit(&s->len, memory_order_relaxed);
			memcpy(b->iov[real].iov_base, s->data, len);
			b->iov[real].iov_len = len;
			real++;
		}
		atomic_store_explicit(&s->seq, p + i + r->nslots, memory_order_release);
	}
	atomic_store_explicit(w->get_pos, RING_NONE, memory_order_release);
	atomic_store_explicit(w->get_cnt, 0, memory_order_relaxed);
	wake_sleepers(r, &sh->not_full, k);
	if (real)
		return (int)real;
	/* Only skips: look again (a message that did not fit is reported there). */
	return try_get_many(r, w, io, n_);
out:
	atomic_store_explicit(w->get_pos, RING_NONE, memory_order_relaxed);
	atomic_store_explicit(w->get_cnt, 0, memory_order_relaxed);
	return rc;
}

static int try_get(struct shmkit__ring *r, struct shmkit__who *w, void *io, size_t size)
{
	return try_get_impl(r, w, io, size, false);
}

static int try_peek(struct shmkit__ring *r, struct shmkit__who *w, void *io, size_t size)
{
	return try_get_impl(r, w, io, size, true);
}

void shmkit__ring_forget_waiter(struct shmkit__ring *r, uint32_t flag)
{
	if (flag == 1) {
		shmkit__ring_unwait(&r->sh->cons_waiting);
		ec_leave(&r->sh->not_empty, false);
	} else if (flag == 2) {
		shmkit__ring_unwait(&r->sh->prod_waiting);
		ec_leave(&r->sh->not_full, false);
	}
}

void shmkit__ring_unwait(_Atomic uint32_t *count)
{
	uint32_t c = atomic_load_explicit(count, memory_order_relaxed);

	/* Relaxed: a count for stat and for sizing wake-ups, never an ordering point. */
	while (c && !atomic_compare_exchange_weak_explicit(count, &c, c - 1, memory_order_relaxed,
							    memory_order_relaxed))
		;
}

typedef int (*try_fn)(struct shmkit__ring *, struct shmkit__who *, void *, size_t);

/* Try, spin a little, then sleep on `word` in slices until the deadline. */
static int wait_loop(struct shmkit__ring *r, struct shmkit__who *w, try_fn try, void *io,
		     size_t n, int64_t deadline, _Atomic uint32_t *word, _Atomic uint32_t *count,
		     uint32_t flag, shmkit__ring_recover_fn recover, void *arg)
{
	int64_t now, until, next_recover = 0;
	bool armed = false, absorb = false;
	uint32_t seen;
	int rc, i;

	rc = try(r, w, io, n);
	if (rc != -EAGAIN)
		return rc;
	/* Before giving up or sleeping (not on every spin: that would pull the other side's
	 * index line over at each pause), make sure the ring is one that can still move. */
	if (deadline == 0) {
		if (ring_broken(r))
			return -EBADMSG;
		/* Pollers must see EOF from a dead writer too; recover is throttled. */
		if (recover) {
			recover(arg);
			rc = try(r, w, io, n);
		}
		return rc;
	}
	for (i = 1; i <= SPIN_TRIES; i++) {
		/* Now and then give the CPU away: when the peer we wait for shares our CPU,
		 * pausing only burns the time it needs to run. */
		if (i % SPIN_YIELD_EVERY == 0)
			sched_yield();
		else
			shmkit__cpu_relax();
		if ((rc = try(r, w, io, n)) != -EAGAIN)
			return rc;
	}
	for (;;) {
		now = shmkit__now();
		if (now >= deadline) {
			/* A caller that waits in short timed calls (an event loop, the Python
			 * binding's interruptible slices) never sleeps a whole slice: look for
			 * dead peers (throttled) before reporting the timeout, or it never would. */
			if (recover) {
				recover(arg);
				if ((rc = try(r, w, io, n)) != -EAGAIN)
					break;
			}
			rc = -ETIMEDOUT;
			break;
		}
		/* The first slice is of a random length between a half and a whole one: sleepers
		 * that went to sleep together then wake spread over the slice, so with many
		 * of them some look for dead peers soon after a death (one reap serves all). */
		if (!next_recover)
			next_recover = now + SHMKIT__SLICE_NS / 2 +
				       (int64_t)((uint64_t)now % (SHMKIT__SLICE_NS / 2));
		until = deadline < next_recover ? deadline : next_recover;
		if (ring_broken(r)) {
			rc = -EBADMSG;
			break;
		}
		if (!armed) {
			seen = ec_arm(word);
			/* After W + 1, so a reaper that sees the flag never takes out of W a
			 * waiter that was not in it. count is for shmkit stat. */
			atomic_store_explicit(w->waiting, flag, memory_order_relaxed);
			atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
			armed = true;
		} else {
			seen = ec_absorb(word);
		}
		absorb = false;
		shmkit__heavy_fence();
		rc = try(r, w, io, n);
		if (rc != -EAGAIN)
			break;
		shmkit__futex_wait(word, seen, until);
		absorb = true;
		/* One look without a fence: a woken waiter usually finds what woke it. */
		if ((rc = try(r, w, io, n)) != -EAGAIN)
			break;
		if (recover && shmkit__now() >= next_recover) {
			/* A slice passed without progress (wake-ups and signals included): maybe a
			 * peer died holding things up. */
			recover(arg);
			next_recover = shmkit__now() + SHMKIT__SLICE_NS;
			if ((rc = try(r, w, io, n)) != -EAGAIN)
				break;
		}
	}
	if (armed) {
		shmkit__ring_unwait(count);
		atomic_store_explicit(w->waiting, 0, memory_order_relaxed);
		ec_leave(word, absorb);
	}
	return rc;
}

/* Readiness without a claim (pipe.c's wait): 0 when [head, tail) may hold a message (a
 * producer's claim not yet published counts: it will be, or be resolved), -EPIPE at EOF. */
static int try_ready(struct shmkit__ring *r, struct shmkit__who *w, void *io, size_t n)
{
	(void)w, (void)io, (void)n;
	if (shmkit__ring_busy(r))
		return 0;
	/* seq_cst: as try_get's EOF check, ordered after the busy scan. A put claimed after the
	 * close is skipped by its producer, so closed and nothing busy is EOF. */
	if (atomic_load_explicit(&r->sh->closed, memory_order_seq_cst) && !shmkit__ring_busy(r))
		return -EPIPE;
	return -EAGAIN;
}

int shmkit__ring_wait_ready(struct shmkit__ring *r, struct shmkit__who *w, int64_t deadline,
			    shmkit__ring_recover_fn recover, void *arg)
{
	int rc = wait_loop(r, w, try_ready, NULL, 0, deadline, &r->sh->not_empty,
			   &r->sh->cons_waiting, 1, recover, arg);

	/* A put wakes one sleeper per message, maybe us, who take nothing: pass the wake-up on to
	 * a receiver that may sleep beside us (free when nobody sleeps). */
	if (rc == 0)
		wake_sleepers(r, &r->sh->not_empty, 1);
	return rc;
}

int shmkit__ring_put(struct shmkit__ring *r, struct shmkit__who *w, const void *msg, size_t len,
		     int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	if (len > r->max_size)
		return -EMSGSIZE;
	if (len && !msg)
		return -EINVAL;
	return wait_loop(r, w, try_put, (void *)msg, len, deadline, &r->sh->not_full,
			 &r->sh->prod_waiting, 2, recover, arg);
}

int shmkit__ring_get(struct shmkit__ring *r, struct shmkit__who *w, void *buf, size_t size,
		     int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	if (size && !buf)
		return -EINVAL;
	return wait_loop(r, w, try_get, buf, size, deadline, &r->sh->not_empty,
			 &r->sh->cons_waiting, 1, recover, arg);
}


int shmkit__ring_put_many(struct shmkit__ring *r, struct shmkit__who *w, const struct iovec *iov,
			  unsigned n, int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	struct batch b = { (struct iovec *)iov, n };
	unsigned i;

	if (n == 0)
		return 0;
	if (!iov)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		/* Checked before anything moves: a bad batch loses nothing. */
		if (iov[i].iov_len > r->max_size)
			return -EMSGSIZE;
		if (iov[i].iov_len && !iov[i].iov_base)
			return -EINVAL;
	}
	return wait_loop(r, w, try_put_many, &b, n, deadline, &r->sh->not_full,
			 &r->sh->prod_waiting, 2, recover, arg);
}

int shmkit__ring_get_many(struct shmkit__ring *r, struct shmkit__who *w, struct iovec *iov,
			  unsigned n, int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	struct batch b = { iov, n };
	unsigned i;

	if (n == 0)
		return 0;
	if (!iov)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (iov[i].iov_len && !iov[i].iov_base)
			return -EINVAL;
	return wait_loop(r, w, try_get_many, &b, n, deadline, &r->sh->not_empty,
			 &r->sh->cons_waiting, 1, recover, arg);
}

/* ---- loans ------------------------------------------------------------------------------ */

int shmkit__ring_reserve(struct shmkit__ring *r, struct shmkit__who *w, void **data,
			 int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	if (!data)
		return -EINVAL;
	if (w->loan_put != RING_NONE)
		return -EBUSY;
	return wait_loop(r, w, try_reserve, data, 0, deadline, &r->sh->not_full,
			 &r->sh->prod_waiting, 2, recover, arg);
}

int shmkit__ring_commit(struct shmkit__ring *r, struct shmkit__who *w, size_t len, bool cancel)
{
	struct shmkit__ring_sh *sh = r->sh;
	struct shmkit__slot *s;
	uint64_t p = w->loan_put;

	if (p == RING_NONE)
		return -EINVAL;
	if (len > r->max_size)
		return -EMSGSIZE; /* the loan stays: commit again with a length that fits */
	s = slot_at(r, p);
	w->loan_put = RING_NONE;
	/* A close after the reserve does not stop the commit: the position was claimed before the
	 * close (try_put_impl checked), so no consumer took EOF there and it waits for us. */
	if (cancel) {
		atomic_fetch_add_explicit(&sh->skipped, 1, memory_order_relaxed);
		atomic_store_explicit(&s->seq, (p + 1) | RING_SKIP, memory_order_release);
		atomic_store_explicit(w->put_pos, RING_NONE, memory_order_release);
		wake_sleepers(r, &sh->not_empty, 1);
		return 0;
	}
	atomic_store_explicit(&s->len, (uint32_t)len, memory_order_relaxed);
	/* Release: the message written in place is seen by whoever acquires the seq. */
	atomic_store_explicit(&s->seq, p + 1, memory_order_release);
	atomic_store_explicit(w->put_pos, RING_NONE, memory_order_release);
	wake_sleepers(r, &sh->not_empty, 1);
	return 0;
}

int shmkit__ring_peek(struct shmkit__ring *r, struct shmkit__who *w, const void **msg,
		      int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	if (!msg)
		return -EINVAL;
	if (w->loan_get != RING_NONE)
		return -EBUSY;
	return wait_loop(r, w, try_peek, (void *)msg, 0, deadline, &r->sh->not_empty,
			 &r->sh->cons_waiting, 1, recover, arg);
}

int shmkit__ring_release(struct shmkit__ring *r, struct shmkit__who *w)
{
	uint64_t p = w->loan_get;

	if (p == RING_NONE)
		return -EINVAL;
	w->loan_get = RING_NONE;
	/* Release: the producer of the next lap sees us done reading in place. */
	atomic_store_explicit(&slot_at(r, p)->seq, p + r->nslots, memory_order_release);
	atomic_store_explicit(w->get_pos, RING_NONE, memory_order_release);
	wake_sleepers(r, &r->sh->not_full, 1);
	return 0;
}

void shmkit__ring_close(struct shmkit__ring *r)
{
	atomic_store_explicit(&r->sh->closed, 1, memory_order_seq_cst);
	wake_all(r, &r->sh->not_empty);
	wake_all(r, &r->sh->not_full);
}

void shmkit__ring_close_read(struct shmkit__ring *r)
{
	atomic_store_explicit(&r->sh->rd_closed, 1, memory_order_seq_cst);
	wake_all(r, &r->sh->not_full);
	wake_all(r, &r->sh->not_empty);
}

int shmkit__ring_resolve_put(struct shmkit__ring *r, uint64_t p)
{
	struct shmkit__slot *s;
	uint64_t expect = p;

	if (p == RING_NONE || atomic_load_explicit(&r->sh->tail, memory_order_seq_cst) <= p)
		return 0; /* never claimed */
	s = slot_at(r, p);
	/* seq_cst like the claims it resolves (a dead owner's; see the reaper). */
	if (!shmkit__sc_cas(&s->seq, &expect, (p + 1) | RING_SKIP))
		return 0; /* published (or long gone) */
	atomic_fetch_add_explicit(&r->sh->slots_reclaimed, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->sh->skipped, 1, memory_order_relaxed);
	wake_all(r, &r->sh->not_empty);
	return 1;
}

int shmkit__ring_resolve_get(struct shmkit__ring *r, uint64_t p)
{
	struct shmkit__slot *s;
	uint64_t expect;

	if (p == RING_NONE || atomic_load_explicit(&r->sh->head, memory_order_seq_cst) <= p)
		return 0; /* never taken */
	s = slot_at(r, p);
	expect = p + 1;
	if (shmkit__sc_cas(&s->seq, &expect, p + r->nslots)) {
		atomic_fetch_add_explicit(&r->sh->lost_dead_consumer, 1, memory_order_relaxed);
		wake_all(r, &r->sh->not_full);
		return 2;
	}
	expect = (p + 1) | RING_SKIP;
	if (shmkit__sc_cas(&s->seq, &expect, p + r->nslots)) {
		wake_all(r, &r->sh->not_full);
		return 1;
	}
	return 0;
}


unsigned shmkit__ring_resolve_puts(struct shmkit__ring *r, uint64_t p, uint32_t c, uint64_t bound,
				   bool (*claimed_by_other)(uint64_t q, void *arg), void *arg)
{
	uint64_t q, n = shmkit__ring_claim_n(r, c);
	unsigned done = 0;

	if (p == RING_NONE)
		return 0;
	for (q = p; q < p + n && q < bound; q++)
		if (!claimed_by_other || !claimed_by_other(q, arg))
			done += shmkit__ring_resolve_put(r, q) > 0;
	return done;
}

unsigned shmkit__ring_resolve_gets(struct shmkit__ring *r, uint64_t p, uint32_t c, uint64_t bound,
				   bool (*claimed_by_other)(uint64_t q, void *arg), void *arg)
{
	uint64_t q, n = shmkit__ring_claim_n(r, c);
	unsigned lost = 0;

	if (p == RING_NONE)
		return 0;
	for (q = p; q < p + n && q < bound; q++)
		if (!claimed_by_other || !claimed_by_other(q, arg))
			lost += shmkit__ring_resolve_get(r, q) == 2;
	return lost;
}

bool shmkit__ring_busy(struct shmkit__ring *r)
{
	uint64_t h = shmkit__sc_load(&r->sh->head), t = shmkit__sc_load(&r->sh->tail), p;

	if (t - h > r->nslots)
		return t > h; /* corrupt: busy unless plainly empty */
	for (p = h; p < t; p++)
		if (atomic_load_explicit(&slot_at(r, p)->seq, memory_order_acquire) !=
		    ((p + 1) | RING_SKIP))
			return true;
	return false;
}

uint32_t shmkit__ring_depth(struct shmkit__ring *r)
{
	uint64_t h = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);

	if (t <= h)
		return 0;
	return t - h > r->capacity ? r->capacity : (uint32_t)(t - h);
}
