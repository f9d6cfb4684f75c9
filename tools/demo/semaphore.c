/*
 * `shmkit demo semaphore`: the lessons' Semaphore(3) around a pool of ten workers. Each worker
 * enters, stays a moment, leaves; a shared pool (an Array under its own Lock, as the lesson's
 * ThreadPool kept a list under a Lock) records who is inside, and the highest concurrency seen
 * is kept. Then the same ten workers under a Lock, and with no guard at all.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "demo/demo.h"
#include "util.h"

#define WORKERS 10
#define SEC 1000000000LL

enum guard { GUARD_SEM3, GUARD_LOCK, GUARD_NONE };

struct pool {
	enum guard guard;
	bool verbose;   /* print each acquire and release, as the lesson does */
	int hold_ms;    /* time inside */
	shmkit_sem *sem;
	shmkit_lock *lock;
	shmkit_array *members; /* 1 for each worker inside */
	shmkit_value *highest; /* highest concurrency seen */
	shmkit_barrier *start; /* all ten start together */
};

/* Enter or leave the pool, under the pool's Lock; returns how many are inside afterwards. */
static int pool_update(struct pool *p, int id, int64_t in)
{
	shmkit_lock *l = shmkit_array_lock(p->members);
	char list[64] = "";
	int64_t x;
	int i, inside = 0;

	if (shmkit_lock_acquire_timeout(l, 10 * SEC) < 0)
		return -1;
	shmkit_array_store(p->members, (size_t)id, in);
	for (i = 0; i < WORKERS; i++) {
		shmkit_array_load(p->members, (size_t)i, &x);
		if (!x)
			continue;
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d",
			 inside ? ", " : "", i);
		inside++;
	}
	if (in && inside > shmkit_value_load(p->highest))
		shmkit_value_store(p->highest, inside);
	if (p->verbose)
		demo_say("    %s worker %d | pool: [%s]\n", in ? "acquired:" : "released:", id, list);
	shmkit_lock_release(l);
	return inside;
}

static int worker(void *arg, int id)
{
	struct pool *p = arg;
	int rc = 0;

	if (shmkit_barrier_wait_timeout(p->start, 10 * SEC) < 0)
		return 1;
	if (p->guard == GUARD_SEM3)
		rc = shmkit_sem_acquire_timeout(p->sem, 30 * SEC);
	else if (p->guard == GUARD_LOCK)
		rc = shmkit_lock_acquire_timeout(p->lock, 30 * SEC);
	if (rc < 0)
		return 1;
	if (pool_update(p, id, 1) < 0)
		rc = -1;
	demo_sleep_ms(p->hold_ms);
	if (pool_update(p, id, 0) < 0)
		rc = -1;
	if (p->guard == GUARD_SEM3)
		shmkit_sem_release(p->sem);
	else if (p->guard == GUARD_LOCK)
		shmkit_lock_release(p->lock);
	return rc < 0;
}

static int run_pool(struct pool *p, enum guard g, bool verbose, int hold_ms, int64_t *highest)
{
	pid_t pids[WORKERS];
	int i, failed;

	p->guard = g;
	p->verbose = verbose;
	p->hold_ms = hold_ms;
	shmkit_value_store(p->highest, 0);
	for (i = 0; i < WORKERS; i++)
		pids[i] = demo_fork(worker, p, i);
	failed = demo_reap(pids, WORKERS);
	*highest = shmkit_value_load(p->highest);
	return failed;
}

int demo_semaphore(bool quick)
{
	struct pool p;
	int64_t sem3 = 0, lock = 0, none = 0;
	int rc, failed;

	memset(&p, 0, sizeof(p));
	printf("== Semaphore(3): ten worker processes, at most three inside at once ==\n");
	if ((rc = shmkit_sem_create(NULL, 3, 0, 0, &p.sem)) ||
	    (rc = shmkit_lock_create(NULL, 0, 0, &p.lock)) ||
	    (rc = shmkit_array_create(NULL, WORKERS, 0, &p.members)) ||
	    (rc = shmkit_value_create(NULL, 0, 0, &p.highest)) ||
	    (rc = shmkit_barrier_create(NULL, WORKERS, 0, &p.start))) {
		failed = runtime_error("demo: create", rc);
		goto out;
	}
	failed = run_pool(&p, GUARD_SEM3, !quick, quick ? 50 : 100, &sem3);
	if (!failed)
		failed = run_pool(&p, GUARD_LOCK, false, quick ? 10 : 20, &lock);
	if (!failed)
		failed = run_pool(&p, GUARD_NONE, false, quick ? 200 : 300, &none);
	if (failed) {
		fprintf(stderr, "shmkit: demo: the semaphore lesson went wrong\n");
		failed = 1;
		goto out;
	}
	printf("  Highest concurrency observed: Semaphore(3) %lld, Lock %lld, no guard %lld\n",
	       (long long)sem3, (long long)lock, (long long)none);
	printf("  A Semaphore's value is how many may be inside at once: it starts at 3, each\n"
	       "  acquire takes one and blocks at 0, each release gives one back. A Lock (a mutex)\n"
	       "  is the Semaphore(1) case; with no guard all ten crowd in.\n");
out:
	shmkit_sem_close(p.sem);
	shmkit_lock_close(p.lock);
	shmkit_array_close(p.members);
	shmkit_value_close(p.highest);
	shmkit_barrier_close(p.start);
	return failed;
}
