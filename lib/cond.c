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
 * `waiters` lets notify skip the seq bump and the wake syscall when nobody waits. It changes
 * (before the waiter's release, after its reacquire) and is read (by notify, whose caller must
 * hold the lock) only under the lock, so the mutex orders it and no fence is needed. A waiter
 * killed while asleep leaves it one too high, which only costs later notifies a wake syscall.
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
	_Atomic uint32_t waiters;                         /* in wait; only touched under lk */
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
	atomic_store_explicit(&c->cr->waiters, 0, memory_order_relaxed);
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

/* 0 (notified, or woken spuriously), -ETIMEDOUT, or SHMKIT_OWNER_DIED: the reacquire took the
 * lock from a dead holder. That beats -ETIMEDOUT because the caller must learn the protected
 * data may be half-updated, and a timed-out wait may always be read as a spurious wake-up. */
static int cond_wait(struct shmkit_cond *c, int64_t deadline)
{
	struct cond_region *cr = c->cr;
	uint32_t seen;
	unsigned depth;
	int r, rc;

	if (!shmkit__lk_held(&c->r))
		return -EPERM;
	seen = atomic_load_explicit(&cr->seq, memory_order_relaxed);
	atomic_fetch_add_explicit(&cr->waiters, 1, memory_order_relaxed);
	depth = release_all(&c->r);
	if (!depth) {
		atomic_fetch_sub_explicit(&cr->waiters, 1, memory_order_relaxed);
		return -EPERM;
	}
	for (;;) {
		r = shmkit__futex_wait(&cr->seq, seen, deadline);
		/* Every notify changes seq: an unchanged one means a signal or a spurious return,
		 * so sleep again until the same deadline. */
		if (atomic_load_explicit(&cr->seq, memory_order_relaxed) != seen) {
			r = 0;
			break;
		}
		if (r < 0)
			break;
	}
	rc = reacquire(&c->r, depth);
	atomic_fetch_sub_explicit(&cr->waiters, 1, memory_order_relaxed);
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
	if (n == 0 || atomic_load_explicit(&cr->waiters, memory_order_relaxed) == 0)
		return 0;
	/* Change the word before waking: a waiter between its release and its futex_wait then
	 * finds seq changed and does not sleep (it counts as woken). */
	atomic_fetch_add_explicit(&cr->seq, 1, memory_order_relaxed);
	shmkit__futex_wake(&cr->seq, n);
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
