/*
 * The lock behind Lock, RLock, Value, Array, Condition and the internal state locks.
 *
 * Why not a robust pthread mutex: glibc names the holder by thread id, in the word and in the
 * kernel's robust list, and thread ids repeat across pid namespaces. Two containers' pid 1
 * would share recursion (an RLock granted to both), an error-checking lock would answer
 * -EDEADLK to a process that does not hold it, and a waiter from the other namespace killed
 * while waiting makes the kernel mark the *holder's* lock owner-died (its robust list names
 * the mutex, and the tid in the word matches its own) while the holder is still inside.
 *
 * So the word names the holder by its seat (lease.c), which is unique in the region and
 * held through a kernel lease that dies with the process in any namespace:
 *
 *   word = 0                          free
 *   word = SHMKIT__LK_DIED            free, and the last holder died holding it: the next
 *                                     acquirer gets SHMKIT_OWNER_DIED
 *   word = seat + 1 [| WAITERS]       held by that seat; WAITERS: someone may sleep on it
 *
 * Acquire is one CAS 0 -> seat + 1 when free (the fast path touches nothing else shared).
 * A waiter sleeps on the word with FUTEX_WAIT after setting WAITERS, without spinning first
 * (measured: a spinner's reads of the word's line slow the holder's critical section, and two
 * contending processes went from about 100 to 160 ns per acquire+release with 20 pauses); the
 * releaser swaps in 0 and wakes one sleeper when WAITERS was set (the woken one sets WAITERS
 * again when it takes the lock, since others may still sleep). A millisecond into its wait,
 * and every 200 ms after, a waiter asks the kernel whether the holder's seat is still leased; when it is not, the holder died: the waiter freezes the dead seat (takes its
 * lease, so nobody can sit there and take the lock meanwhile), swaps the word to DIED and lets
 * the seat go. Recursion and "held by me" compare the holder's thread global id (proc.c: 64
 * random bits per thread and per fork child), so a thread holds a lock whichever of its
 * handles took it, and no thread of another namespace or process ever matches.
 *
 * A thread about to sleep also publishes what it waits for in the wait-for graph (deadlock.c) and
 * follows the holders' waits; a path back to itself is a deadlock, reported as -EDEADLK
 * instead of sleeping. Only the slow path pays for that.
 */
#include "config.h"

#include <limits.h>
#include <sched.h>

#include "deadlock.h"
#include "lease.h"
#include "mutex.h"
#include "proc.h"
#include "wait.h"

/* How often a sleeping waiter asks whether the holder still lives. Shorter than the idle
 * sleepers' slice: a lock waiter is never idle, it is held up, and a dead holder should cost
 * it a fraction of a second. */
#define LK_LOOK_NS (200 * 1000000LL)
/* The first look waits this long: a contended lock usually changes hands sooner, and then the
 * waiter never pays for a lease query and a deadlock look (a real deadlock or a dead holder is
 * reported a millisecond later). */
#define LK_FIRST_LOOK_NS (1000000LL)

void shmkit__lk_init(struct shmkit__lk *lk)
{
	atomic_store_explicit(&lk->word, 0, memory_order_relaxed);
	lk->depth = 0;
	lk->reserved0 = lk->reserved1 = 0;
	atomic_store_explicit(&lk->holder_tgid, 0, memory_order_relaxed);
	atomic_store_explicit(&lk->owner_deaths, 0, memory_order_relaxed);
}

/* Held by the calling thread, through any of its handles: the holder's thread global id is
 * ours (64 random bits drawn per thread and per fork child, so it repeats in no namespace),
 * and the word says held. Released holders clear the id before the word (see release). */
int shmkit__lk_held(struct shmkit__region *r)
{
	struct shmkit__lk *lk = r->lk;

	return atomic_load_explicit(&lk->holder_tgid, memory_order_relaxed) == shmkit__tgid() &&
	       (atomic_load_explicit(&lk->word, memory_order_relaxed) & SHMKIT__LK_SEAT_MASK);
}

static int took(struct shmkit__lk *lk, bool died)
{
	atomic_store_explicit(&lk->holder_tgid, shmkit__tgid(), memory_order_relaxed);
	/* depth is shared memory: whatever a previous holder left there means nothing now. */
	lk->depth = 1;
	if (died) {
		atomic_fetch_add_explicit(&lk->owner_deaths, 1, memory_order_relaxed);
		return SHMKIT_OWNER_DIED;
	}
	return 0;
}

void shmkit__lk_reclaim_seat(struct shmkit__region *r, uint32_t k)
{
	struct shmkit__lk *lk = r->lk;
	uint32_t w = atomic_load_explicit(&lk->word, memory_order_relaxed);

	/* The caller holds seat k's lease, so its holder cannot come back: free the lock with
	 * DIED, keeping WAITERS so the sleepers are woken now rather than at their next look.
	 * The dead holder's id goes first, as a release clears it first: the deadlock
	 * detector's proof (deadlock.c) needs "this id is in the lock" to mean "this thread
	 * holds it". Nobody else writes the id while the word names seat k. */
	if ((w & SHMKIT__LK_SEAT_MASK) == k + 1)
		atomic_store_explicit(&lk->holder_tgid, 0, memory_order_relaxed);
	while ((w & SHMKIT__LK_SEAT_MASK) == k + 1) {
		if (atomic_compare_exchange_weak_explicit(&lk->word, &w,
							  SHMKIT__LK_DIED | (w & SHMKIT__LK_WAITERS),
							  memory_order_relaxed, memory_order_relaxed)) {
			if (w & SHMKIT__LK_WAITERS)
				shmkit__futex_wake(&lk->word, 1);
			return;
		}
	}
}

/* The holder's seat lost its lease: it died holding the lock. */
static void recover(struct shmkit__region *r, uint32_t seat)
{
	if (shmkit__seat_freeze(r, seat) != 0)
		return; /* someone sits there now, and took_seat already freed the lock */
	shmkit__lk_reclaim_seat(r, seat);
	shmkit__seat_thaw(r, seat);
}

/* The holder's thread id for the deadlock detector, read so that it belongs to `w`. */
static uint64_t holder_tgid(struct shmkit__lk *lk, uint32_t w)
{
	uint64_t t = atomic_load_explicit(&lk->holder_tgid, memory_order_acquire);

	/* Pairs with the release exchange in shmkit__lk_release: a reader that saw a newer
	 * holder's word does not see an older holder's id (it may see 0, "not known yet"). */
	return (atomic_load_explicit(&lk->word, memory_order_acquire) & SHMKIT__LK_SEAT_MASK) ==
			       (w & SHMKIT__LK_SEAT_MASK)
		       ? t
		       : 0;
}

static int slow(struct shmkit__region *r, uint32_t me, int64_t deadline, bool detect)
{
	struct shmkit__lk *lk = r->lk;
	struct shmkit__seat *mine = &r->seats[me - 1];
	int64_t now, next_look = 0;
	bool slept = false, published = false, tried_dead = false;
	uint32_t w, holder;
	int rc;

	if (!shmkit__sleep_begin(r))
		return -EBADF;
	for (;;) {
		if (shmkit__unlikely(shmkit__closing(r))) {
			rc = -EBADF; /* the handle is being closed under us */
			goto out;
		}
		w = atomic_load_explicit(&lk->word, memory_order_relaxed);
		holder = w & SHMKIT__LK_SEAT_MASK;
		if (!holder) {
			/* Taken with WAITERS once we have slept: others may be asleep too. */
			uint32_t nw = me | (slept ? SHMKIT__LK_WAITERS : (w & SHMKIT__LK_WAITERS));

			/* Acquire: pairs with the release exchange in shmkit__lk_release. */
			if (!atomic_compare_exchange_weak_explicit(&lk->word, &w, nw,
								   memory_order_acquire,
								   memory_order_relaxed))
				continue;
			rc = took(lk, w & SHMKIT__LK_DIED);
			goto out;
		}
		if (holder > r->nseats || (w & ~(SHMKIT__LK_SEAT_MASK | SHMKIT__LK_DIED |
						  SHMKIT__LK_WAITERS))) {
			rc = -EBADMSG; /* not a word any shmkit writes */
			goto out;
		}
		if (deadline == 0) {
			/* A try must not report busy a lock whose holder is dead. */
			if (!tried_dead && !shmkit__seat_alive(r, holder - 1)) {
				tried_dead = true;
				recover(r, holder - 1);
				continue;
			}
			rc = -EAGAIN;
			goto out;
		}
		now = shmkit__now();
		if (now >= deadline) {
			rc = slept ? -ETIMEDOUT : -EAGAIN;
			goto out;
		}
		if (!next_look)
			next_look = now + LK_FIRST_LOOK_NS;
		if (now >= next_look) {
			next_look = now + LK_LOOK_NS;
			if (!shmkit__seat_alive(r, holder - 1)) {
				recover(r, holder - 1);
				continue;
			}
			if (detect) {
				if (shmkit__wfg_enter(r, holder_tgid(lk, w)) == -EDEADLK) {
					published = false;
					rc = -EDEADLK;
					goto out;
				}
				published = true;
			}
		}
		if (!(w & SHMKIT__LK_WAITERS) &&
		    !atomic_compare_exchange_weak_explicit(&lk->word, &w, w | SHMKIT__LK_WAITERS,
							   memory_order_relaxed,
							   memory_order_relaxed))
			continue;
		atomic_store_explicit(&mine->waiting, 1, memory_order_relaxed);
		shmkit__futex_wait(&lk->word, w | SHMKIT__LK_WAITERS,
				   deadline < next_look ? deadline : next_look);
		slept = true;
	}
out:
	atomic_store_explicit(&mine->waiting, 0, memory_order_relaxed);
	if (published)
		shmkit__wfg_leave();
	shmkit__sleep_end(r);
	return rc;
}

int shmkit__lk_acquire(struct shmkit__region *r, int64_t deadline, bool detect)
{
	struct shmkit__lk *lk = r->lk;
	uint32_t me, w = 0;
	int seat;

	if (shmkit__unlikely((seat = shmkit__seat_take(r)) < 0))
		return seat;
	me = (uint32_t)seat + 1;
	/* The CAS first: a free lock is not ours, and a contended line is not read twice.
	 * Acquire: pairs with the release exchange in shmkit__lk_release. */
	if (shmkit__likely(atomic_compare_exchange_strong_explicit(
		    &lk->word, &w, me, memory_order_acquire, memory_order_relaxed)))
		return took(lk, false);
	if (shmkit__unlikely(shmkit__lk_held(r))) {
		if (!r->lk_recursive)
			return -EDEADLK;
		if (lk->depth == UINT32_MAX)
			return -EOVERFLOW;
		lk->depth++;
		return 0;
	}
	return slow(r, me, deadline, detect);
}

int shmkit__lk_release(struct shmkit__region *r)
{
	struct shmkit__lk *lk = r->lk;
	uint32_t old;

	/* holder fields and depth belong to the holder: check before touching them. */
	if (!shmkit__lk_held(r))
		return -EPERM;
	if (lk->depth > 1) {
		lk->depth--;
		return 0;
	}
	lk->depth = 0;
	atomic_store_explicit(&lk->holder_tgid, 0, memory_order_relaxed);
	/* Release: pairs with the acquiring CAS (and holder_tgid's reader): the next holder
	 * sees everything written under the lock, and the cleared holder fields. */
	old = atomic_exchange_explicit(&lk->word, 0, memory_order_release);
	if (old & SHMKIT__LK_WAITERS)
		shmkit__futex_wake(&lk->word, 1);
	return 0;
}

int32_t shmkit__lk_holder(const struct shmkit__region *r, const struct shmkit__lk *lk)
{
	uint32_t w = atomic_load_explicit(&((struct shmkit__lk *)lk)->word, memory_order_relaxed);
	uint32_t seat = w & SHMKIT__LK_SEAT_MASK;

	if (!seat || seat > r->nseats)
		return 0;
	return atomic_load_explicit(&r->seats[seat - 1].pid, memory_order_relaxed);
}
