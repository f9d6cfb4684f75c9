/*
 * `shmkit demo deadlock`: the lessons' deadlock by lock ordering. Process 1 takes lock1 then
 * lock2, process 2 takes lock2 then lock1: each ends up holding one lock and waiting for the
 * other. Here the waits are bounded, so the scene never really hangs: process 2 either hears
 * from the library that its wait would close a cycle (-EDEADLK) or gives up after a second,
 * backs off, and retries. Then the fix: both take the locks in one global order.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "demo/demo.h"
#include "util.h"

#define SEC 1000000000LL

struct scene {
	shmkit_lock *lock[2];
	shmkit_barrier *step; /* two parties: lines come out in the lesson's order */
	int64_t patience_ns;  /* how long process 2 waits before calling it a deadlock */
	int rounds;
};

static const char *lock_name(int i)
{
	return i ? "lock2" : "lock1";
}

/* Take a lock for the scene; a long timeout only so that a bug ends the demo, not the user's
 * afternoon. */
static int take(struct scene *s, int which, int id)
{
	int rc = shmkit_lock_acquire_timeout(s->lock[which], 10 * SEC);

	if (rc < 0)
		fprintf(stderr, "shmkit: demo: process %d could not take %s: %s\n", id,
			lock_name(which), shmkit_strerror(rc));
	return rc < 0 ? rc : 0;
}

/* Process `id` (1 or 2) takes its first lock, then wants the other. */
static int opposite(void *arg, int id)
{
	struct scene *s = arg;
	int first = id - 1, second = 2 - id, rc, attempt;

	if (id == 2 && shmkit_barrier_wait_timeout(s->step, 10 * SEC) < 0)
		return 1;
	if (take(s, first, id))
		return 1;
	demo_say("  Process %d has acquired %s\n", id, lock_name(first));
	if (id == 1 && shmkit_barrier_wait_timeout(s->step, 10 * SEC) < 0)
		return 1;
	/* Both hold their first lock now. */
	if (shmkit_barrier_wait_timeout(s->step, 10 * SEC) < 0)
		return 1;
	if (id == 2)
		demo_sleep_ms(300); /* so that process 1 is already waiting, as in the lesson */
	demo_say("  Process %d waits for %s ...\n", id, lock_name(second));
	for (attempt = 0;; attempt++) {
		int64_t patience = id == 1 ? 10 * SEC : s->patience_ns;

		rc = shmkit_lock_acquire_timeout(s->lock[second], patience);
		if ((rc != -EDEADLK && rc != -ETIMEDOUT) || attempt == 5)
			break;
		if (rc == -EDEADLK)
			demo_say("  Process %d: deadlock detected: %s is held by process %d, which "
				 "waits for %s, held by me\n", id, lock_name(second),
				 (int)shmkit_lock_holder(s->lock[second]), lock_name(first));
		else
			demo_say("  Process %d: no progress in %.0f s: deadlock, each of us holds "
				 "the lock the other waits for\n", id, patience / 1e9);
		/* Back off: give the other process time to take what it waits for, then retry. */
		demo_say("  Process %d backs off: releases %s, waits a moment, tries again\n", id,
			 lock_name(first));
		shmkit_lock_release(s->lock[first]);
		demo_sleep_ms(200);
		if (take(s, first, id))
			return 1;
	}
	if (rc < 0) {
		fprintf(stderr, "shmkit: demo: process %d could not take %s: %s\n", id,
			lock_name(second), shmkit_strerror(rc));
		shmkit_lock_release(s->lock[first]);
		return 1;
	}
	demo_say("  Process %d has acquired %s; done\n", id, lock_name(second));
	shmkit_lock_release(s->lock[second]);
	shmkit_lock_release(s->lock[first]);
	return 0;
}

/* The fix: every process takes lock1 before lock2. */
static int ordered(void *arg, int id)
{
	struct scene *s = arg;
	int r;

	for (r = 0; r < s->rounds; r++) {
		if (take(s, 0, id) || take(s, 1, id))
			return 1;
		demo_say("  Process %d has acquired lock1, then lock2 (round %d)\n", id, r + 1);
		demo_sleep_ms(20);
		shmkit_lock_release(s->lock[1]);
		shmkit_lock_release(s->lock[0]);
	}
	return 0;
}

int demo_deadlock(bool quick)
{
	struct scene s = { .patience_ns = SEC, .rounds = quick ? 2 : 3 };
	pid_t pids[2];
	int i, rc, failed;

	printf("== Deadlock: two processes take two locks in opposite order ==\n");
	for (i = 0; i < 2; i++)
		if ((rc = shmkit_lock_create(NULL, 0, 0, &s.lock[i])))
			return runtime_error("demo: create lock", rc);
	if ((rc = shmkit_barrier_create(NULL, 2, 0, &s.step)))
		return runtime_error("demo: create barrier", rc);
	printf("Process 1 takes lock1 then lock2; process 2 takes lock2 then lock1.\n");
	pids[0] = demo_fork(opposite, &s, 1);
	pids[1] = demo_fork(opposite, &s, 2);
	failed = demo_reap(pids, 2);
	printf("Each held one lock and waited for the other's: mutual exclusion, hold and wait,\n"
	       "no preemption and a circular wait, all four conditions of a deadlock. With Python's\n"
	       "Lock (or pthreads, or Boost) neither would ever finish. shmkit's acquire saw that\n"
	       "sleeping would close the cycle and said so (-EDEADLK) instead: one gave up its\n"
	       "lock and the other went on. (shmkit stat on a lock names its holder and what that\n"
	       "holder waits for.)\n"
	       "\nThe fix: one global order. Both processes take lock1 first, then lock2.\n");
	if (!failed) {
		pids[0] = demo_fork(ordered, &s, 1);
		pids[1] = demo_fork(ordered, &s, 2);
		failed = demo_reap(pids, 2);
		printf("No cycle can form: whoever holds lock1 never waits for a process that needs "
		       "lock1.\n");
	}
	for (i = 0; i < 2; i++)
		shmkit_lock_close(s.lock[i]);
	shmkit_barrier_close(s.step);
	if (failed) {
		fprintf(stderr, "shmkit: demo: the deadlock lesson went wrong\n");
		return 1;
	}
	return 0;
}
