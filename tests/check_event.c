/*
 * Event across processes: set, clear and is_set by inherited handle and by name, the timeout,
 * a set waking one and several sleepers (also a set followed at once by a clear), and a waiter
 * SIGKILLed in its sleep.
 *
 * Children report through shared memory and their exit status, never ck_assert. Every wait in
 * a child has a timeout far beyond a correct run, so a lost wake-up shows up as -ETIMEDOUT (a
 * failure) instead of a hang; a child that still hangs is SIGKILLed by tu_wait_child() and
 * fails the test.
 */
#include "config.h"

#include "testutil.h"

#define CHILD_WAIT (20 * TU_NS_PER_S) /* a child's waits: far beyond any correct run */
#define REAP_S 60.0                   /* how long a child may take in all */
#define POLL_S 20.0                   /* how long the parent polls for a child to get somewhere */

struct ev_arg {
	shmkit_event *e;
	const char *name; /* open by name when set */
	_Atomic int *res;
};

static int ev_waiter(void *p)
{
	struct ev_arg *a = p;
	shmkit_event *e = a->e;
	int64_t t0;
	int r;

	if (a->name && (r = shmkit_event_open(a->name, &e)))
		return 10;
	t0 = tu_now_ns();
	r = shmkit_event_wait_timeout(e, CHILD_WAIT);
	/* Seeing the flag only once the time is up means the set's wake-up was lost. */
	if (r == 0 && tu_now_ns() - t0 >= CHILD_WAIT)
		r = -ETIMEDOUT;
	atomic_store(a->res, r);
	if (a->name)
		shmkit_event_close(e);
	return r == 0 ? 0 : 11;
}

START_TEST(test_event_basic)
{
	char name[TU_NAME_SIZE];
	shmkit_event *e, *e2;
	shmkit_cond *c;
	int named;

	for (named = 0; named < 2; named++) {
		ck_assert_int_eq(shmkit_event_create(named ? tu_name(name, "ev") : NULL, 0, &e), 0);
		ck_assert_int_eq(shmkit_event_is_set(e), 0);
		ck_assert_int_eq(shmkit_event_wait_timeout(e, 0), -ETIMEDOUT);
		ck_assert_int_eq(shmkit_event_wait_timeout(e, -1), -EINVAL);
		ck_assert_int_eq(shmkit_event_set(e), 0);
		ck_assert_int_eq(shmkit_event_is_set(e), 1);
		ck_assert_int_eq(shmkit_event_set(e), 0);
		ck_assert_int_eq(shmkit_event_is_set(e), 1);
		ck_assert_int_eq(shmkit_event_wait(e), 0);
		ck_assert_int_eq(shmkit_event_wait_timeout(e, 0), 0);
		ck_assert_int_eq(shmkit_event_wait_timeout(e, CHILD_WAIT), 0);
		if (named) {
			ck_assert_int_eq(shmkit_event_open(name, &e2), 0);
			ck_assert_int_eq(shmkit_event_is_set(e2), 1);
			ck_assert_int_eq(shmkit_event_clear(e2), 0);
			ck_assert_int_eq(shmkit_event_is_set(e), 0);
			ck_assert_int_eq(shmkit_event_close(e2), 0);
			ck_assert_int_eq(shmkit_cond_open(name, &c), -EPROTOTYPE);
			ck_assert_int_eq(shmkit_event_create(name, 0, &e2), -EEXIST);
		}
		ck_assert_int_eq(shmkit_event_clear(e), 0);
		ck_assert_int_eq(shmkit_event_is_set(e), 0);
		ck_assert_int_eq(shmkit_event_close(e), 0);
		if (named) {
			ck_assert_int_eq(shmkit_event_unlink(name), 0);
			ck_assert_int_eq(shmkit_event_open(name, &e), -ENOENT);
		}
	}
	ck_assert_int_eq(shmkit_event_close(NULL), 0);
	ck_assert_int_eq(shmkit_event_create("bad name", 0, &e), -EINVAL);
}
END_TEST

START_TEST(test_event_timeout)
{
	shmkit_event *e;
	int64_t t0, dt;

	ck_assert_int_eq(shmkit_event_create(NULL, 0, &e), 0);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_event_wait_timeout(e, 50 * TU_NS_PER_MS), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_msg(dt >= 50 * TU_NS_PER_MS, "timed out after %lld ns", (long long)dt);
	shmkit_event_close(e);
}
END_TEST

/* A child waiting, by an inherited handle and by name, is woken by the parent's set. */
START_TEST(test_event_wakes_child)
{
	char name[TU_NAME_SIZE];
	_Atomic int *res = tu_shared(sizeof(*res));
	struct ev_arg a;
	shmkit_event *e;
	int named;
	pid_t pid;

	for (named = 0; named < 2; named++) {
		ck_assert_int_eq(shmkit_event_create(named ? tu_name(name, "evc") : NULL, 0, &e),
				 0);
		atomic_store(res, 1);
		a = (struct ev_arg){ e, named ? name : NULL, res };
		pid = tu_fork(ev_waiter, &a);
		if (!tu_await_sleeping(pid, POLL_S)) {
			tu_kill_child(pid);
			ck_abort_msg("child never slept");
		}
		ck_assert_int_eq(atomic_load(res), 1); /* still waiting */
		ck_assert_int_eq(shmkit_event_set(e), 0);
		ck_assert_int_eq(tu_wait_child(pid, REAP_S), 0);
		ck_assert_int_eq(atomic_load(res), 0);
		shmkit_event_close(e);
		if (named)
			shmkit_event_unlink(name);
	}
}
END_TEST

#define EV_MANY 5

/* Several sleepers are all woken by one set; a set followed at once by a clear still wakes
 * the ones asleep (they were waiting while it was set). */
START_TEST(test_event_many_waiters)
{
	_Atomic int *res = tu_shared(EV_MANY * sizeof(*res));
	struct ev_arg a[EV_MANY];
	pid_t pid[EV_MANY];
	shmkit_event *e;
	int round, i;

	ck_assert_int_eq(shmkit_event_create(NULL, 0, &e), 0);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < EV_MANY; i++) {
			atomic_store(&res[i], 1);
			a[i] = (struct ev_arg){ e, NULL, &res[i] };
			pid[i] = tu_fork(ev_waiter, &a[i]);
		}
		for (i = 0; i < EV_MANY; i++)
			ck_assert_msg(tu_await_sleeping(pid[i], POLL_S), "child %d never slept", i);
		ck_assert_int_eq(shmkit_event_set(e), 0);
		if (round == 1) /* the pulse */
			ck_assert_int_eq(shmkit_event_clear(e), 0);
		for (i = 0; i < EV_MANY; i++) {
			ck_assert_int_eq(tu_wait_child(pid[i], REAP_S), 0);
			ck_assert_int_eq(atomic_load(&res[i]), 0);
		}
		shmkit_event_clear(e);
	}
	shmkit_event_close(e);
}
END_TEST

/* A waiter SIGKILLed in its sleep neither blocks set nor keeps a live waiter asleep. */
START_TEST(test_event_killed_waiter)
{
	char name[TU_NAME_SIZE];
	_Atomic int *res = tu_shared(2 * sizeof(*res));
	struct ev_arg a[2];
	shmkit_event *e;
	pid_t victim, live;
	int i;

	ck_assert_int_eq(shmkit_event_create(tu_name(name, "evk"), 0, &e), 0);
	for (i = 0; i < 10; i++) {
		atomic_store(&res[0], 1);
		atomic_store(&res[1], 1);
		a[0] = (struct ev_arg){ e, (i & 1) ? name : NULL, &res[0] };
		a[1] = (struct ev_arg){ e, (i & 1) ? NULL : name, &res[1] };
		victim = tu_fork(ev_waiter, &a[0]);
		live = tu_fork(ev_waiter, &a[1]);
		ck_assert(tu_await_sleeping(victim, POLL_S));
		ck_assert(tu_await_sleeping(live, POLL_S));
		tu_kill_child(victim);
		ck_assert_int_eq(shmkit_event_set(e), 0);
		ck_assert_int_eq(tu_wait_child(live, REAP_S), 0);
		ck_assert_int_eq(atomic_load(&res[1]), 0);
		ck_assert_int_eq(atomic_load(&res[0]), 1); /* the victim never returned */
		ck_assert_int_eq(shmkit_event_clear(e), 0);
	}
	shmkit_event_close(e);
	shmkit_event_unlink(name);
}
END_TEST

static Suite *event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc;

	tc = tu_tcase(s, "event", 120);
	tcase_add_test(tc, test_event_basic);
	tcase_add_test(tc, test_event_timeout);
	tcase_add_test(tc, test_event_wakes_child);
	tcase_add_test(tc, test_event_many_waiters);
	tcase_add_test(tc, test_event_killed_waiter);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(event_suite());
}
