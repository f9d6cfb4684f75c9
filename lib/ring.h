/*
 * The message ring behind Queue and Pipe. Private to the library.
 *
 * A bounded MPMC ring of fixed-size slots after Vyukov: every slot carries a sequence word, and
 * producers and consumers claim positions with one CAS on tail or head. Positions are
 * free-running 64-bit counters (no wrap in practice: 2^64 messages); slot = pos & mask.
 *
 *   slot.seq == pos             free for the producer of pos
 *   slot.seq == pos + 1         published for the consumer of pos (| RING_SKIP: nothing in it)
 *   slot.seq == pos + nslots    released by that consumer, free for the next lap
 *
 * Crash safety: before its CAS, a producer stores the position it is claiming in its own
 * claim word (put_pos), and a consumer likewise (get_pos), and each clears it once the slot is
 * published or released. A batch claims k positions with one CAS and stores k (put_cnt,
 * get_cnt) before the position; a loan is a claim held across calls (reserve to commit, peek
 * to release). So a slot stuck between claim and publish belongs to whoever still
 * names it; when nobody alive does, its owner died there and the slot may be resolved: an
 * unpublished one is published empty (RING_SKIP, so no partial message is ever seen), an
 * unreleased one is released and its message counted as lost. Only dead owners are resolved
 * (liveness is the kernel's: a seat's lease, see lease.c), so no late writer can race the
 * resolution.
 *
 * Waiting: consumers sleep on not_empty, producers on not_full (futex words used as
 * eventcounts, see ring.c), after a short bounded spin; the other side pays a wake-up syscall
 * only when an armed sleeper has no wake-up owed to it yet, and wakes one sleeper per message. Sleeps are cut in slices so a
 * waiter can look for dead peers now and then (the recover callback).
 */
#ifndef SHMKIT_RING_H
#define SHMKIT_RING_H

#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "proc.h"
#include "region.h"
#include "wait.h"

#define RING_SKIP (1ULL << 63)
#define RING_NONE UINT64_MAX /* an empty claim word */
#define RING_MAX_CAPACITY SHMKIT_QUEUE_CAPACITY_MAX
#define RING_MAX_MSG SHMKIT_MESSAGE_MAX
#define RING_FD_SEATS 256u /* seats that may arm a pollable descriptor on a ring */

struct shmkit__slot {
	_Atomic uint64_t seq;
	_Atomic uint32_t len; /* read (relaxed) by a consumer before its claim: see try_get */
	uint32_t reserved;
	unsigned char data[];
};

/* Shared ring state. The layout (sizes) is repeated in the region header params and copied to
 * the process-local struct shmkit__ring at open; these copies are never trusted. */
struct shmkit__ring_sh {
	_Alignas(SHMKIT__CACHELINE) _Atomic uint64_t tail; /* next position to produce */
	_Alignas(SHMKIT__CACHELINE) _Atomic uint64_t head; /* next position to consume */
	_Alignas(SHMKIT__CACHELINE) _Atomic uint32_t not_empty; /* futex: consumers sleep here */
	_Atomic uint32_t cons_waiting; /* sleeping consumers, for stat only */
	_Alignas(SHMKIT__CACHELINE) _Atomic uint32_t not_full; /* futex: producers sleep here */
	_Atomic uint32_t prod_waiting; /* sleeping producers, for stat only */
	/* Read-mostly from here on. */
	_Alignas(SHMKIT__CACHELINE) _Atomic uint32_t closed; /* latched: no more puts, EOF once
								drained */
	_Atomic uint32_t rd_closed;  /* latched: nobody will ever get again (pipe peer gone) */
	_Atomic uint64_t slots_reclaimed;    /* unpublished slots of dead producers skipped */
	_Atomic uint64_t lost_dead_consumer; /* messages taken by consumers that died */
	_Atomic uint64_t skipped;            /* positions that carried no message */
	/* Seats whose handle armed its pollable descriptor for this ring's messages (bit k:
	 * seat k; see shmkit__ring_fd_arm). */
	_Alignas(SHMKIT__CACHELINE) _Atomic uint64_t fd_armed[RING_FD_SEATS / 64];
};

/* Process-local view of a ring: validated layout and a cached head for the capacity check. */
struct shmkit__ring {
	struct shmkit__ring_sh *sh;
	unsigned char *slots;
	uint64_t mask;
	uint32_t nslots, capacity, max_size, slot_size;
	uint64_t dev, ino; /* the region file's identity: where armed descriptors are reached */
};

/* A participant's claim words and waiting flag, in shared memory (queue participant table or
 * pipe end), plus its process-local head cache. */
struct shmkit__who {
	_Atomic uint64_t *put_pos;
	_Atomic uint64_t *get_pos;
	/* How many positions from put_pos / get_pos a batch claimed; 0 means one (see
	 * shmkit__ring_claim_n). Written before the position it counts, reset after the position
	 * is cleared, so a claim word never names more than its owner holds. */
	_Atomic uint32_t *put_cnt;
	_Atomic uint32_t *get_cnt;
	_Atomic uint32_t *waiting; /* 1 in get, 2 in put: lets a reaper fix the waiting counts */
	/* JoinableQueue: messages this participant took and has not task_done'd. Counted before
	 * the claim (and given back if the claim fails), so a joiner never sees a message that
	 * is neither in the ring nor owed by someone. NULL when not joinable. */
	_Atomic uint64_t *owed;
	uint64_t head_cache;
	/* Process-local: the position of this participant's outstanding reserve / peek loan,
	 * RING_NONE when none. Its claim word names it until commit / release. */
	uint64_t loan_put, loan_get;
};

/* Positions a claim word with count c names: a batch's k, one otherwise; never more than a lap
 * (the count is read back from shared memory). */
static inline uint64_t shmkit__ring_claim_n(const struct shmkit__ring *r, uint32_t c)
{
	return c == 0 ? 1 : c > r->nslots ? r->nslots : c;
}

/* Called by a waiter every SHMKIT__SLICE_NS it sleeps: look for dead peers and resolve them. */
typedef void (*shmkit__ring_recover_fn)(void *arg);

/* Layout: slot size for max_size, and slot count for capacity (a power of two). */
uint32_t shmkit__ring_slot_size(uint32_t max_size);
uint32_t shmkit__ring_nslots(uint32_t capacity);
/* Bytes of slots. */
uint64_t shmkit__ring_bytes(uint32_t capacity, uint32_t max_size);
/* Initialise shared state and slots (creator only). */
void shmkit__ring_init(struct shmkit__ring_sh *sh, unsigned char *slots, uint32_t capacity,
		       uint32_t max_size);
/* Bind a process-local view; slots must lie within the region (the caller checked). */
void shmkit__ring_bind(struct shmkit__ring *r, struct shmkit__ring_sh *sh, unsigned char *slots,
		       uint32_t capacity, uint32_t max_size);

/* Put/get with a deadline (0: try once; SHMKIT__FOREVER). Results as the public queue API,
 * with -EAGAIN for a try that would block and -ETIMEDOUT past a real deadline. */
int shmkit__ring_put(struct shmkit__ring *r, struct shmkit__who *w, const void *msg, size_t len,
		     int64_t deadline, shmkit__ring_recover_fn recover, void *arg);
int shmkit__ring_get(struct shmkit__ring *r, struct shmkit__who *w, void *buf, size_t size,
		     int64_t deadline, shmkit__ring_recover_fn recover, void *arg);

/* Wait as get does until a get would not block, claiming nothing: 0 when a message may be
 * there, -EPIPE at EOF, -EAGAIN / -ETIMEDOUT. */
int shmkit__ring_wait_ready(struct shmkit__ring *r, struct shmkit__who *w, int64_t deadline,
			    shmkit__ring_recover_fn recover, void *arg);

/* Batches: put up to n messages (iov[i] is message i), claimed with one update of tail; get up
 * to n into iov[i].iov_base (iov_len: its size in, the message's length out), claimed with one
 * update of head. Block (up to the deadline) until at least one can move; return how many
 * moved (>= 1), or the errors of put/get: -EMSGSIZE when message 0 is too long (nothing moved;
 * a later one too long for its buffer ends the batch early, it stays queued). */
struct iovec;
int shmkit__ring_put_many(struct shmkit__ring *r, struct shmkit__who *w, const struct iovec *iov,
			  unsigned n, int64_t deadline, shmkit__ring_recover_fn recover, void *arg);
int shmkit__ring_get_many(struct shmkit__ring *r, struct shmkit__who *w, struct iovec *iov,
			  unsigned n, int64_t deadline, shmkit__ring_recover_fn recover, void *arg);

/* Loans. reserve claims the next slot and points *data at its max_size bytes (put's waiting
 * and errors; -EBUSY with a reserve outstanding); commit publishes len bytes of it (-EMSGSIZE
 * over max_size, the loan stays), or with cancel skips it. peek claims the oldest message and points *msg at it in place,
 * returning its length (get's waiting and errors; -EBUSY with a peek outstanding); release
 * frees its slot. -EINVAL without a loan. The claim word names the slot for the whole loan, so
 * a holder's death is resolved as a claimant's is. */
int shmkit__ring_reserve(struct shmkit__ring *r, struct shmkit__who *w, void **data,
			 int64_t deadline, shmkit__ring_recover_fn recover, void *arg);
int shmkit__ring_commit(struct shmkit__ring *r, struct shmkit__who *w, size_t len, bool cancel);
int shmkit__ring_peek(struct shmkit__ring *r, struct shmkit__who *w, const void **msg,
		      int64_t deadline, shmkit__ring_recover_fn recover, void *arg);
int shmkit__ring_release(struct shmkit__ring *r, struct shmkit__who *w);

/* Pollable descriptors (notify.c). Arm seat's descriptor to be notified of the next message
 * (or EOF) on r, after its owner found nothing: call, then look at the ring once more, since a
 * message published before the arming notifies nobody. The heavy fence inside pairs with the
 * light one of every put. disarm: the handle goes away. */
void shmkit__ring_fd_arm(struct shmkit__ring *r, uint32_t seat);
void shmkit__ring_fd_disarm(struct shmkit__ring *r, uint32_t seat);

/* Latch closed (no more puts) and wake every consumer so they see EOF once drained. */
void shmkit__ring_close(struct shmkit__ring *r);
/* Latch rd_closed (puts fail with -EPIPE) and wake every producer. */
void shmkit__ring_close_read(struct shmkit__ring *r);
/* Resolve position p claimed by a dead producer / consumer, if it is still stuck there.
 * Return 1 when a slot was resolved (for get: 2 when the resolved slot held a real message,
 * which is then lost). Callers must have checked that no live participant claims p. */
int shmkit__ring_resolve_put(struct shmkit__ring *r, uint64_t p);
int shmkit__ring_resolve_get(struct shmkit__ring *r, uint64_t p);
/* The same for every position of a dead participant's claim (position p, count c) that
 * claimed_by_other(q, arg) does not say a live participant claims (NULL: nobody else could).
 * Only positions below `bound` (tail or head read before the caller looked for live claims)
 * are considered. Return how many held messages now lost (get) or slots skipped (put). */
unsigned shmkit__ring_resolve_puts(struct shmkit__ring *r, uint64_t p, uint32_t c, uint64_t bound,
				   bool (*claimed_by_other)(uint64_t q, void *arg), void *arg);
unsigned shmkit__ring_resolve_gets(struct shmkit__ring *r, uint64_t p, uint32_t c, uint64_t bound,
				   bool (*claimed_by_other)(uint64_t q, void *arg), void *arg);
/* A participant died armed in wait_loop (its waiting flag: 1 get, 2 put): take it out of the
 * sleepers' counts. */
void shmkit__ring_forget_waiter(struct shmkit__ring *r, uint32_t flag);
/* Take back one from a waiting count without going below zero (after a waiter died). */
void shmkit__ring_unwait(_Atomic uint32_t *count);
/* Messages queued now (tail - head, clamped to capacity). */
uint32_t shmkit__ring_depth(struct shmkit__ring *r);
/* Whether [head, tail) may hold a message: anything but published skips. */
bool shmkit__ring_busy(struct shmkit__ring *r);

#endif /* SHMKIT_RING_H */
