/*
 * The message ring: claim, copy, publish; see ring.h for the protocol, large messages and crash
 * safety.
 *
 * Ordering edges, labelled where they are used (DPDK's rte_ring style: each acquire or release
 * says which release or acquire it pairs with):
 *  R1 / A1  publish: the producer writes len, frag and data, then stores slot.seq = pos + 1 with
 *           release (R1); a consumer loads slot.seq with acquire (A1) before it reads them.
 *  R2 / A2  free: the consumer stores slot.seq = pos + nslots with release once it has read the
 *           data (R2); the next lap's producer loads slot.seq with acquire (A2) before writing.
 *  S1       claim: the claim record (count, then position) is stored relaxed before the seq_cst
 *           CAS on tail or head, so whoever sees the index moved (a reaper's seq_cst load) sees
 *           the record too.
 *  R3 / A3  finish: the claim word is cleared with release after publish / release (R3); a
 *           reaper's seq_cst load of it (A3) that sees it clear sees the slots finished.
 *  R4 / A4  streams: a stream word (put_stream, get_stream) is freed with release after the
 *           stream's last run (R4); the next holder takes it with a seq_cst CAS (A4), and a
 *           consumer deciding whether a continuation is debris loads it seq_cst after a seq_cst
 *           load of head, so it sees the holder of any stream whose head was claimed.
 *  A5       index snapshots (capacity check, corruption check, depth): acquire loads of head
 *           or tail that pair with the seq_cst CASes of S1; they order only the indexes (the
 *           slots are judged by A1 / A2).
 *  E1 / E2  waking, see ec.h: the waker's light fence (E1) after it published or freed, the
 *           waiter's heavy fence (E2) after arming.
 */
#include "config.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "ec.h"
#include "notify.h"
#include "ring.h"
#include "wait.h"

#define SPIN_TRIES 200     /* bounded: oversubscribed spinners must not starve the rest */
#define SPIN_YIELD_EVERY 50
#define RETRY (-EINPROGRESS) /* internal: look at the ring again at once */

static inline struct shmkit__slot *slot_at(const struct shmkit__ring *r, uint64_t pos)
{
	return (struct shmkit__slot *)(r->slots + (pos & r->mask) * r->slot_size);
}

/* tail without the put stream's mark (head is never marked: consumers keep continuations
 * to the get stream's holder by their frag, see get_cont). */
static inline uint64_t idx(uint64_t v)
{
	return v & ~RING_STREAM;
}

/* ---- layout ----------------------------------------------------------------------------- */

uint32_t shmkit__ring_max_size(uint32_t max_size)
{
	return max_size ? max_size : SHMKIT_MESSAGE_DEFAULT;
}

uint32_t shmkit__ring_payload(uint32_t max_size, uint32_t slot_size)
{
	uint32_t m = shmkit__ring_max_size(max_size);

	if (m > RING_MAX_MSG)
		return 0;
	if (slot_size == 0)
		return m <= SHMKIT_SLOT_DEFAULT ? m : SHMKIT_SLOT_DEFAULT;
	return slot_size > RING_MAX_SLOT || slot_size > m ? 0 : slot_size;
}

uint64_t shmkit__ring_param(uint32_t max_size, uint32_t payload)
{
	return (uint64_t)max_size | (uint64_t)payload << 32;
}

void shmkit__ring_param_split(uint64_t param, uint32_t *max_size, uint32_t *payload)
{
	*max_size = (uint32_t)param;
	*payload = (uint32_t)(param >> 32);
}

/* Whole cache lines, so neighbouring slots written by different processes don't share. */
static uint32_t stride(uint32_t payload)
{
	uint64_t s = sizeof(struct shmkit__slot) + (uint64_t)payload;

	return (uint32_t)((s + SHMKIT__CACHELINE - 1) & ~(uint64_t)(SHMKIT__CACHELINE - 1));
}

uint32_t shmkit__ring_nslots(uint32_t capacity)
{
	uint32_t n = 2; /* one slot cannot tell "published" (pos + 1) from "free for pos + 1" */

	while (n < capacity)
		n <<= 1;
	return n;
}

uint64_t shmkit__ring_bytes(uint32_t capacity, uint32_t payload)
{
	return (uint64_t)shmkit__ring_nslots(capacity) * stride(payload);
}

void shmkit__ring_bind(struct shmkit__ring *r, struct shmkit__ring_sh *sh, unsigned char *slots,
		       uint32_t capacity, uint32_t max_size, uint32_t payload)
{
	r->sh = sh;
	r->slots = slots;
	r->capacity = capacity;
	r->max_size = max_size;
	r->payload = payload;
	r->nslots = shmkit__ring_nslots(capacity);
	r->mask = r->nslots - 1;
	r->slot_size = stride(payload);
}

void shmkit__ring_init(struct shmkit__ring_sh *sh, unsigned char *slots, uint32_t capacity,
		       uint32_t max_size, uint32_t payload)
{
	struct shmkit__ring r;
	uint64_t i;

	shmkit__ring_bind(&r, sh, slots, capacity, max_size, payload);
	for (i = 0; i < r.nslots; i++)
		atomic_store_explicit(&slot_at(&r, i)->seq, i, memory_order_relaxed);
}

void shmkit__ring_claim_clear(struct shmkit__claim *c)
{
	shmkit__sc_store(&c->put_pos, RING_NONE);
	shmkit__sc_store(&c->get_pos, RING_NONE);
	shmkit__sc_store(&c->put_cnt, 0);
	shmkit__sc_store(&c->get_cnt, 0);
	shmkit__sc_store(&c->waiting, RING_SIDE_NONE);
}

void shmkit__ring_who_bind(struct shmkit__who *w, struct shmkit__claim *c, uint32_t id,
			   _Atomic uint64_t *owed)
{
	shmkit__ring_claim_clear(c);
	w->c = c;
	w->id = id;
	w->owed = owed;
	w->head_cache = 0;
	w->loan_put = w->loan_get = RING_NONE;
	w->ps.on = w->gs.on = false;
}

/* ---- waking (the eventcount is ec.h's) --------------------------------------------------- */

/* EC_FD on not_empty: notify the armed descriptors (the one who clears the flag does). */
static void wake_fds(void *arg, _Atomic uint32_t *word)
{
	struct shmkit__ring *r = arg;
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
	shmkit__ec_wake_n(word, EC_FIELD);
}

/* n wake-ups on `word`; every sleeper while `stream` is held, since the stream's holder may be
 * any of them and a wake-up spent on another would leave it asleep for a slice. */
static inline void wake(struct shmkit__ring *r, _Atomic uint32_t *word, uint32_t n,
			_Atomic uint32_t *stream)
{
	shmkit__ec_wake_sleepers(word, n, stream, wake_fds, r);
}

static inline void wake_consumers(struct shmkit__ring *r, uint32_t n)
{
	wake(r, &r->sh->not_empty, n, &r->sh->get_stream);
}

static inline void wake_producers(struct shmkit__ring *r, uint32_t n)
{
	wake(r, &r->sh->not_full, n, &r->sh->put_stream);
}

void shmkit__ring_fd_arm(struct shmkit__ring *r, uint32_t seat)
{
	if (seat >= RING_FD_SEATS)
		return;
	/* The seat first, then the flag: a waker that sees the flag sees the seat. */
	atomic_fetch_or_explicit(&r->sh->fd_armed[seat / 64], 1ULL << (seat % 64),
				 memory_order_seq_cst);
	atomic_fetch_or_explicit(&r->sh->not_empty, EC_FD, memory_order_seq_cst);
	/* E2: establishes a synchronizing edge with E1 in every later waker. */
	shmkit__heavy_fence();
}

void shmkit__ring_fd_disarm(struct shmkit__ring *r, uint32_t seat)
{
	if (seat < RING_FD_SEATS)
		atomic_fetch_and_explicit(&r->sh->fd_armed[seat / 64], ~(1ULL << (seat % 64)),
					  memory_order_relaxed);
}

/*
 * head never passes tail (a consumer claims only positions a producer published) and tail never
 * runs more than a lap ahead of head (a producer claims only slots the previous lap's consumer
 * released). Read in this order, each index loaded after the one it is compared with, a ring
 * that breaks either rule was written by someone else: -EBADMSG rather than waiting for ever
 * on a queue that can never move.
 */
static bool ring_broken(const struct shmkit__ring *r)
{
	/* A5: with S1 (the consumers' head CAS), for the comparison only. */
	uint64_t h = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	uint64_t t = idx(atomic_load_explicit(&r->sh->tail, memory_order_seq_cst));

	if ((int64_t)(t - h) < 0)
		return true;
	/* A5: as above. */
	h = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	return (int64_t)(t - h) > 0 && t - h > r->nslots;
}

static inline void owed_add(_Atomic uint64_t *owed, int64_t d)
{
	/* owed is written only by its owner while alive (a reaper zeroes it only after death), so
	 * a plain increment will do; the claim CAS (S1) publishes it as it publishes get_pos. */
	if (owed)
		atomic_store_explicit(owed,
				      atomic_load_explicit(owed, memory_order_relaxed) + (uint64_t)d,
				      memory_order_relaxed);
}

/* ---- the claim path --------------------------------------------------------------------- */

/* Forget a claim that did not happen or is finished. `done`: the run was published or released,
 * so the clearing store must carry it (R3). */
static inline void put_unclaim(struct shmkit__who *w, bool done)
{
	/* R3: establishes a synchronizing edge with A3 (a reaper's load of the claim word). */
	atomic_store_explicit(&w->c->put_pos, RING_NONE,
			      done ? memory_order_release : memory_order_relaxed);
	atomic_store_explicit(&w->c->put_cnt, 0, memory_order_relaxed);
}

static inline void get_unclaim(struct shmkit__who *w, bool done)
{
	/* R3: establishes a synchronizing edge with A3 (a reaper's load of the claim word). */
	atomic_store_explicit(&w->c->get_pos, RING_NONE,
			      done ? memory_order_release : memory_order_relaxed);
	atomic_store_explicit(&w->c->get_cnt, 0, memory_order_relaxed);
}

/*
 * Claim a run of free positions from tail with one CAS: at most `want`, at least `need` (else
 * -EAGAIN). k free slots in a row may be claimed because each slot's seq says free for its
 * position, which only a producer holding that position changes, and a producer holds it only
 * after moving tail past it, which would fail our CAS. `mark` is RING_STREAM when we hold the
 * put stream (tail carries the mark: nobody else's CAS can succeed), `keep` RING_STREAM to
 * leave tail marked when the run is shorter than `want`. Returns k with *pos, or -EAGAIN
 * (full, or another producer streams), -EPIPE, -EBADMSG; on success the claim record names
 * the run until put_unclaim.
 */
static __attribute__((always_inline)) inline int
claim_put(struct shmkit__ring *r, struct shmkit__who *w, uint32_t want, uint32_t need,
	  uint64_t mark, uint64_t keep, uint64_t *pos)
{
	struct shmkit__ring_sh *sh = r->sh;
	uint64_t t, p, nt, seq, room;
	uint32_t k, i;
	int64_t dif;
	int rc = -EAGAIN;

	if (atomic_load_explicit(&sh->closed, memory_order_relaxed) ||
	    atomic_load_explicit(&sh->rd_closed, memory_order_relaxed))
		return -EPIPE;
	t = atomic_load_explicit(&sh->tail, memory_order_relaxed);
	for (;;) {
		if (shmkit__unlikely((t & RING_STREAM) != mark)) {
			/* Unmarked: another producer streams a message, wait for it. Marked and
			 * ours gone while we live: only a scribbler clears it. */
			rc = mark ? -EBADMSG : -EAGAIN;
			goto fail;
		}
		p = idx(t);
		room = r->nslots;
		if (r->capacity != r->nslots) {
			if (p - w->head_cache + want > r->capacity)
				/* A5: with S1 (a consumer's head CAS); the slot's seq (A2) decides. */
				w->head_cache = atomic_load_explicit(&sh->head,
									 memory_order_acquire);
			if ((int64_t)(p - w->head_cache) < 0) {
				/* our p is older than the head just read: others moved on, so
				 * tail read now is past it. One that has not moved means head
				 * passed tail, which only a scribbler does: do not spin on it. */
				nt = atomic_load_explicit(&sh->tail, memory_order_relaxed);
				if (nt == t)
					goto broken;
				t = nt;
				continue;
			}
			if (p - w->head_cache >= r->capacity)
				goto fail;
			room = r->capacity - (p - w->head_cache);
		}
		k = want < room ? want : (uint32_t)room;
		if (k < need)
			goto fail;
		for (i = 0; i < k; i++)
			/* A2: establishes a synchronizing edge with R2 (the last lap's release). */
			if ((atomic_load_explicit(&slot_at(r, p + i)->seq, memory_order_acquire) &
			     ~RING_SKIP) != p + i)
				break;
		if (i < need) {
			/* A2: as above. */
			seq = atomic_load_explicit(&slot_at(r, p + i)->seq, memory_order_acquire) &
			      ~RING_SKIP;
			dif = (int64_t)(seq - (p + i));
			if (dif < 0)
				goto fail; /* the consumer of the previous lap has not released it */
			if (dif > 0) {
				nt = atomic_load_explicit(&sh->tail, memory_order_relaxed);
				if (nt == t)
					goto broken; /* a slot ahead of tail: never written by us */
				t = nt;
			}
			continue; /* dif == 0: freed between the two loads, look again */
		}
		k = i;
		if (k > 1)
			atomic_store_explicit(&w->c->put_cnt, k, memory_order_relaxed);
		atomic_store_explicit(&w->c->put_pos, p, memory_order_relaxed);
		/* S1: the record above is seen by whoever sees tail moved. */
		if (atomic_compare_exchange_weak_explicit(&sh->tail, &t,
							  (p + k) | (k < want ? keep : 0),
							  memory_order_seq_cst, memory_order_relaxed))
			break;
		if (k > 1)
			atomic_store_explicit(&w->c->put_cnt, 0, memory_order_relaxed);
	}
	/* A close that raced our claim: a consumer may already have taken EOF at this position
	 * (see try_get), so nothing may be published here. */
	if (shmkit__unlikely(atomic_load_explicit(&sh->closed, memory_order_seq_cst))) {
		atomic_fetch_add_explicit(&sh->skipped, k, memory_order_relaxed);
		for (i = 0; i < k; i++)
			/* R1: establishes a synchronizing edge with A1 (an empty slot). */
			atomic_store_explicit(&slot_at(r, p + i)->seq, (p + i + 1) | RING_SKIP,
					      memory_order_release);
		put_unclaim(w, true);
		return -EPIPE;
	}
	*pos = p;
	return (int)k;

broken:
	rc = -EBADMSG;
fail:
	/* A failed CAS may have left our claim word naming someone else's position; a sleeper
	 * must not seem to claim a slot, or a dead owner's slot would never be resolved. */
	put_unclaim(w, false);
	return rc;
}

/* Claim the run [*p, *p + k) from head with one CAS, counting `owed` messages first. false:
 * head moved (*p is its new value). */
static __attribute__((always_inline)) inline bool
claim_get(struct shmkit__ring *r, struct shmkit__who *w, uint64_t *p, uint32_t k, uint32_t owed)
{
	if (k > 1)
		atomic_store_explicit(&w->c->get_cnt, k, memory_order_relaxed);
	atomic_store_explicit(&w->c->get_pos, *p, memory_order_relaxed);
	if (owed && w->owed)
		owed_add(w->owed, owed);
	/* S1: the record above is seen by whoever sees head moved. */
	if (atomic_compare_exchange_weak_explicit(&r->sh->head, p, *p + k, memory_order_seq_cst,
						  memory_order_relaxed))
		return true;
	if (owed && w->owed)
		owed_add(w->owed, -(int64_t)owed);
	if (k > 1)
		atomic_store_explicit(&w->c->get_cnt, 0, memory_order_relaxed);
	return false;
}

static inline void fill(struct shmkit__slot *s, const void *src, uint32_t len, uint32_t frag)
{
	/* Atomic (relaxed) because a consumer reads them before it claims (see try_get_many). */
	atomic_store_explicit(&s->len, len, memory_order_relaxed);
	atomic_store_explicit(&s->frag, frag, memory_order_relaxed);
	memcpy(s->data, src, len);
}

static inline void publish(struct shmkit__ring *r, uint64_t p)
{
	/* R1: establishes a synchronizing edge with A1 (the consumer's load of seq). */
	atomic_store_explicit(&slot_at(r, p)->seq, p + 1, memory_order_release);
}

/* Give back a consumed slot to the next lap. Slot by slot as they are read: a consumer that
 * dies in the middle of a run loses only what it had not finished. */
static inline void release(struct shmkit__ring *r, uint64_t p)
{
	/* R2: establishes a synchronizing edge with A2 (the next lap's producer). */
	atomic_store_explicit(&slot_at(r, p)->seq, p + r->nslots, memory_order_release);
}

/* A claimed run of k is released: finish the claim. */
static inline void end_get(struct shmkit__ring *r, struct shmkit__who *w, uint32_t k)
{
	get_unclaim(w, true);
	wake_producers(r, k);
}

static inline void release_run(struct shmkit__ring *r, struct shmkit__who *w, uint64_t p,
			       uint32_t k)
{
	uint32_t i;

	for (i = 0; i < k; i++)
		release(r, p + i);
	end_get(r, w, k);
}

/* ---- puts ------------------------------------------------------------------------------- */

/* What a try function moves: n messages (one: a single put / get, whose return is the
 * length), and whether a message longer than the free room may start streaming. */
struct batch {
	struct iovec *iov;
	unsigned n;
	bool one;
	bool may_stream;
};

static inline uint32_t frags_of(const struct shmkit__ring *r, uint64_t len)
{
	return len <= r->payload ? 1 : (uint32_t)((len + r->payload - 1) / r->payload);
}

/* Write fragments [from, from + k) of the message being put (ps) at positions p.., publishing
 * each at once except the head (fragment 0), which is published last: a consumer that sees a
 * head sees every fragment of its run. */
static void put_frags(struct shmkit__ring *r, struct shmkit__who *w, uint64_t p, uint32_t from,
		      uint32_t k)
{
	struct shmkit__stream *ps = &w->ps;
	uint64_t off;
	uint32_t i, n;

	for (i = 0; i < k; i++) {
		if (from + i == 0)
			continue;
		off = (uint64_t)(from + i) * r->payload;
		n = ps->total - off < r->payload ? (uint32_t)(ps->total - off) : r->payload;
		fill(slot_at(r, p + i), ps->buf + off, n, FRAG_CONT);
		publish(r, p + i);
	}
	if (from == 0) {
		fill(slot_at(r, p), ps->buf, r->payload, FRAG_HEAD | ps->total);
		publish(r, p);
	}
	atomic_fetch_add_explicit(&r->sh->conts, from == 0 ? k - 1 : k, memory_order_relaxed);
	put_unclaim(w, true);
	ps->done = from + k;
}

/* The put stream ends: the last run's CAS cleared the mark, or a withdrawal does it here. */
static void put_stream_end(struct shmkit__ring *r, struct shmkit__who *w, bool withdraw)
{
	if (withdraw)
		atomic_fetch_and_explicit(&r->sh->tail, ~RING_STREAM, memory_order_seq_cst);
	/* R4: establishes a synchronizing edge with A4 (the next holder's CAS). */
	atomic_store_explicit(&r->sh->put_stream, 0, memory_order_release);
	w->ps.on = false;
	wake_all(r, &r->sh->not_full); /* producers waited for the mark */
	if (withdraw)
		wake_all(r, &r->sh->not_empty); /* a consumer of it sees the stream end short */
}

/* A message longer than a slot: whole in one run when the free room holds it, else streamed
 * (when allowed) run by run. -EAGAIN while it waits for room; 0 once all of it is in. */
static int try_put_large(struct shmkit__ring *r, struct shmkit__who *w, const struct batch *b)
{
	struct shmkit__stream *ps = &w->ps;
	uint32_t nfr = frags_of(r, b->iov[0].iov_len), expect = 0;
	uint64_t p;
	int k;

	if (!ps->on) {
		ps->buf = b->iov[0].iov_base;
		ps->total = (uint32_t)b->iov[0].iov_len;
		k = claim_put(r, w, nfr, nfr, 0, 0, &p);
		if (k != -EAGAIN || !b->may_stream) {
			if (k < 0)
				return k;
			put_frags(r, w, p, 0, nfr);
			wake_consumers(r, 1);
			return 0;
		}
		/* A4: establishes a synchronizing edge with R4 (the last holder's release). */
		if (!atomic_compare_exchange_strong_explicit(&r->sh->put_stream, &expect, w->id + 1,
							     memory_order_seq_cst,
							     memory_order_relaxed))
			return -EAGAIN;
		k = claim_put(r, w, nfr, 1, 0, RING_STREAM, &p);
		if (k < 0) {
			put_stream_end(r, w, false);
			return k;
		}
		ps->on = true;
		put_frags(r, w, p, 0, (uint32_t)k);
		wake_consumers(r, (uint32_t)k);
	}
	while (ps->done < nfr) {
		k = claim_put(r, w, nfr - ps->done, 1, RING_STREAM, RING_STREAM, &p);
		if (k == -EAGAIN)
			return k;
		if (k < 0) {
			put_stream_end(r, w, true);
			return k;
		}
		put_frags(r, w, p, ps->done, (uint32_t)k);
		wake_consumers(r, (uint32_t)k);
	}
	put_stream_end(r, w, false);
	return 0;
}

/* Messages that fit a slot, as many as can go in one run (a single put is a run of one). */
static int try_put_many(struct shmkit__ring *r, struct shmkit__who *w, void *io)
{
	const struct batch *b = io;
	uint64_t p;
	unsigned m;
	int k, i;

	for (m = 0; m < b->n && b->iov[m].iov_len <= r->payload; m++)
		;
	if (shmkit__unlikely(m == 0))
		return try_put_large(r, w, b);
	k = claim_put(r, w, m, 1, 0, 0, &p);
	if (k < 0)
		return k;
	for (i = 0; i < k; i++) {
		fill(slot_at(r, p + i), b->iov[i].iov_base, (uint32_t)b->iov[i].iov_len, 0);
		/* Published one by one: a consumer need not wait for the whole batch. */
		publish(r, p + i);
	}
	put_unclaim(w, true);
	wake_consumers(r, (uint32_t)k);
	return b->one ? 0 : k;
}

/* The common case, tried before anything else: one message that fits a slot, a run of one on
 * the claim path (claim_put with constants: the compiler makes it the single-message code). */
static inline int put_one(struct shmkit__ring *r, struct shmkit__who *w, const void *msg,
			  size_t len)
{
	uint64_t p;
	int k = claim_put(r, w, 1, 1, 0, 0, &p);

	if (k < 0)
		return k;
	fill(slot_at(r, p), msg, (uint32_t)len, 0);
	publish(r, p);
	put_unclaim(w, true);
	wake_consumers(r, 1);
	return 0;
}

static int try_reserve(struct shmkit__ring *r, struct shmkit__who *w, void *io)
{
	uint64_t p;
	int k = claim_put(r, w, 1, 1, 0, 0, &p);

	if (k < 0)
		return k;
	w->loan_put = p;
	*(void **)io = slot_at(r, p)->data;
	return 0;
}

/* ---- gets ------------------------------------------------------------------------------- */

/* Drop the run [p, p + k) from head (skips, or debris of a message that will never be whole):
 * claimed, released, owed to nobody. RETRY, or -EAGAIN when head moved meanwhile. */
static int drop_run(struct shmkit__ring *r, struct shmkit__who *w, uint64_t p, uint32_t k)
{
	if (!claim_get(r, w, &p, k, 0)) {
		get_unclaim(w, false);
		return RETRY;
	}
	release_run(r, w, p, k);
	return RETRY;
}

/* Copy fragments [p, p + k) of the message being got (gs) out and release them. */
static void take_frags(struct shmkit__ring *r, struct shmkit__who *w, uint64_t p, uint32_t k)
{
	struct shmkit__stream *gs = &w->gs;
	uint32_t i, n;

	for (i = 0; i < k; i++) {
		n = atomic_load_explicit(&slot_at(r, p + i)->len, memory_order_relaxed);
		if (n > gs->total - gs->done)
			n = gs->total - gs->done; /* a scribbled length never overruns the buffer */
		memcpy(gs->buf + gs->done, slot_at(r, p + i)->data, n);
		gs->done += n;
		release(r, p + i);
	}
	end_get(r, w, k);
	gs->pos = p + k;
}

/* Continuations published in a row from q, at most `max`; *bad: the first slot after them is
 * published but not a continuation (a skip, another message): the message ends short. */
static uint32_t conts_ready(const struct shmkit__ring *r, uint64_t q, uint32_t max, bool *bad)
{
	struct shmkit__slot *s;
	uint64_t seq;
	uint32_t m;

	*bad = false;
	for (m = 0; m < max && m < r->nslots; m++) {
		s = slot_at(r, q + m);
		/* A1: establishes a synchronizing edge with R1 (the producer's publish). */
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		if ((seq & ~RING_SKIP) != q + m + 1)
			break;
		if ((seq & RING_SKIP) ||
		    atomic_load_explicit(&s->frag, memory_order_relaxed) != FRAG_CONT) {
			*bad = true;
			break;
		}
	}
	return m;
}

/* The get stream ends: complete, or dropped (its producer died or withdrew). */
static int get_stream_end(struct shmkit__ring *r, struct shmkit__who *w, bool dropped)
{
	w->gs.on = false;
	if (dropped)
		owed_add(w->owed, -1); /* never delivered: owed to nobody */
	/* R4: establishes a synchronizing edge with A4 (the next holder's CAS). */
	atomic_store_explicit(&r->sh->get_stream, 0, memory_order_release);
	wake_all(r, &r->sh->not_empty); /* consumers waited for us to finish */
	return dropped ? RETRY : (int)w->gs.total;
}

/* Position q, not yet published, was to hold the next fragment of a message: will it ever?
 * Not when tail is unmarked and has not reached q: the stream that was writing the message
 * ended (withdrawn, or its dead producer resolved), and q belongs to whoever claims it next. */
static bool ended_short(const struct shmkit__ring *r, uint64_t q)
{
	uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_seq_cst);

	return !(t & RING_STREAM) && idx(t) <= q;
}

/* Holding the get stream: take what the producer published since. */
static int get_more(struct shmkit__ring *r, struct shmkit__who *w)
{
	struct shmkit__stream *gs = &w->gs;
	uint32_t left, m;
	uint64_t q;
	bool bad;

	while (gs->done < gs->total) {
		q = gs->pos;
		left = frags_of(r, gs->total - gs->done);
		m = conts_ready(r, q, left, &bad);
		if (m == 0) {
			if (bad)
				return get_stream_end(r, w, true);
			if (ended_short(r, q))
				return get_stream_end(r, w, true);
			return -EAGAIN;
		}
		if (!claim_get(r, w, &q, m, 0)) {
			/* Nobody else claims a continuation the stream holds: head moved past a
			 * skip we did not see. The message ends short. */
			get_unclaim(w, false);
			return get_stream_end(r, w, true);
		}
		take_frags(r, w, q, m);
	}
	return get_stream_end(r, w, false);
}

/* A head fragment at head p: the whole message in one claim when all of it is published,
 * else the get stream. */
static int get_large(struct shmkit__ring *r, struct shmkit__who *w, struct batch *b, uint64_t p,
		     uint32_t frag)
{
	struct shmkit__stream *gs = &w->gs;
	uint32_t total = frag & ~FRAG_HEAD, nfr, m, expect = 0;
	bool bad;

	if (total > r->max_size || total <= r->payload)
		return -EBADMSG;
	nfr = frags_of(r, total);
	m = conts_ready(r, p + 1, nfr - 1, &bad);
	if (bad || (m + 1 < nfr && ended_short(r, p + 1 + m)))
		return drop_run(r, w, p, m + 1); /* its producer died or withdrew writing it */
	if (total > b->iov[0].iov_len)
		return -EMSGSIZE; /* checked before claiming: it stays queued */
	gs->buf = b->iov[0].iov_base;
	gs->total = total;
	gs->done = 0;
	if (m + 1 == nfr) {
		if (!claim_get(r, w, &p, nfr, 1)) {
			get_unclaim(w, false);
			return RETRY;
		}
		take_frags(r, w, p, nfr);
		return (int)total;
	}
	/* A4: establishes a synchronizing edge with R4 (the last holder's release). */
	if (!atomic_compare_exchange_strong_explicit(&r->sh->get_stream, &expect, w->id + 1,
						     memory_order_seq_cst, memory_order_relaxed))
		return -EAGAIN; /* the holder is finishing the message before this one */
	atomic_store_explicit(&r->sh->get_start, p, memory_order_relaxed);
	if (!claim_get(r, w, &p, m + 1, 1)) {
		get_unclaim(w, false);
		/* R4: establishes a synchronizing edge with A4 (the next holder's CAS). */
		atomic_store_explicit(&r->sh->get_stream, 0, memory_order_release);
		return RETRY;
	}
	gs->on = true;
	take_frags(r, w, p, m + 1);
	return get_more(r, w);
}

/* A continuation at head p, not ours: the get stream's holder takes it; with no holder it is
 * debris of a message that will never be whole. */
static int get_cont(struct shmkit__ring *r, struct shmkit__who *w, uint64_t p)
{
	/* A4: seq_cst, then get_stream seq_cst: a head claimed by a stream's holder shows it. */
	if (atomic_load_explicit(&r->sh->head, memory_order_seq_cst) != p)
		return RETRY;
	if (atomic_load_explicit(&r->sh->get_stream, memory_order_seq_cst))
		return -EAGAIN;
	return drop_run(r, w, p, 1);
}

/*
 * The published run from head (up to n messages that fit a slot and their buffers, and the
 * skips among them) claimed with one CAS; a single get is a run of one. Lengths are read before
 * the claim; the CAS succeeding means nobody consumed (so nobody reused) any slot of the run
 * since. A fragment of a longer message ends the run; first in it, it is handled alone.
 */
static int try_get_run(struct shmkit__ring *r, struct shmkit__who *w, struct batch *b)
{
	struct shmkit__ring_sh *sh = r->sh;
	struct shmkit__slot *s;
	uint32_t len, frag = 0;
	uint64_t p, seq, np;
	unsigned i, j, k, real;
	int64_t dif;
	int rc;

	p = atomic_load_explicit(&sh->head, memory_order_relaxed);
again:
	for (;;) {
		rc = 0;
		frag = 0;
		for (i = 0, j = 0; i < r->nslots && j < b->n; i++) {
			s = slot_at(r, p + i);
			/* A1: establishes a synchronizing edge with R1 (the producer's publish). */
			seq = atomic_load_explicit(&s->seq, memory_order_acquire);
			if ((seq & ~RING_SKIP) != p + i + 1)
				break;
			if (seq & RING_SKIP)
				continue;
			/* Read before the claim, so a consumer that loses the CAS may race the
			 * next lap's producer here: atomic reads, discarded. */
			frag = atomic_load_explicit(&s->frag, memory_order_relaxed);
			if (frag)
				break;
			len = atomic_load_explicit(&s->len, memory_order_relaxed);
			if (len > r->payload || len > b->iov[j].iov_len) {
				rc = len > r->payload ? -EBADMSG : -EMSGSIZE;
				break;
			}
			j++;
		}
		if (i == 0) {
			if (rc)
				goto out; /* the oldest does not fit: it stays queued */
			if (frag) {
				rc = frag == FRAG_CONT	       ? get_cont(r, w, p)
				     : (frag & FRAG_HEAD) ? get_large(r, w, b, p, frag)
							   : -EBADMSG;
				if (rc == RETRY) {
					p = atomic_load_explicit(&sh->head,
								     memory_order_relaxed);
					continue;
				}
				if (rc >= 0 && !b->one) {
					b->iov[0].iov_len = (size_t)rc;
					rc = 1;
				}
				return rc;
			}
			/* A1: as above. */
			seq = atomic_load_explicit(&slot_at(r, p)->seq, memory_order_acquire);
			dif = (int64_t)((seq & ~RING_SKIP) - (p + 1));
			if (dif == 0)
				continue;
			if (dif < 0) {
				/* Empty, or the producer of p has not published yet. EOF only when
				 * closed and nothing was ever claimed here: a claim after the close
				 * is skipped by its producer (claim_put). */
				rc = -EAGAIN;
				if (atomic_load_explicit(&sh->closed, memory_order_seq_cst) &&
				    idx(atomic_load_explicit(&sh->tail, memory_order_seq_cst)) == p)
					rc = -EPIPE;
				goto out;
			}
			np = atomic_load_explicit(&sh->head, memory_order_relaxed);
			if (np == p) {
				rc = -EBADMSG;
				goto out;
			}
			p = np;
			continue;
		}
		k = i;
		if (claim_get(r, w, &p, k, j))
			break;
	}
	for (i = 0, real = 0; i < k; i++) {
		s = slot_at(r, p + i);
		if (!(atomic_load_explicit(&s->seq, memory_order_relaxed) & RING_SKIP)) {
			len = atomic_load_explicit(&s->len, memory_order_relaxed);
			memcpy(b->iov[real].iov_base, s->data, len);
			b->iov[real].iov_len = len;
			real++;
		}
		release(r, p + i);
	}
	end_get(r, w, k);
	if (real)
		return b->one ? (int)b->iov[0].iov_len : (int)real;
	/* Only skips: look again (a message that did not fit is reported there). */
	p = atomic_load_explicit(&sh->head, memory_order_relaxed);
	goto again;
out:
	/* Never sleep with a claim word naming a position we do not hold. */
	get_unclaim(w, false);
	return rc;
}

static int try_get_many(struct shmkit__ring *r, struct shmkit__who *w, void *io)
{
	struct batch *b = io;

	if (shmkit__unlikely(w->gs.on)) {
		int rc = get_more(r, w);

		if (rc != RETRY) {
			if (rc >= 0 && !b->one) {
				b->iov[0].iov_len = (size_t)rc;
				rc = 1;
			}
			return rc;
		}
	}
	return try_get_run(r, w, b);
}

/* The common case, tried before anything else: the oldest position holds one message that
 * fits buf. Anything else (empty, a skip, a fragment, too long, a lost race) is -EAGAIN here
 * and sorted out by the general path (try_get_run), which claims the same way. */
static inline int get_one(struct shmkit__ring *r, struct shmkit__who *w, void *buf, size_t size)
{
	uint64_t p = atomic_load_explicit(&r->sh->head, memory_order_relaxed), seq;
	struct shmkit__slot *s = slot_at(r, p);
	uint32_t len, frag;

	/* A1: establishes a synchronizing edge with R1 (the producer's publish). */
	seq = atomic_load_explicit(&s->seq, memory_order_acquire);
	if (shmkit__unlikely(seq != p + 1))
		return -EAGAIN;
	frag = atomic_load_explicit(&s->frag, memory_order_relaxed);
	len = atomic_load_explicit(&s->len, memory_order_relaxed);
	if (shmkit__unlikely(frag || len > r->payload || len > size))
		return -EAGAIN;
	if (!claim_get(r, w, &p, 1, 1)) {
		get_unclaim(w, false);
		return -EAGAIN;
	}
	memcpy(buf, s->data, len);
	release(r, p);
	end_get(r, w, 1);
	return (int)len;
}

/* A loan of the oldest message in place: one slot only. */
static int try_peek(struct shmkit__ring *r, struct shmkit__who *w, void *io)
{
	struct shmkit__slot *s;
	uint64_t p, seq;
	uint32_t len, frag;
	int rc;

	for (;;) {
		p = atomic_load_explicit(&r->sh->head, memory_order_relaxed);
		s = slot_at(r, p);
		/* A1: establishes a synchronizing edge with R1 (the producer's publish). */
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		if ((int64_t)((seq & ~RING_SKIP) - (p + 1)) < 0) {
			if (atomic_load_explicit(&r->sh->closed, memory_order_seq_cst) &&
			    idx(atomic_load_explicit(&r->sh->tail, memory_order_seq_cst)) == p)
				return -EPIPE;
			return -EAGAIN;
		}
		if ((seq & ~RING_SKIP) != p + 1) {
			if (atomic_load_explicit(&r->sh->head, memory_order_relaxed) == p)
				return -EBADMSG; /* a slot ahead of head that nobody moved */
			continue;
		}
		if (seq & RING_SKIP) {
			drop_run(r, w, p, 1);
			continue;
		}
		frag = atomic_load_explicit(&s->frag, memory_order_relaxed);
		len = atomic_load_explicit(&s->len, memory_order_relaxed);
		if (frag & FRAG_HEAD)
			return -EMSGSIZE; /* longer than a slot: get it */
		if (frag) {
			rc = frag == FRAG_CONT ? get_cont(r, w, p) : -EBADMSG;
			if (rc == RETRY)
				continue;
			return rc;
		}
		if (len > r->payload)
			return -EBADMSG;
		if (!claim_get(r, w, &p, 1, 1)) {
			get_unclaim(w, false);
			continue;
		}
		w->loan_get = p;
		*(const void **)io = s->data;
		return (int)len;
	}
}

/* get into a growing buffer: -EMSGSIZE says how much more it needs. */
struct alloc {
	void *buf;
	size_t cap;
};

static int try_get_alloc(struct shmkit__ring *r, struct shmkit__who *w, void *io)
{
	struct alloc *a = io;
	int rc, need, tries;
	void *nb;

	for (tries = 0; tries < 1000; tries++) {
		struct iovec v = { a->buf, a->cap };
		struct batch b = { &v, 1, true, false };

		rc = try_get_many(r, w, &b);
		if (rc != -EMSGSIZE)
			return rc;
		need = shmkit__ring_next_size(r);
		if (need < 0 || (size_t)need <= a->cap)
			continue; /* taken meanwhile: look again */
		if (!(nb = realloc(a->buf, (size_t)need)))
			return -ENOMEM;
		a->buf = nb;
		a->cap = (size_t)need;
	}
	return -EBADMSG; /* sizes that never agree: a scribbled ring */
}

/* ---- waiting ---------------------------------------------------------------------------- */

typedef int (*try_fn)(struct shmkit__ring *, struct shmkit__who *, void *);

/* One blocking call: what to try, on which side, until when. */
struct wait {
	try_fn try;
	void *io;
	int64_t deadline;
	enum shmkit__ring_side side;
	shmkit__ring_recover_fn recover;
	void *arg;
};

static inline int attempt(struct shmkit__ring *r, struct shmkit__who *w, const struct wait *c)
{
	return c->try(r, w, c->io);
}

/* Past the deadline: a put stream is withdrawn; a get stream is received to its end. */
static bool may_time_out(struct shmkit__ring *r, struct shmkit__who *w)
{
	if (w->ps.on)
		put_stream_end(r, w, true);
	return !w->gs.on;
}

/* Leave a wait: nothing half-streamed survives the call. */
static inline int wait_done(struct shmkit__ring *r, struct shmkit__who *w, int rc)
{
	if (shmkit__unlikely(w->ps.on))
		put_stream_end(r, w, true);
	if (shmkit__unlikely(w->gs.on)) {
		atomic_fetch_add_explicit(&r->sh->lost_dead_consumer, 1, memory_order_relaxed);
		get_stream_end(r, w, true);
	}
	return rc;
}

/* Try, spin a little, then sleep on the side's word in slices until the deadline. */
static int wait_loop(struct shmkit__ring *r, struct shmkit__who *w, const struct wait *c)
{
	_Atomic uint32_t *word = c->side == RING_SIDE_GET ? &r->sh->not_empty : &r->sh->not_full;
	_Atomic uint32_t *count =
		c->side == RING_SIDE_GET ? &r->sh->cons_waiting : &r->sh->prod_waiting;
	int64_t now, until, next_recover = 0;
	bool armed = false, absorb = false;
	uint32_t seen;
	int rc, i;

	rc = attempt(r, w, c);
	if (rc != -EAGAIN)
		return wait_done(r, w, rc);
	/* Before giving up or sleeping (not on every spin: that would pull the other side's
	 * index line over at each pause), make sure the ring is one that can still move. */
	if (c->deadline == 0 && !w->gs.on) {
		if (ring_broken(r))
			return wait_done(r, w, -EBADMSG);
		/* Pollers must see EOF from a dead writer too; recover is throttled. */
		if (c->recover) {
			c->recover(c->arg);
			rc = attempt(r, w, c);
		}
		return wait_done(r, w, rc);
	}
	for (i = 1; i <= SPIN_TRIES; i++) {
		/* Now and then give the CPU away: when the peer we wait for shares our CPU,
		 * pausing only burns the time it needs to run. */
		if (i % SPIN_YIELD_EVERY == 0)
			sched_yield();
		else
			shmkit__cpu_relax();
		if ((rc = attempt(r, w, c)) != -EAGAIN)
			return wait_done(r, w, rc);
	}
	for (;;) {
		now = shmkit__now();
		if (now >= c->deadline && may_time_out(r, w)) {
			/* A caller that waits in short timed calls (an event loop, the Python
			 * binding's interruptible slices) never sleeps a whole slice: look for
			 * dead peers (throttled) before reporting the timeout, or it never would. */
			if (c->recover) {
				c->recover(c->arg);
				if ((rc = attempt(r, w, c)) != -EAGAIN)
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
		until = c->deadline < next_recover && !w->gs.on ? c->deadline : next_recover;
		if (ring_broken(r)) {
			rc = -EBADMSG;
			break;
		}
		if (!armed) {
			seen = shmkit__ec_arm(word);
			/* After W + 1, so a reaper that sees the flag never takes out of W a
			 * waiter that was not in it. count is for shmkit stat. */
			atomic_store_explicit(&w->c->waiting, c->side, memory_order_relaxed);
			atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
			armed = true;
		} else {
			seen = shmkit__ec_absorb(word);
		}
		absorb = false;
		/* E2: establishes a synchronizing edge with E1 (every waker's light fence). */
		shmkit__heavy_fence();
		rc = attempt(r, w, c);
		if (rc != -EAGAIN)
			break;
		shmkit__futex_wait(word, seen, until);
		absorb = true;
		/* One look without a fence: a woken waiter usually finds what woke it. */
		if ((rc = attempt(r, w, c)) != -EAGAIN)
			break;
		if (c->recover && shmkit__now() >= next_recover) {
			/* A slice passed without progress (wake-ups and signals included): maybe a
			 * peer died holding things up. */
			c->recover(c->arg);
			next_recover = shmkit__now() + SHMKIT__SLICE_NS;
			if ((rc = attempt(r, w, c)) != -EAGAIN)
				break;
		}
	}
	if (armed) {
		shmkit__ring_unwait(count);
		atomic_store_explicit(&w->c->waiting, RING_SIDE_NONE, memory_order_relaxed);
		shmkit__ec_leave(word, absorb);
	}
	return wait_done(r, w, rc);
}

static int wait_put(struct shmkit__ring *r, struct shmkit__who *w, try_fn try, void *io,
		    int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	struct wait c = { try, io, deadline, RING_SIDE_PUT, recover, arg };

	return wait_loop(r, w, &c);
}

static int wait_get(struct shmkit__ring *r, struct shmkit__who *w, try_fn try, void *io,
		    int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	struct wait c = { try, io, deadline, RING_SIDE_GET, recover, arg };

	return wait_loop(r, w, &c);
}

/* ---- the calls -------------------------------------------------------------------------- */

int shmkit__ring_put(struct shmkit__ring *r, struct shmkit__who *w, const void *msg, size_t len,
		     int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	struct iovec v = { (void *)msg, len };
	struct batch b = { &v, 1, true, deadline != 0 };

	int rc;

	if (len > r->max_size)
		return -EMSGSIZE;
	if (len && !msg)
		return -EINVAL;
	if (shmkit__likely(len <= r->payload) && (rc = put_one(r, w, msg, len)) != -EAGAIN)
		return rc;
	return wait_put(r, w, try_put_many, &b, deadline, recover, arg);
}

int shmkit__ring_get(struct shmkit__ring *r, struct shmkit__who *w, void *buf, size_t size,
		     int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	struct iovec v = { buf, size };
	struct batch b = { &v, 1, true, false };

	int rc;

	if (size && !buf)
		return -EINVAL;
	if ((rc = get_one(r, w, buf, size)) != -EAGAIN)
		return rc;
	return wait_get(r, w, try_get_many, &b, deadline, recover, arg);
}

int shmkit__ring_get_alloc(struct shmkit__ring *r, struct shmkit__who *w, void **msg,
			   int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	struct alloc a = { NULL, r->payload ? r->payload : 1 };
	int rc;

	if (!msg)
		return -EINVAL;
	if (!(a.buf = malloc(a.cap)))
		return -ENOMEM;
	rc = wait_get(r, w, try_get_alloc, &a, deadline, recover, arg);
	if (rc < 0) {
		free(a.buf);
		return rc;
	}
	*msg = a.buf;
	return rc;
}

int shmkit__ring_next_size(struct shmkit__ring *r)
{
	struct shmkit__slot *s;
	uint64_t p, q, seq;
	uint32_t i, frag, len;

	/* A5: with S1 (the consumers' head CAS), a snapshot. */
	p = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	for (i = 0; i < r->nslots; i++) {
		q = p + i;
		s = slot_at(r, q);
		/* A1: establishes a synchronizing edge with R1 (the producer's publish). */
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		if ((seq & ~RING_SKIP) != q + 1) {
			if (atomic_load_explicit(&r->sh->closed, memory_order_seq_cst) &&
			    idx(atomic_load_explicit(&r->sh->tail, memory_order_seq_cst)) == q)
				return -EPIPE;
			return -EAGAIN;
		}
		if (seq & RING_SKIP)
			continue;
		frag = atomic_load_explicit(&s->frag, memory_order_relaxed);
		len = atomic_load_explicit(&s->len, memory_order_relaxed);
		if (frag == FRAG_CONT)
			continue; /* a stream's or debris: the next message is after it */
		if (frag & FRAG_HEAD)
			len = frag & ~FRAG_HEAD;
		else if (frag || len > r->payload)
			return -EBADMSG;
		return len > r->max_size ? -EBADMSG : (int)len;
	}
	return -EAGAIN;
}

int shmkit__ring_put_many(struct shmkit__ring *r, struct shmkit__who *w, const struct iovec *iov,
			  unsigned n, int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	struct batch b = { (struct iovec *)iov, n, false, deadline != 0 };
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
	if (iov[0].iov_len > r->payload) {
		/* A long message first: put alone, as by put. */
		int rc = shmkit__ring_put(r, w, iov[0].iov_base, iov[0].iov_len, deadline,
					  recover, arg);
		return rc < 0 ? rc : 1;
	}
	return wait_put(r, w, try_put_many, &b, deadline, recover, arg);
}

int shmkit__ring_get_many(struct shmkit__ring *r, struct shmkit__who *w, struct iovec *iov,
			  unsigned n, int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	struct batch b = { iov, n, false, false };
	unsigned i;

	if (n == 0)
		return 0;
	if (!iov)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (iov[i].iov_len && !iov[i].iov_base)
			return -EINVAL;
	return wait_get(r, w, try_get_many, &b, deadline, recover, arg);
}

/* ---- loans ------------------------------------------------------------------------------ */

int shmkit__ring_reserve(struct shmkit__ring *r, struct shmkit__who *w, void **data,
			 int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	if (!data)
		return -EINVAL;
	if (w->loan_put != RING_NONE)
		return -EBUSY;
	return wait_put(r, w, try_reserve, data, deadline, recover, arg);
}

int shmkit__ring_commit(struct shmkit__ring *r, struct shmkit__who *w, size_t len, bool cancel)
{
	struct shmkit__ring_sh *sh = r->sh;
	struct shmkit__slot *s;
	uint64_t p = w->loan_put;

	if (p == RING_NONE)
		return -EINVAL;
	if (len > r->payload)
		return -EMSGSIZE; /* the loan stays: commit again with a length that fits */
	s = slot_at(r, p);
	w->loan_put = RING_NONE;
	/* A close after the reserve does not stop the commit: the position was claimed before the
	 * close (claim_put checked), so no consumer took EOF there and it waits for us. */
	if (cancel) {
		atomic_fetch_add_explicit(&sh->skipped, 1, memory_order_relaxed);
		/* R1: establishes a synchronizing edge with A1 (an empty slot). */
		atomic_store_explicit(&s->seq, (p + 1) | RING_SKIP, memory_order_release);
	} else {
		atomic_store_explicit(&s->len, (uint32_t)len, memory_order_relaxed);
		atomic_store_explicit(&s->frag, 0, memory_order_relaxed);
		/* The message written in place is seen by whoever acquires the seq. */
		publish(r, p);
	}
	put_unclaim(w, true);
	wake_consumers(r, 1);
	return 0;
}

int shmkit__ring_peek(struct shmkit__ring *r, struct shmkit__who *w, const void **msg,
		      int64_t deadline, shmkit__ring_recover_fn recover, void *arg)
{
	if (!msg)
		return -EINVAL;
	if (w->loan_get != RING_NONE)
		return -EBUSY;
	return wait_get(r, w, try_peek, (void *)msg, deadline, recover, arg);
}

int shmkit__ring_release(struct shmkit__ring *r, struct shmkit__who *w)
{
	uint64_t p = w->loan_get;

	if (p == RING_NONE)
		return -EINVAL;
	w->loan_get = RING_NONE;
	/* The producer of the next lap sees us done reading in place (R2 inside). */
	release_run(r, w, p, 1);
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

/* ---- the dead --------------------------------------------------------------------------- */

int shmkit__ring_resolve_put(struct shmkit__ring *r, uint64_t p)
{
	struct shmkit__slot *s;
	uint64_t expect = p;

	if (p == RING_NONE || idx(atomic_load_explicit(&r->sh->tail, memory_order_seq_cst)) <= p)
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
	uint32_t frag;

	if (p == RING_NONE || atomic_load_explicit(&r->sh->head, memory_order_seq_cst) <= p)
		return 0; /* never taken */
	s = slot_at(r, p);
	expect = p + 1;
	frag = atomic_load_explicit(&s->frag, memory_order_relaxed);
	if (shmkit__sc_cas(&s->seq, &expect, p + r->nslots)) {
		wake_all(r, &r->sh->not_full);
		if (frag == FRAG_CONT)
			return 1;
		if (frag & FRAG_HEAD)
			return 3; /* one message's loss: the caller counts it (see shmkit__ring_reap) */
		atomic_fetch_add_explicit(&r->sh->lost_dead_consumer, 1, memory_order_relaxed);
		return 2;
	}
	expect = (p + 1) | RING_SKIP;
	if (shmkit__sc_cas(&s->seq, &expect, p + r->nslots)) {
		wake_all(r, &r->sh->not_full);
		return 1;
	}
	return 0;
}

static void forget_waiter(struct shmkit__ring *r, uint32_t side)
{
	if (side == RING_SIDE_GET) {
		shmkit__ring_unwait(&r->sh->cons_waiting);
		shmkit__ec_leave(&r->sh->not_empty, false);
	} else if (side == RING_SIDE_PUT) {
		shmkit__ring_unwait(&r->sh->prod_waiting);
		shmkit__ec_leave(&r->sh->not_full, false);
	}
}

static void reap_puts(struct shmkit__ring *r, uint32_t id, struct shmkit__claim *c,
		      uint64_t bound, shmkit__ring_claimed_fn claimed, void *arg)
{
	uint64_t p = shmkit__sc_load(&c->put_pos), q, n;
	uint32_t holder = id + 1;

	n = shmkit__ring_claim_n(r, shmkit__sc_load(&c->put_cnt));
	for (q = p; p != RING_NONE && q < p + n && q < bound; q++)
		if (!claimed || !claimed(q, false, arg))
			shmkit__ring_resolve_put(r, q);
	/* Its stream: unmark tail (only the holder marks it), so the others go on and the
	 * message's consumer sees it end short. */
	if (shmkit__sc_load(&r->sh->put_stream) == holder) {
		shmkit__sc_fetch_and(&r->sh->tail, ~RING_STREAM);
		shmkit__sc_cas(&r->sh->put_stream, &holder, 0);
		wake_all(r, &r->sh->not_empty);
		wake_all(r, &r->sh->not_full);
	}
}

static void reap_gets(struct shmkit__ring *r, uint32_t id, struct shmkit__claim *c,
		      uint64_t bound, shmkit__ring_claimed_fn claimed, void *arg)
{
	uint64_t p = shmkit__sc_load(&c->get_pos), q, n, lost = 0;
	uint32_t holder = id + 1;
	bool streaming = shmkit__sc_load(&r->sh->get_stream) == holder;

	n = shmkit__ring_claim_n(r, shmkit__sc_load(&c->get_cnt));
	for (q = p; p != RING_NONE && q < p + n && q < bound; q++)
		if (!claimed || !claimed(q, true, arg))
			lost += shmkit__ring_resolve_get(r, q) == 3 && !streaming;
	if (streaming) {
		/* It held a message in parts: lost once, if it had claimed its head. */
		lost += shmkit__sc_load(&r->sh->head) > shmkit__sc_load(&r->sh->get_start);
		shmkit__sc_cas(&r->sh->get_stream, &holder, 0);
		wake_all(r, &r->sh->not_empty);
	}
	if (lost)
		atomic_fetch_add_explicit(&r->sh->lost_dead_consumer, lost, memory_order_relaxed);
}

void shmkit__ring_reap(struct shmkit__ring *r, uint32_t id, struct shmkit__claim *c,
		       unsigned sides, uint64_t tail_bound, uint64_t head_bound,
		       shmkit__ring_claimed_fn claimed, void *arg)
{
	uint32_t waiting = shmkit__sc_load(&c->waiting);

	if (sides & RING_SIDE_PUT) {
		reap_puts(r, id, c, idx(tail_bound), claimed, arg);
		if (waiting == RING_SIDE_PUT)
			forget_waiter(r, waiting);
	}
	if (sides & RING_SIDE_GET) {
		reap_gets(r, id, c, idx(head_bound), claimed, arg);
		if (waiting == RING_SIDE_GET)
			forget_waiter(r, waiting);
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

/* ---- snapshots -------------------------------------------------------------------------- */

uint64_t shmkit__ring_tail(const struct shmkit__ring *r)
{
	return idx(shmkit__sc_load(&r->sh->tail));
}

uint64_t shmkit__ring_head(const struct shmkit__ring *r)
{
	return shmkit__sc_load(&r->sh->head);
}

static uint64_t minus(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

uint64_t shmkit__ring_put_total(const struct shmkit__ring *r)
{
	return minus(shmkit__ring_tail(r), shmkit__sc_load(&r->sh->skipped) +
						   shmkit__sc_load(&r->sh->conts));
}

uint64_t shmkit__ring_get_total(const struct shmkit__ring *r)
{
	/* Skips and continuations still queued make this a slight undercount. */
	return minus(shmkit__ring_head(r), shmkit__sc_load(&r->sh->skipped) +
						   shmkit__sc_load(&r->sh->conts));
}

bool shmkit__ring_busy(struct shmkit__ring *r)
{
	uint64_t h = shmkit__ring_head(r), t = shmkit__ring_tail(r), p;

	if (t - h > r->nslots)
		return t > h; /* corrupt: busy unless plainly empty */
	for (p = h; p < t; p++)
		/* A1: establishes a synchronizing edge with R1 (what the slot holds). */
		if (atomic_load_explicit(&slot_at(r, p)->seq, memory_order_acquire) !=
		    ((p + 1) | RING_SKIP))
			return true;
	return false;
}

uint32_t shmkit__ring_depth(struct shmkit__ring *r)
{
	/* A5: with S1, a snapshot of the indexes. */
	uint64_t h = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	/* A5: as above. */
	uint64_t t = idx(atomic_load_explicit(&r->sh->tail, memory_order_acquire));

	if (t <= h)
		return 0;
	return t - h > r->capacity ? r->capacity : (uint32_t)(t - h);
}
