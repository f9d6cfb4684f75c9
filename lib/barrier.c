/*
 * Barrier (multiprocessing.Barrier): `parties` processes wait until all have arrived.
 *
 * State, all under one robust lock:
 *   count    arrivals in the current generation; the last arrival completes it
 *   gen      generations completed; epoch: resets
 *   broken   sticky until reset: every wait returns -ECANCELED
 *   waiting  who arrived in the current generation (pid, and the seat whose lease says
 *            whether it lives), by arrival index
 *   word     the futex word, bumped whenever a generation ends (completed, reset) or breaks
 *
 * A waiter remembers (epoch, gen) from its arrival and, once woken, judges its own generation
 * by them: epoch moved means reset (-ECANCELED); gen moved means completed (its index); broken
 * with both unchanged means broken while it waited (-ECANCELED). Breaking does not advance gen
 * and nothing completes while broken, so a waiter that wakes late, after other generations
 * came and went, still reads the right answer; the counters are 64-bit and never wrap.
 *
 * A party SIGKILLed while waiting would leave the others waiting for ever. Waiters sleep in
 * slices and, between slices, each checks the liveness of one other waiter: the one after it
 * in arrival order, round the ring. If any waiter is dead, the live waiter before it in the
 * ring (there is always one, unless none is alive) notices and breaks the barrier, at the cost
 * of one lease query per waiter per slice instead of parties - 1. A party that died waiting
 * alone has nobody to notice it: the next arrival checks everyone already arrived and breaks
 * the barrier when one is dead, as a waiter would (Python breaks a barrier whose waiter was
 * interrupted): it never passes with a dead partner.
 *
 * A holder that dies with the lock may have left the state half-written: whoever recovers the
 * lock breaks the barrier, and reset() makes it usable again.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>

#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "proc.h"
#include "region.h"
#include "wait.h"

#define PARTIES_MAX SHMKIT_BARRIER_PARTIES_MAX
#define STILL_WAITING (-EINPROGRESS) /* judge(): not decided yet */

struct barrier_region {
	struct shmkit__hdr hdr; /* param[0]: parties */
	struct shmkit__lk lk;   /* guards everything below */
	_Alignas(SHMKIT__CACHELINE) _Atomic uint32_t word; /* futex word, see above */
	_Atomic uint32_t count;
	_Atomic uint32_t broken;
	uint32_t reserved;
	uint64_t gen;
	uint64_t epoch;
	struct shmkit__ident waiting[]; /* [parties] */
};

struct shmkit_barrier {
	struct shmkit__region r;
	struct barrier_region *br;
	uint32_t parties; /* process-local copy, validated against the region size at open */
};

static size_t region_size(uint32_t parties)
{
	return sizeof(struct barrier_region) + (size_t)parties * sizeof(struct shmkit__ident);
}

SHMKIT__API int shmkit_barrier_create(const char *name, unsigned parties, unsigned mode,
				      shmkit_barrier **out)
{
	struct shmkit_barrier *b;
	int err;

	if (!out || parties < 1 || parties > PARTIES_MAX)
		return -EINVAL;
	if (!(b = shmkit__handle_new(sizeof(*b))))
		return -ENOMEM;
	err = shmkit__region_create(name, SHMKIT_KIND_BARRIER, 0, region_size(parties),
				    SHMKIT__SEATS_DEFAULT, mode, &b->r);
	if (err)
		goto fail;
	b->r.hdr->param[0] = parties;
	b->br = (struct barrier_region *)b->r.hdr;
	b->parties = parties;
	/* A fresh region is zero-filled: count, broken, gen, epoch and the table start at 0. */
	shmkit__region_set_lock(&b->r, &b->br->lk);
	shmkit__region_ready(&b->r);
	*out = b;
	return 0;
fail:
	free(b);
	return err;
}

/* parties if the region is a well-formed Barrier, else 0. */
static uint32_t region_parties(const struct shmkit__region *r)
{
	uint64_t parties;

	if (!r->hdr || r->hdr->kind != SHMKIT_KIND_BARRIER || r->hdr->flags != 0)
		return 0;
	parties = r->hdr->param[0];
	if (parties < 1 || parties > PARTIES_MAX || !shmkit__obj_size_is(r, region_size((uint32_t)parties)) ||
	    r->lk != &((struct barrier_region *)r->hdr)->lk)
		return 0;
	return (uint32_t)parties;
}

static int check_region(const struct shmkit__region *r)
{
	return region_parties(r) ? 0 : -EBADMSG;
}

SHMKIT__API int shmkit_barrier_open(const char *name, shmkit_barrier **out)
{
	int err = shmkit__handle_open(name, SHMKIT_KIND_BARRIER, sizeof(**out), check_region,
				      out);

	if (!err) {
		(*out)->parties = region_parties(&(*out)->r);
		(*out)->br = (struct barrier_region *)(*out)->r.hdr;
	}
	return err;
}

SHMKIT__API int shmkit_barrier_close(shmkit_barrier *b)
{
	if (!b)
		return 0;
	shmkit__region_quiesce(&b->r, &b->br->word);
	shmkit__region_close(&b->r);
	free(b);
	return 0;
}

SHMKIT__API int shmkit_barrier_unlink(const char *name)
{
	return shmkit__region_unlink(name);
}

/* With the lock held: end the current generation as broken. The caller wakes (unlock_wake). */
static void break_locked(struct barrier_region *br)
{
	atomic_store_explicit(&br->broken, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&br->word, 1, memory_order_relaxed);
}

/* Take the state lock; one recovered from a dead holder may guard half-written state, so the
 * barrier is broken then. *wake is set when sleepers must be woken after unlocking. */
static int lock_state(struct shmkit_barrier *b, bool *wake)
{
	struct barrier_region *br = b->br;
	int r = shmkit__lk_acquire(&b->r, shmkit__deadline(SHMKIT__STATE_LOCK_NS), false);

	if (r == SHMKIT_OWNER_DIED) {
		break_locked(br);
		*wake = true;
		r = 0;
	}
	return r;
}

/* Wake after unlocking, so the woken do not pile up on the lock we still hold. The word was
 * changed under the lock before this: a waiter that read it earlier cannot fall asleep. */
static void unlock_wake(struct shmkit_barrier *b, bool wake)
{
	struct barrier_region *br = b->br;

	shmkit__lk_release(&b->r);
	if (wake)
		shmkit__futex_wake(&br->word, INT_MAX);
}

/* With the lock held: how the generation a waiter arrived in (epoch, gen) ended. */
static int judge(struct barrier_region *br, uint64_t epoch, uint64_t gen, uint32_t index)
{
	if (br->epoch != epoch)
		return -ECANCELED; /* reset while waiting */
	if (br->gen != gen)
		return (int)index; /* completed */
	if (atomic_load_explicit(&br->broken, memory_order_relaxed))
		return -ECANCELED;
	return STILL_WAITING;
}

/* Wait as a waiter that arrived with index `index` in (epoch, gen) and saw `seen` in the word.
 * intr (may be NULL) is asked after a signal and at the end of each slice whether the caller
 * must stop (the Python binding: a KeyboardInterrupt); if so the barrier breaks, as Python's
 * does when a wait raises, and the result is -EINTR. */
static int sleep_in_slices(struct shmkit_barrier *b, uint64_t epoch, uint64_t gen,
			   uint32_t index, uint32_t seen, int64_t deadline, int (*intr)(void *),
			   void *arg)
{
	struct barrier_region *br = b->br;
	int32_t nb_pid;
	uint32_t nb_seat, nb_gen;
	uint32_t count, nb;
	bool wake;
	int r, slept;

	for (;;) {
		int64_t now = shmkit__now(), until = deadline;

		if (deadline - now > SHMKIT__SLICE_NS)
			until = now + SHMKIT__SLICE_NS;
		errno = 0; /* a successful futex call leaves it: EINTR after means a signal */
		slept = shmkit__futex_wait(&br->word, seen, until);
		if (shmkit__closing(&b->r))
			return -EBADF; /* closed under us: our seat goes, which breaks it for all */
		if (intr && (errno == EINTR || slept == -ETIMEDOUT) && intr(arg)) {
			wake = false;
			if ((r = lock_state(b, &wake)) < 0)
				return r;
			r = judge(br, epoch, gen, index);
			if (r == STILL_WAITING) {
				break_locked(br);
				r = -EINTR;
				wake = true;
			}
			unlock_wake(b, wake);
			return r;
		}
		/* A signal or a spurious return: keep sleeping, same deadline. */
		if (slept == 0 && atomic_load_explicit(&br->word, memory_order_relaxed) == seen)
			continue;
		if (slept == -ETIMEDOUT)
			slept = 0; /* the end of a slice, or of the wait: the clock says which */
		wake = false;
		if ((r = lock_state(b, &wake)) < 0)
			return r;
		r = judge(br, epoch, gen, index);
		if (r == STILL_WAITING && (shmkit__now() >= deadline || slept < 0)) {
			/* As in Python, the party that times out breaks the barrier for all; so
			 * does one that cannot sleep (rather than spin). */
			break_locked(br);
			unlock_wake(b, true);
			return slept < 0 ? slept : -ETIMEDOUT;
		}
		if (r != STILL_WAITING) {
			unlock_wake(b, wake);
			return r;
		}
		/* Still filling: look at the next waiter in the ring (the region is untrusted:
		 * our own index must be below count, and count within parties). */
		count = atomic_load_explicit(&br->count, memory_order_relaxed);
		if (count <= index || count > b->parties) {
			break_locked(br);
			unlock_wake(b, true);
			return -EBADMSG;
		}
		nb = (index + 1) % count;
		nb_pid = atomic_load_explicit(&br->waiting[nb].pid, memory_order_relaxed);
		nb_seat = (uint32_t)br->waiting[nb].seat;
		nb_gen = br->waiting[nb].seat_gen;
		seen = atomic_load_explicit(&br->word, memory_order_relaxed);
		unlock_wake(b, wake);
		/* The lease query happens without the lock; a death is confirmed under it again,
		 * against the same generation and the same entry, before breaking. */
		if (nb == index || shmkit__seat_alive_gen(&b->r, nb_seat, nb_gen))
			continue;
		wake = false;
		if ((r = lock_state(b, &wake)) < 0)
			return r;
		if (judge(br, epoch, gen, index) == STILL_WAITING &&
		    atomic_load_explicit(&br->count, memory_order_relaxed) > nb &&
		    atomic_load_explicit(&br->waiting[nb].pid, memory_order_relaxed) == nb_pid &&
		    (uint32_t)br->waiting[nb].seat == nb_seat) {
			break_locked(br);
			wake = true;
		}
		unlock_wake(b, wake);
		/* If it broke, the word changed: the next futex_wait returns at once and the
		 * judgement under the lock says -ECANCELED. */
	}
}

static int barrier_wait(struct shmkit_barrier *b, int64_t deadline, int (*intr)(void *),
			void *arg)
{
	struct barrier_region *br = b->br;
	uint64_t epoch, gen, start;
	uint32_t index, seen, i, dead = 0;
	bool wake = false;
	int32_t pid;
	int r, seat;

	if ((seat = shmkit__seat_take(&b->r)) < 0)
		return seat;
	if ((r = lock_state(b, &wake)) < 0)
		return r;
	if (atomic_load_explicit(&br->broken, memory_order_relaxed)) {
		unlock_wake(b, wake);
		return -ECANCELED;
	}
	index = atomic_load_explicit(&br->count, memory_order_relaxed);
	if (index >= b->parties) {
		break_locked(br);
		unlock_wake(b, true);
		return -EBADMSG;
	}
	/* Those who arrived before us must still be there: a dead party's arrival must not
	 * count towards ours. */
	for (i = 0; i < index; i++)
		dead += !shmkit__seat_alive_gen(&b->r, (uint32_t)br->waiting[i].seat,
						br->waiting[i].seat_gen);
	if (dead) {
		break_locked(br);
		unlock_wake(b, true);
		return -ECANCELED;
	}
	shmkit__self(&pid, &start);
	atomic_store_explicit(&br->waiting[index].start, start, memory_order_relaxed);
	atomic_store_explicit(&br->waiting[index].pid, pid, memory_order_relaxed);
	br->waiting[index].seat = seat;
	br->waiting[index].seat_gen = shmkit__seat_gen(&b->r, (uint32_t)seat);
	if (index + 1 == b->parties) {
		/* The last arrival releases its generation and opens the next one. */
		br->gen++;
		atomic_store_explicit(&br->count, 0, memory_order_relaxed);
		atomic_fetch_add_explicit(&br->word, 1, memory_order_relaxed);
		unlock_wake(b, wake || b->parties > 1);
		return (int)index;
	}
	atomic_store_explicit(&br->count, index + 1, memory_order_relaxed);
	epoch = br->epoch;
	gen = br->gen;
	/* Read under the lock, which every change of the word also holds: nothing that ends
	 * this generation can slip between this read and the futex_wait unnoticed. */
	seen = atomic_load_explicit(&br->word, memory_order_relaxed);
	unlock_wake(b, wake);
	if (!shmkit__sleep_begin(&b->r))
		return -EBADF;
	r = sleep_in_slices(b, epoch, gen, index, seen, deadline, intr, arg);
	shmkit__sleep_end(&b->r);
	return r;
}

int shmkit__barrier_wait_intr(shmkit_barrier *b, int64_t timeout_ns, int (*intr)(void *),
			      void *arg)
{
	return barrier_wait(b, timeout_ns < 0 ? SHMKIT__FOREVER : shmkit__deadline(timeout_ns),
			    intr, arg);
}

SHMKIT__API int shmkit_barrier_wait(shmkit_barrier *b)
{
	return barrier_wait(b, SHMKIT__FOREVER, NULL, NULL);
}

SHMKIT__API int shmkit_barrier_wait_try(shmkit_barrier *b)
{
	/* Arrive and do not wait: the last arrival passes; any other breaks the barrier, as a
	 * wait that times out does (Python's wait(timeout=0)). */
	int r = barrier_wait(b, 0, NULL, NULL);

	return r == -ETIMEDOUT ? -EAGAIN : r;
}

SHMKIT__API int shmkit_barrier_wait_timeout(shmkit_barrier *b, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : barrier_wait(b, deadline, NULL, NULL);
}

SHMKIT__API int shmkit_barrier_reset(shmkit_barrier *b)
{
	struct barrier_region *br = b->br;
	bool wake = true;
	int r;

	if ((r = shmkit__seat_take(&b->r)) < 0)
		return r;
	/* A lock recovered from a dead holder is fine here: reset rewrites all of the state. */
	if ((r = lock_state(b, &wake)) < 0)
		return r;
	br->epoch++;
	atomic_store_explicit(&br->count, 0, memory_order_relaxed);
	atomic_store_explicit(&br->broken, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&br->word, 1, memory_order_relaxed);
	unlock_wake(b, true);
	return 0;
}

SHMKIT__API int shmkit_barrier_abort(shmkit_barrier *b)
{
	struct barrier_region *br = b->br;
	bool wake = true;
	int r;

	if ((r = shmkit__seat_take(&b->r)) < 0)
		return r;
	if ((r = lock_state(b, &wake)) < 0)
		return r;
	break_locked(br);
	unlock_wake(b, true);
	return 0;
}

SHMKIT__API int shmkit_barrier_parties(shmkit_barrier *b)
{
	return (int)b->parties;
}

/* Parties waiting, 0 when broken (as Python's n_waiting), clamped to parties: a snapshot read
 * without the lock from an untrusted region. */
static int n_waiting(const struct barrier_region *br, uint32_t parties)
{
	uint32_t n;

	if (atomic_load_explicit(&br->broken, memory_order_relaxed))
		return 0;
	n = atomic_load_explicit(&br->count, memory_order_relaxed);
	return (int)(n < parties ? n : parties);
}

SHMKIT__API int shmkit_barrier_n_waiting(shmkit_barrier *b)
{
	return n_waiting(b->br, b->parties);
}

SHMKIT__API int shmkit_barrier_broken(shmkit_barrier *b)
{
	return atomic_load_explicit(&b->br->broken, memory_order_relaxed) ? 1 : 0;
}

int shmkit__barrier_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	uint32_t parties;

	if (!r || !info || !(parties = region_parties(r)))
		return -EBADMSG;
	info->len = parties;
	info->value = n_waiting((const struct barrier_region *)r->hdr, parties);
	info->flags = r->hdr->flags;
	if (atomic_load_explicit(&((const struct barrier_region *)r->hdr)->broken,
				 memory_order_relaxed))
		info->flags |= SHMKIT_BROKEN;
	return 0;
}
