/*
 * The message ring behind Queue and Pipe. Private to the library.
 *
 * A bounded MPMC ring of fixed-size slots after Vyukov: every slot carries a sequence word, and
 * producers and consumers claim positions with one CAS on tail or head. Positions are
 * free-running counters below 2^63 (no wrap in practice); slot = pos & mask.
 *
 *   slot.seq == pos             free for the producer of pos
 *   slot.seq == pos + 1         published for the consumer of pos (| RING_SKIP: nothing in it)
 *   slot.seq == pos + nslots    released by that consumer, free for the next lap
 *
 * One claim path. Every put claims a run of k >= 1 free positions from tail with one CAS
 * (claim_put; a single put is a run of one, a batch a run of up to n), every get a run of
 * published positions from head (claim_get). Before its CAS a participant stores the count
 * and then the position in its claim record (struct shmkit__claim, in shared memory: put_pos /
 * put_cnt, get_pos / get_cnt) and clears them once the run is published or released. A loan
 * is a claim held across calls (reserve to commit, peek to release). So a slot stuck between
 * claim and publish belongs to whoever still names it; when nobody alive does, its owner died
 * there and the slot may be resolved: an unpublished one is published empty (RING_SKIP, so no
 * partial message is ever seen), an unreleased one is released and its message counted as
 * lost. Only dead owners are resolved (liveness is the kernel's: a seat's lease, lease.c), so
 * no late writer can race the resolution.
 *
 * Messages of any size (up to max_size, fixed at create; slots hold slot_size bytes each).
 * A message that fits a slot is one slot, exactly as before (slot.frag == 0). A longer one is
 * a run of consecutive slots: a head fragment (frag = FRAG_HEAD | total length) and
 * continuation fragments (FRAG_CONT), ceil(len / slot_size) in all. Why consecutive slots and
 * not a byte ring: claims, resolution of the dead, batches, loans and the fixed-slot fast path
 * all stay as they are; a large message only adds fragments to runs the ring already claims.
 *  - Whole: when the free room holds the message, the producer claims all its slots with one
 *    tail CAS, writes the continuations and publishes the head last: a consumer that sees a
 *    head sees the whole message and takes it with one head CAS. Dying before the head is
 *    published leaves the head skipped (resolution) and the continuations as debris, which
 *    consumers drop: nothing delivered.
 *  - Streamed: a message larger than the free room (in particular larger than the ring) goes
 *    through chunk by chunk while producer and consumer both run. The producer takes the put
 *    stream (put_stream = its id + 1, a CAS) and marks tail with RING_STREAM while it holds
 *    runs of the message: other producers see the mark and wait, and their CAS (which expects
 *    tail unmarked) fails, so the fragments stay contiguous. The last run's CAS clears the
 *    mark. The consumer that finds the head with fragments still missing takes the get stream
 *    (get_stream = its id + 1, get_start = the head's position) and claims fragments as they
 *    are published; other consumers leave continuations to the get stream's holder, and drop
 *    continuations nobody holds (debris of a dead or withdrawn producer or consumer).
 *  - Withdrawal and death. A producer whose deadline passes mid-stream, or that finds the ring
 *    closed, clears the mark: the consumer reading that message sees the stream end short (an
 *    unpublished position at tail with tail unmarked, or a skipped or non-continuation slot
 *    where a continuation should be) and drops it, never returning part of a message, then
 *    goes on to the next one. A producer that dies is resolved by the reaper the same way
 *    (its claimed slots skipped, the mark cleared, put_stream freed): nobody stalls. A
 *    consumer that dies mid-message has its claimed slots released, the message counted once
 *    in lost_dead_consumer (through get_stream, or its claimed head when it was whole), and
 *    get_stream freed, so the rest of the message becomes debris for the next consumer.
 *  - Deadlines bound the wait for a message to begin. A consumer holding the get stream waits
 *    for the rest as long as the producer streams (it cannot give the fragments it consumed
 *    back); a producer streaming withdraws at its deadline; a _try put of a message larger
 *    than the free room returns -EAGAIN without starting.
 *  - Memory is nslots x slot size whatever the message sizes. Loans stay one slot.
 *
 * Waiting: consumers sleep on not_empty, producers on not_full (eventcounts, ec.h), after a
 * short bounded spin; the other side pays a wake-up system call only when an armed sleeper has
 * no wake-up owed to it yet, and wakes one sleeper per message. Sleeps are cut in slices so a
 * waiter can look for dead peers now and then (the recover callback).
 */
#ifndef SHMKIT_RING_H
#define SHMKIT_RING_H

#include "common.h"

#define RING_SKIP (1ULL << 63)   /* on slot.seq: published with nothing in it */
#define RING_STREAM (1ULL << 63) /* on tail: the put stream's holder owns the next positions */
#define RING_NONE UINT64_MAX /* an empty claim word */
#define RING_MAX_CAPACITY SHMKIT_QUEUE_CAPACITY_MAX
#define RING_MAX_MSG SHMKIT_MESSAGE_MAX
#define RING_MAX_SLOT SHMKIT_SLOT_MAX
#define FRAG_CONT 1u          /* slot.frag: a continuation fragment */
#define FRAG_HEAD (1u << 31)  /* slot.frag: a head fragment, | the message's total length */
#define RING_FD_SEATS 256u /* seats that may arm a pollable descriptor on a ring */

struct shmkit__slot {
	_Atomic uint64_t seq;
	_Atomic uint32_t len;  /* bytes in this slot; read (relaxed) by a consumer before its claim */
	_Atomic uint32_t frag; /* 0: a whole message; FRAG_HEAD | total; FRAG_CONT */
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
	_Atomic uint64_t conts;              /* continuation fragments claimed (not messages) */
	/* Seats whose handle armed its pollable descriptor for this ring's messages (bit k:
	 * seat k; see shmkit__ring_fd_arm). */
	_Alignas(SHMKIT__CACHELINE) _Atomic uint64_t fd_armed[RING_FD_SEATS / 64];
	/* Streams of messages larger than the free room (see above): holder's id + 1, 0 free. */
	_Alignas(SHMKIT__CACHELINE) _Atomic uint32_t put_stream;
	_Atomic uint32_t get_stream;
	_Atomic uint64_t get_start; /* the position of the head get_stream's holder receives */
};

/* Process-local view of a ring: validated layout and a cached head for the capacity check. */
struct shmkit__ring {
	struct shmkit__ring_sh *sh;
	unsigned char *slots;
	uint64_t mask;
	uint32_t nslots, capacity, max_size;
	uint32_t payload;   /* bytes of message in a slot (the public slot_size) */
	uint32_t slot_size; /* bytes from one slot to the next */
	uint64_t dev, ino; /* the region file's identity: where armed descriptors are reached */
};

/* A participant's claim record, in shared memory (a queue's participant entry, a pipe's end):
 * what it claimed and has not finished, so that its death can be resolved (see above). */
struct shmkit__claim {
	_Atomic uint64_t put_pos; /* RING_NONE, or the first position of a run being published */
	_Atomic uint64_t get_pos; /* RING_NONE, or the first position of a run being released */
	/* How many positions from put_pos / get_pos a run claimed; 0 means one (see
	 * shmkit__ring_claim_n). Written before the position it counts, reset after the position
	 * is cleared, so a claim word never names more than its owner holds. */
	_Atomic uint32_t put_cnt;
	_Atomic uint32_t get_cnt;
	_Atomic uint32_t waiting; /* enum shmkit__ring_side while armed in a wait: for the reaper */
	uint32_t reserved;
};
_Static_assert(sizeof(struct shmkit__claim) == 32, "part of the layout");

/* Which side a waiter waits on (its claim record's waiting field). */
enum shmkit__ring_side { RING_SIDE_NONE = 0, RING_SIDE_GET = 1, RING_SIDE_PUT = 2 };

/* Process-local state of a message being streamed (put or get) by this handle, within a call. */
struct shmkit__stream {
	bool on;
	uint64_t pos;         /* get: the next position to take */
	uint32_t total;       /* bytes in the message */
	uint32_t done;        /* get: bytes received; put: fragments written */
	unsigned char *buf;   /* where they go (get) or come from (put) */
};

/* A participant: its claim record and id (queue entry index, pipe end), plus process-local
 * state. Wired once by shmkit__ring_who_bind. */
struct shmkit__who {
	struct shmkit__claim *c;
	uint32_t id;
	/* JoinableQueue: messages this participant took and has not task_done'd. Counted before
	 * the claim (and given back if the claim fails), so a joiner never sees a message that
	 * is neither in the ring nor owed by someone. NULL when not joinable. */
	_Atomic uint64_t *owed;
	uint64_t head_cache;
	/* Process-local: the position of this participant's outstanding reserve / peek loan,
	 * RING_NONE when none. Its claim word names it until commit / release. */
	uint64_t loan_put, loan_get;
	struct shmkit__stream ps, gs;
};

/* Wire a participant to its claim record (cleared here) and id. */
void shmkit__ring_who_bind(struct shmkit__who *w, struct shmkit__claim *c, uint32_t id,
			   _Atomic uint64_t *owed);
/* Clear a claim record (creator, or an entry being reused). */
void shmkit__ring_claim_clear(struct shmkit__claim *c);

/* Positions a claim word with count c names: a batch's k, one otherwise; never more than a lap
 * (the count is read back from shared memory). */
static inline uint64_t shmkit__ring_claim_n(const struct shmkit__ring *r, uint32_t c)
{
	return c == 0 ? 1 : c > r->nslots ? r->nslots : c;
}

/* Called by a waiter every SHMKIT__SLICE_NS it sleeps: look for dead peers and resolve them. */
typedef void (*shmkit__ring_recover_fn)(void *arg);

/* Slot payload for (max_size, slot_size) as the public attr gives them (0s: defaults), or 0
 * when they are not valid; and the max_size that 0 stands for. */
uint32_t shmkit__ring_payload(uint32_t max_size, uint32_t slot_size);
uint32_t shmkit__ring_max_size(uint32_t max_size);
/* The layout's parameters as one region header word (max_size | payload << 32), and back. */
uint64_t shmkit__ring_param(uint32_t max_size, uint32_t payload);
void shmkit__ring_param_split(uint64_t param, uint32_t *max_size, uint32_t *payload);
/* Slot count for capacity (a power of two). */
uint32_t shmkit__ring_nslots(uint32_t capacity);
/* Bytes of slots. */
uint64_t shmkit__ring_bytes(uint32_t capacity, uint32_t payload);
/* Initialise shared state and slots (creator only). */
void shmkit__ring_init(struct shmkit__ring_sh *sh, unsigned char *slots, uint32_t capacity,
		       uint32_t max_size, uint32_t payload);
/* Bind a process-local view; slots must lie within the region (the caller checked). */
void shmkit__ring_bind(struct shmkit__ring *r, struct shmkit__ring_sh *sh, unsigned char *slots,
		       uint32_t capacity, uint32_t max_size, uint32_t payload);

/* Put/get with a deadline (0: try once; SHMKIT__FOREVER). Results as the public queue API,
 * with -EAGAIN for a try that would block and -ETIMEDOUT past a real deadline. */
int shmkit__ring_put(struct shmkit__ring *r, struct shmkit__who *w, const void *msg, size_t len,
		     int64_t deadline, shmkit__ring_recover_fn recover, void *arg);
int shmkit__ring_get(struct shmkit__ring *r, struct shmkit__who *w, void *buf, size_t size,
		     int64_t deadline, shmkit__ring_recover_fn recover, void *arg);
/* get into a buffer it allocates (*msg, free() it); -ENOMEM leaves the message queued. */
int shmkit__ring_get_alloc(struct shmkit__ring *r, struct shmkit__who *w, void **msg,
			   int64_t deadline, shmkit__ring_recover_fn recover, void *arg);
/* The length of the oldest message, without taking it; -EAGAIN none begun, -EPIPE at EOF. */
int shmkit__ring_next_size(struct shmkit__ring *r);

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

/* Loans, one slot each. reserve claims the next slot and points *data at its payload bytes (put's waiting
 * and errors; -EBUSY with a reserve outstanding); commit publishes len bytes of it (-EMSGSIZE
 * over the payload, the loan stays), or with cancel skips it. peek claims the oldest message and points *msg at it in place,
 * returning its length (get's waiting and errors; -EBUSY with a peek outstanding; -EMSGSIZE
 * for a message longer than a slot, left queued); release
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
 * Return 1 when a slot was resolved (for get: 2 when the resolved slot held a whole message,
 * 3 a head fragment). Callers must have checked that no live participant claims p. */
int shmkit__ring_resolve_put(struct shmkit__ring *r, uint64_t p);
int shmkit__ring_resolve_get(struct shmkit__ring *r, uint64_t p);
/* Does a live participant other than the dead one claim position q (get: its get run)? */
typedef bool (*shmkit__ring_claimed_fn)(uint64_t q, bool get, void *arg);
/* Participant `id` died with claim record *c: resolve every position of its runs that
 * claimed_by_other (NULL: nobody else could) does not give to a live participant, below the
 * bounds (tail and head read before the caller looked for live claims), its streams, and its
 * waiting flag, on the sides named (RING_SIDE_PUT | RING_SIDE_GET: a pipe end puts on one ring
 * and gets on the other). Messages it held count in lost_dead_consumer, once each. */
void shmkit__ring_reap(struct shmkit__ring *r, uint32_t id, struct shmkit__claim *c,
		       unsigned sides, uint64_t tail_bound, uint64_t head_bound, shmkit__ring_claimed_fn claimed,
		       void *arg);
/* Take back one from a waiting count without going below zero (after a waiter died). */
void shmkit__ring_unwait(_Atomic uint32_t *count);
/* tail and head without the stream mark. */
uint64_t shmkit__ring_tail(const struct shmkit__ring *r);
uint64_t shmkit__ring_head(const struct shmkit__ring *r);
/* Messages put and got so far (positions less skips and continuations: a snapshot). */
uint64_t shmkit__ring_put_total(const struct shmkit__ring *r);
uint64_t shmkit__ring_get_total(const struct shmkit__ring *r);
/* Messages queued now (tail - head, clamped to capacity). */
uint32_t shmkit__ring_depth(struct shmkit__ring *r);
/* Whether [head, tail) may hold a message: anything but published skips. */
bool shmkit__ring_busy(struct shmkit__ring *r);

#endif /* SHMKIT_RING_H */
