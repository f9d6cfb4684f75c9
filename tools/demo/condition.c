/*
 * `shmkit demo condition`: the lessons' Condition. Two consumer processes wait on one Condition;
 * the producer makes resources and calls notify_all(), and both wake at once. Then notify(1):
 * one resource, one consumer wakes and takes it, the other sleeps on until the next.
 *
 * A Condition carries no state of its own, so the resources are counted in a Value read and
 * written only under the Condition's lock, and each consumer waits in the usual loop ("while
 * there is nothing for me, wait"): a wake-up meant for the other consumer is harmless.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "demo/demo.h"
#include "util.h"

#define SEC 1000000000LL

struct shop {
	shmkit_cond *cond;
	shmkit_value *resources; /* made and not yet consumed */
	shmkit_value *waiting;   /* consumers inside wait() */
	shmkit_value *consumed;
};

static int consumer(void *arg, int id)
{
	struct shop *s = arg;
	shmkit_lock *l = shmkit_cond_lock(s->cond);
	int rc = 0;

	demo_say("  consumer %d: started\n", id);
	if (shmkit_lock_acquire_timeout(l, 10 * SEC) < 0)
		return 1;
	demo_say("  consumer %d: waiting\n", id);
	shmkit_value_add(s->waiting, 1, SHMKIT_ADD_ATOMIC, NULL);
	while (shmkit_value_load(s->resources) == 0 && rc >= 0)
		rc = shmkit_cond_wait_timeout(s->cond, 30 * SEC);
	shmkit_value_add(s->waiting, -1, SHMKIT_ADD_ATOMIC, NULL);
	if (rc >= 0) {
		shmkit_value_add(s->resources, -1, SHMKIT_ADD_ATOMIC, NULL);
		shmkit_value_add(s->consumed, 1, SHMKIT_ADD_ATOMIC, NULL);
		demo_say("  consumer %d: consumed the resource\n", id);
	}
	shmkit_lock_release(l);
	return rc < 0;
}

/* Under the lock, wait until n consumers are inside wait(): a notify reaches only those. */
static int until_waiting(struct shop *s, int n)
{
	shmkit_lock *l = shmkit_cond_lock(s->cond);
	int i;

	for (i = 0; i < 1000; i++) {
		if (shmkit_lock_acquire_timeout(l, 10 * SEC) < 0)
			return -1;
		if (shmkit_value_load(s->waiting) == n)
			return 0; /* with the lock held */
		shmkit_lock_release(l);
		demo_sleep_ms(10);
	}
	return -1;
}

/* Make `n` resources and notify `wake` consumers (0: all); the caller holds the lock. */
static void produce(struct shop *s, int n, int wake)
{
	shmkit_value_add(s->resources, n, SHMKIT_ADD_ATOMIC, NULL);
	if (wake)
		shmkit_cond_notify(s->cond, wake);
	else
		shmkit_cond_notify_all(s->cond);
	shmkit_lock_release(shmkit_cond_lock(s->cond));
}

int demo_condition(bool quick)
{
	struct shop s = { 0 };
	shmkit_lock *l;
	pid_t pids[2];
	int rc, i, failed = 0;
	int64_t after_one;

	(void)quick;
	printf("== Condition: notify_all() wakes both waiting consumers; notify(1) wakes one ==\n");
	if ((rc = shmkit_cond_create(NULL, 0, &s.cond)) ||
	    (rc = shmkit_value_create(NULL, 0, 0, &s.resources)) ||
	    (rc = shmkit_value_create(NULL, 0, 0, &s.waiting)) ||
	    (rc = shmkit_value_create(NULL, 0, 0, &s.consumed))) {
		failed = runtime_error("demo: create", rc);
		goto out;
	}
	l = shmkit_cond_lock(s.cond);

	pids[0] = demo_fork(consumer, &s, 1);
	demo_sleep_ms(50); /* consumer 1 first, as in the lesson's output */
	pids[1] = demo_fork(consumer, &s, 2);
	if (until_waiting(&s, 2)) {
		failed = 1;
		goto reap;
	}
	demo_say("  producer: started\n");
	demo_say("  producer: produced resources, notifying all consumers (notify_all)\n");
	produce(&s, 2, 0);
	failed = demo_reap(pids, 2);

	printf("Now notify(1): the producer makes one resource and wakes one consumer.\n");
	shmkit_value_store(s.consumed, 0);
	pids[0] = demo_fork(consumer, &s, 1);
	demo_sleep_ms(50);
	pids[1] = demo_fork(consumer, &s, 2);
	if (failed || until_waiting(&s, 2)) {
		failed = 1;
		goto reap;
	}
	demo_say("  producer: produced one resource, notify(1)\n");
	produce(&s, 1, 1);
	/* Wait for the one woken consumer to take it, and a moment more: nobody else wakes. */
	for (i = 0; i < 1000 && shmkit_value_load(s.consumed) == 0; i++)
		demo_sleep_ms(10);
	demo_sleep_ms(200);
	if (shmkit_lock_acquire_timeout(l, 10 * SEC) < 0) {
		failed = 1;
		goto reap;
	}
	after_one = shmkit_value_load(s.consumed);
	demo_say("  producer: %lld consumed, %lld still waiting; one more resource, notify(1)\n",
		 (long long)after_one, (long long)shmkit_value_load(s.waiting));
	produce(&s, 1, 1);
reap:
	if (failed) {
		/* Release anyone still waiting, then collect them. */
		if (shmkit_lock_acquire_timeout(l, 10 * SEC) >= 0)
			produce(&s, 2, 0);
	}
	failed += demo_reap(pids, 2);
	if (!failed)
		printf("  notify_all() wakes every waiter; notify(n) wakes up to n. A woken consumer\n"
		       "  takes the lock back before wait() returns, so they consume one at a time.\n");
out:
	shmkit_cond_close(s.cond);
	shmkit_value_close(s.resources);
	shmkit_value_close(s.waiting);
	shmkit_value_close(s.consumed);
	if (failed) {
		fprintf(stderr, "shmkit: demo: the condition lesson went wrong\n");
		return 1;
	}
	return 0;
}
