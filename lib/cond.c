/*
 * Condition (multiprocessing.Condition): a recursive robust Lock plus a notification sequence.
 *
 * No pthread condition variable: a process-shared one wedges or loses wake-ups once a waiter is
 * SIGKILLed (glibc bug 21422). Waiters sleep on a futex word instead, `seq`, which notify bumps
 * before it wakes. The kernel drops a dead sleeper from the futex queue, so a killed waiter
 * neither blocks notify nor swallows a wake-up meant for a live one.
 *
 * No lost wake-ups: a waiter reads seq while it still holds the lock, so any notify that can
 * follow its release (notify needs the lock) changes seq first, and the waiter's futex_wait on
 * the old value then returns at once instead of sleeping.
 *
 * notify(n) wakes n waiters, not all: `wg` counts the waiters (high half) and the grants
 * (low half) notify handed out and no waiter took yet. notify(n) adds min(n, waiters - grants)
 * grants, changes seq and wakes every sleeper; a sleeper that finds seq changed takes a grant
 * (one CAS on wg, leaving the waiter count with it) and returns notified, or, when the others
 * took them all, sleeps again on the new seq. Only waiters that were asleep before the notify
 * see seq change, so a later arrival never takes a grant meant for them. A waiter that times
 * out, or whose sleep is cut (a signal, the Python binding's slices), takes a grant only if
 * seq changed while it waited, so a timeout is never turned into a notification that went to
 * another. A waiter killed while asleep leaves one waiter too many counted: a later notify may
 * grant it and wake one fewer (never none while a live waiter it counts as waiting sleeps,
 * since the dead one cannot take the grant and live ones take what is left); wg's grants are
 * clamped to its waiters whenever a waiter leaves.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>

#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "region.h"
#include "wait.h"

struct cond_region {
	struct shmkit__hdr hdr;
	struct shmkit__lk lk;                             /* recursive, robust */
	_Alignas(SHMKIT__CACHELINE) _Atomic uint32_t seq; /* futex word: bumped by notify */
	_Alignas(8) _Atomic uint64_t wg; /* waiters << 32 | grants not yet taken (see above) */
};

struct shmkit_cond {
	struct shmkit__region r;
	struct cond_region *cr;
	struct shmkit_lock lock; /* borrowed: points at cr->lk */
};

static void bind(struct shmkit_cond *c)
{
	c->cr = (struct cond_region *)c->r.hdr;
	c->lock.reg = &c->r;
	c->lock.borrowed = true;
}

SHMKIT__API int shmkit_cond_create(const char *name, unsigned mode, shmkit_cond **out)
{
	struct shmkit_cond *c;
	int err;

	if (!out)
		return -EINVAL;
	if (!(c = shmkit__handle_new(sizeof(*c))))
		return -ENOMEM;
	err = shmkit__region_create(name, SHMKIT_KIND_COND, SHMKIT_RECURSIVE,
				    sizeof(struct cond_region), SHMKIT__SEATS_DEFAULT, mode, &c->r);
	if (err)
		goto fail;
	bind(c);
	atomic_store_explicit(&c->cr->seq, 0, memory_order_relaxed);
	atomic_store_explicit(&c->cr->wg, 0, memory_order_relaxed);
	shmkit__region_set_lock(&c->r, &c->cr->lk);
	shmkit__region_ready(&c->r);
	*out = c;
	return 0;
fail:
	free(c);
	return err;
}

/* The only parameters are the size and the flags (its lock is always recursive). */
static int cond_region_ok(const struct shmkit__region *r)
{
	return r->hdr && r->hdr->kind == SHMKIT_KIND_COND &&
	       shmkit__obj_size_is(r, sizeof(struct cond_region)) && r->hdr->flags == SHMKIT_RECURSIVE &&
	       r->lk == &((struct cond_region *)r->hdr)->lk;
}

static int check_region(const struct shmkit__region *r)
{
	return cond_region_ok(r) ? 0 : -EBADMSG;
}

SHMKIT__API int shmkit_cond_open(const char *name, shmkit_cond **out)
{
	int err = shmkit__handle_open(name, SHMKIT_KIND_COND, sizeof(**out), check_region, out);

	if (!err)
		bind(*out);
	return err;
}

SHMKIT__API int shmkit_cond_close(shmkit_cond *c)
{
	if (!c)
		return 0;
	shmkit__region_close(&c->r);
	free(c);
	return 0;
}

SHMKIT__API int shmkit_cond_unlink(const char *name)
{
	return shmkit__region_unlink(name);
}

SHMKIT__API shmkit_lock *shmkit_cond_lock(shmkit_cond *c)
{
	return &c->lock;
}

/*
 * Release the lock however deeply this thread holds it and return that depth. Setting
 * lk->depth by hand would not do: the lock's release (mutex.c) keeps the recursion count and
 * frees the word only when it reaches zero. So release one level at a time until the lock is
 * no longer ours; a failing release (a corrupt region) ends the loop rather than spinning.
 */
static unsigned release_all(struct shmkit__region *r)
{
	unsigned depth = 0;

	while (shmkit__lk_held(r) && shmkit__lk_release(r) == 0)
		depth++;
	return depth;
}

/* Take the lock back `depth` levels deep; SHMKIT_OWNER_DIED if the first acquire recovered it
 * from a dead holder (the later ones are recursive and cannot). */
static int reacquire(struct shmkit__region *reg, unsigned depth)
{
	int r, rc = 0;

	/* No deadlock detection here: a wait must come back holding the lock, so a cycle
	 * through it is reported to the other party, whose acquire closes it. */
	while (depth--) {
		r = shmkit__lk_acquire(reg, SHMKIT__FOREVER, false);
		if (r < 0)
			return r;
		if (r == SHMKIT_OWNER_DIED)
			rc = r;
	}
	return rc;
}

#define WG_WAITER (1ULL << 32)
#define WG_WAITERS(v) ((uint32_t)((v) >> 32))
#define WG_GRANTS(v) ((uint32_t)(v))

/* Leave wg: with a grant (taken: 1) when `take` and there is one, else as a waiter that was not
 * notified (0), clamping the grants to the waiters left. */
static int wg_leave(struct cond_region *cr, bool take)
{
	/* C1: establishes a synchronizing edge with C2 (notify's CAS on wg). */
	uint64_t v = atomic_load_explicit(&cr->wg, memory_order_acquire), nv;
	uint32_t w, g;

	for (;;) {
		w = WG_WAITERS(v);
		g = WG_GRANTS(v);
		if (!w)
			return 0; /* corrupt or reset: nothing to take */
		if (take && g) {
			nv = v - WG_WAITER - 1;
		} else {
			if (take)
				return -1; /* the others took them all */
			nv = ((uint64_t)(w - 1) << 32) | (g > w - 1 ? w - 1 : g);
		}
		/* C1: acq_rel, establishes a synchronizing edge with C2 (notify's CAS on wg,
		 * which precedes its seq bump). */
		if (atomic_compare_exchange_weak_explicit(&cr->wg, &v, nv, memory_order_acq_rel,
							  memory_order_acquire))
			return take && g ? 1 : 0;
	}
}

/* 0 (notified), -ETIMEDOUT, or SHMKIT_OWNER_DIED: the reacquire took the lock from a dead
 * holder. That beats -ETIMEDOUT because the caller must learn the protected data may be
 * half-updated, and a timed-out wait may always be read as a spurious wake-up. */
static int cond_wait(struct shmkit_cond *c, int64_t deadline)
{
	struct cond_region *cr = c->cr;
	uint32_t seen, first, now;
	unsigned depth;
	int r, rc;

	if (!shmkit__lk_held(&c->r))
		return -EPERM;
	/* C3: establishes a synchronizing edge with C4 (notify's seq bump). */
	first = seen = atomic_load_explicit(&cr->seq, memory_order_acquire);
	atomic_fetch_add_explicit(&cr->wg, WG_WAITER, memory_order_relaxed);
	depth = release_all(&c->r);
	if (!depth) {
		wg_leave(cr, false);
		return -EPERM;
	}
	for (;;) {
		r = shmkit__futex_wait(&cr->seq, seen, deadline);
		/* C3: establishes a synchronizing edge with C4 (notify's release bump), so the
		 * grants it made are seen. */
		now = atomic_load_explicit(&cr->seq, memory_order_acquire);
		if (now != seen) {
			if (wg_leave(cr, true) == 1) {
				r = 0;
				break;
			}
			seen = now; /* that notify's grants went to others: sleep on */
		}
		if (r < 0) { /* -ETIMEDOUT (or a futex error: leave as timed out) */
			/* Leaving: a grant made since we began waiting is ours to take rather than
			 * to strand; else we leave unnotified. */
			r = now != first && wg_leave(cr, true) == 1 ? 0 : (wg_leave(cr, false), -ETIMEDOUT);
			break;
		}
	}
	rc = reacquire(&c->r, depth);
	return rc ? rc : r;
}

SHMKIT__API int shmkit_cond_wait(shmkit_cond *c)
{
	return cond_wait(c, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_cond_wait_try(shmkit_cond *c)
{
	/* A wait of no time: the lock is let go and taken back, so a notifier waiting for it
	 * gets its turn, as Python's wait(0) does; -EAGAIN when nothing notified meanwhile. */
	int r = cond_wait(c, 0);

	return r == -ETIMEDOUT ? -EAGAIN : r;
}

SHMKIT__API int shmkit_cond_wait_timeout(shmkit_cond *c, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : cond_wait(c, deadline);
}

/* Every wait shares one deadline, so wake-ups that find the predicate still false do not
 * stretch the total. SHMKIT_OWNER_DIED from a reacquire is not returned (the result is 1 or 0
 * as documented): the predicate, checked next, is what looks at the data. */
SHMKIT__API int shmkit_cond_wait_for(shmkit_cond *c, int (*pred)(void *arg), void *arg,
				     int64_t timeout_ns)
{
	int64_t deadline;
	int r;

	/* As every timed call: negative is an error; INT64_MAX is forever. */
	if (!pred || timeout_ns < 0)
		return -EINVAL;
	deadline = shmkit__deadline(timeout_ns);
	if (!shmkit__lk_held(&c->r))
		return -EPERM;
	for (;;) {
		if (pred(arg))
			return 1;
		r = cond_wait(c, deadline);
		if (r == -ETIMEDOUT)
			return pred(arg) ? 1 : 0;
		if (r < 0)
			return r;
	}
}

SHMKIT__API int shmkit_cond_notify(shmkit_cond *c, int n)
{
	struct cond_region *cr = c->cr;

	if (n < 0)
		return -EINVAL;
	if (!shmkit__lk_held(&c->r))
		return -EPERM;
	uint64_t v = atomic_load_explicit(&cr->wg, memory_order_relaxed), nv;
	uint32_t w, g, k;

	do {
		w = WG_WAITERS(v);
		g = WG_GRANTS(v);
		if (n == 0 || w <= g)
			return 0; /* nobody waits that is not notified already */
		k = (uint32_t)n < w - g ? (uint32_t)n : w - g;
		nv = v + k;
		/* C2: establishes a synchronizing edge with C1 (the waiter's CAS on wg, after its
		 * acquire of seq, C3, which follows this CAS through C4). */
	} while (!atomic_compare_exchange_weak_explicit(&cr->wg, &v, nv, memory_order_release,
							 memory_order_relaxed));
	/* Change the word before waking: a waiter between its release and its futex_wait then
	 * finds seq changed and does not sleep. Every sleeper wakes: the futex cannot tell which
	 * were asleep before this notify; the grants decide who returns. C4: establishes a
	 * synchronizing edge with C3 (the waiter's load of seq). */
	atomic_fetch_add_explicit(&cr->seq, 1, memory_order_release);
	shmkit__futex_wake(&cr->seq, k == w ? (int)k : INT_MAX);
	return 0;
}

SHMKIT__API int shmkit_cond_notify_all(shmkit_cond *c)
{
	return shmkit_cond_notify(c, INT_MAX);
}

int shmkit__cond_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	if (!r || !info || !cond_region_ok(r))
		return -EBADMSG;
	shmkit__lk_info(r, r->lk, info);
	return 0;
}
