/*
 * The robust process-shared mutex behind every shmkit lock.
 *
 * PTHREAD_MUTEX_ROBUST is the one primitive the kernel itself releases when its holder dies
 * (through the robust futex list), so a SIGKILLed holder can never wedge the others. The next
 * acquirer gets EOWNERDEAD; it must call pthread_mutex_consistent() or the mutex becomes
 * unusable for everyone (ENOTRECOVERABLE), so it is done here, always, and the caller gets
 * SHMKIT_OWNER_DIED instead.
 */
#include "config.h"

#include <pthread.h>
#include <time.h>

#include "internal.h"

int shmkit__lk_init(struct shmkit__lk *lk, bool recursive)
{
	pthread_mutexattr_t a;
	int err;

	if ((err = pthread_mutexattr_init(&a)))
		return -err;
	err = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!err)
		err = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!err)
		err = pthread_mutexattr_settype(&a, recursive ? PTHREAD_MUTEX_RECURSIVE
							      : PTHREAD_MUTEX_ERRORCHECK);
	if (!err)
		err = pthread_mutex_init(&lk->m, &a);
	pthread_mutexattr_destroy(&a);
	atomic_store_explicit(&lk->holder, 0, memory_order_relaxed);
	lk->depth = 0;
	atomic_store_explicit(&lk->owner_deaths, 0, memory_order_relaxed);
	return -err;
}

/* `again`: the calling thread held lk before this acquisition (a recursive one). */
static int took(struct shmkit__lk *lk, int err, bool again)
{
	if (err == EOWNERDEAD) {
		pthread_mutex_consistent(&lk->m);
		atomic_fetch_add_explicit(&lk->owner_deaths, 1, memory_order_relaxed);
		lk->depth = 0; /* the dead holder's recursion died with it */
	} else if (err) {
		return err == EBUSY ? -EAGAIN : -err;
	}
	atomic_store_explicit(&lk->holder, shmkit__pid(), memory_order_relaxed);
	atomic_store_explicit(&lk->holder_tid, shmkit__tid_fast(), memory_order_relaxed);
	/* depth is shared memory: whatever a peer left there means nothing to a new holder. */
	if (!again)
		lk->depth = 0;
	lk->depth++;
	return err == EOWNERDEAD ? SHMKIT_OWNER_DIED : 0;
}

int shmkit__lk_acquire(struct shmkit__lk *lk, int64_t deadline)
{
	bool again = shmkit__lk_held(lk);
	struct timespec ts;
	int err;

	if (deadline == SHMKIT__FOREVER)
		return took(lk, pthread_mutex_lock(&lk->m), again);
	err = pthread_mutex_trylock(&lk->m);
	if (err != EBUSY || deadline <= shmkit__now())
		return took(lk, err, again);
	ts.tv_sec = deadline / 1000000000LL;
	ts.tv_nsec = deadline % 1000000000LL;
	return took(lk, pthread_mutex_clocklock(&lk->m, CLOCK_MONOTONIC, &ts), again);
}

int shmkit__lk_held(struct shmkit__lk *lk)
{
	/* The tid first: it is one load and settles almost every call. */
	return atomic_load_explicit(&lk->holder_tid, memory_order_relaxed) == shmkit__tid_fast() &&
	       atomic_load_explicit(&lk->holder, memory_order_relaxed) == shmkit__pid();
}

int shmkit__lk_release(struct shmkit__lk *lk)
{
	int err;

	/* holder and depth belong to the holder: check before touching them. */
	if (!shmkit__lk_held(lk))
		return -EPERM;
	if (lk->depth <= 1) {
		lk->depth = 0;
		atomic_store_explicit(&lk->holder_tid, 0, memory_order_relaxed);
		atomic_store_explicit(&lk->holder, 0, memory_order_relaxed);
	} else {
		lk->depth--;
	}
	err = pthread_mutex_unlock(&lk->m);
	return -err;
}
