/*
 * Barrier across processes: parties and arguments, generations (every index once a round,
 * nobody released before all arrived), the timeout that breaks it, a party SIGKILLed before or
 * after the others arrived, abort, and reset (cancelling the waiters, usable again after).
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

START_TEST(test_barrier_basic)
{
	char name[TU_NAME_SIZE];
	shmkit_barrier *b, *b2;
	shmkit_event *e;
	int i;

	ck_assert_int_eq(shmkit_barrier_create(NULL, 0, 0, &b), -EINVAL);
	ck_assert_int_eq(shmkit_barrier_create(NULL, 1025, 0, &b), -EINVAL);
	ck_assert_int_eq(shmkit_barrier_create(NULL, 1024, 0, &b), 0);
	ck_assert_int_eq(shmkit_barrier_parties(b), 1024);
	shmkit_barrier_close(b);

	ck_assert_int_eq(shmkit_barrier_create(tu_name(name, "bb"), 1, 0, &b), 0);
	ck_assert_int_eq(shmkit_barrier_create(name, 1, 0, &b2), -EEXIST);
	ck_assert_int_eq(shmkit_event_open(name, &e), -EPROTOTYPE);
	ck_assert_int_eq(shmkit_barrier_open(name, &b2), 0);
	ck_assert_int_eq(shmkit_barrier_parties(b2), 1);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(shmkit_barrier_wait(b), 0);
		ck_assert_int_eq(shmkit_barrier_wait_timeout(b2, 0), 0);
	}
	ck_assert_int_eq(shmkit_barrier_wait_timeout(b, -1), -EINVAL);
	ck_assert_int_eq(shmkit_barrier_n_waiting(b), 0);
	ck_assert_int_eq(shmkit_barrier_broken(b), 0);
	ck_assert_int_eq(shmkit_barrier_abort(b2), 0);
	ck_assert_int_eq(shmkit_barrier_broken(b), 1);
	ck_assert_int_eq(shmkit_barrier_wait(b), -ECANCELED);
	ck_assert_int_eq(shmkit_barrier_reset(b), 0);
	ck_assert_int_eq(shmkit_barrier_broken(b2), 0);
	ck_assert_int_eq(shmkit_barrier_wait(b2), 0);
	ck_assert_int_eq(shmkit_barrier_close(b2), 0);
	ck_assert_int_eq(shmkit_barrier_close(b), 0);
	ck_assert_int_eq(shmkit_barrier_unlink(name), 0);
	ck_assert_int_eq(shmkit_barrier_close(NULL), 0);
}
END_TEST

#define BR_PARTIES 4
#define BR_ROUNDS 100

struct rounds {
	_Atomic int arrived[BR_ROUNDS];
	_Atomic int index[BR_ROUNDS][BR_PARTIES];
	_Atomic int early[BR_PARTIES]; /* released before everyone had arrived */
};

struct br_arg {
	shmkit_barrier *b;
	const char *name; /* open by name when set */
	struct rounds *rd;
	int id;
	_Atomic int *res;
};

static int rounds_child(void *p)
{
	struct br_arg *a = p;
	shmkit_barrier *b = a->b;
	int round, r;

	if (a->name && shmkit_barrier_open(a->name, &b))
		return 10;
	for (round = 0; round < BR_ROUNDS; round++) {
		atomic_fetch_add(&a->rd->arrived[round], 1);
		r = shmkit_barrier_wait_timeout(b, CHILD_WAIT);
		atomic_store(&a->rd->index[round][a->id], r);
		if (atomic_load(&a->rd->arrived[round]) != BR_PARTIES)
			atomic_fetch_add(&a->rd->early[a->id], 1);
		if (r < 0)
			return 11;
	}
	if (a->name)
		shmkit_barrier_close(b);
	return 0;
}

/* BR_PARTIES processes x BR_ROUNDS rounds: each round, every index once, nobody released
 * before all arrived. */
START_TEST(test_barrier_rounds)
{
	char name[TU_NAME_SIZE];
	struct rounds *rd = tu_shared(sizeof(*rd));
	struct br_arg a[BR_PARTIES];
	pid_t pid[BR_PARTIES];
	shmkit_barrier *b;
	int i, round;

	ck_assert_int_eq(shmkit_barrier_create(tu_name(name, "br"), BR_PARTIES, 0, &b), 0);
	for (i = 0; i < BR_PARTIES; i++) {
		a[i] = (struct br_arg){ b, (i & 1) ? name : NULL, rd, i, NULL };
		pid[i] = tu_fork(rounds_child, &a[i]);
	}
	for (i = 0; i < BR_PARTIES; i++)
		ck_assert_int_eq(tu_wait_child(pid[i], REAP_S), 0);
	for (round = 0; round < BR_ROUNDS; round++) {
		unsigned seen = 0;

		for (i = 0; i < BR_PARTIES; i++) {
			int idx = atomic_load(&rd->index[round][i]);

			ck_assert_msg(idx >= 0 && idx < BR_PARTIES, "round %d: %d", round, idx);
			seen |= 1u << idx;
		}
		ck_assert_msg(seen == (1u << BR_PARTIES) - 1, "round %d: indices %#x", round, seen);
	}
	for (i = 0; i < BR_PARTIES; i++)
		ck_assert_int_eq(atomic_load(&rd->early[i]), 0);
	ck_assert_int_eq(shmkit_barrier_broken(b), 0);
	ck_assert_int_eq(shmkit_barrier_n_waiting(b), 0);
	shmkit_barrier_close(b);
	shmkit_barrier_unlink(name);
}
END_TEST

static int br_waiter(void *p)
{
	struct br_arg *a = p;
	shmkit_barrier *b = a->b;
	int r;

	if (a->name && shmkit_barrier_open(a->name, &b))
		return 10;
	r = shmkit_barrier_wait_timeout(b, CHILD_WAIT);
	atomic_store(a->res, r);
	if (a->name)
		shmkit_barrier_close(b);
	return 0;
}

struct n_waiting {
	shmkit_barrier *b;
	int n;
};

static bool n_waiting_is(void *arg)
{
	struct n_waiting *w = arg;

	return shmkit_barrier_n_waiting(w->b) == w->n;
}

/* Wait until n parties are waiting on b. */
static bool await_waiting(shmkit_barrier *b, int n)
{
	struct n_waiting w = { b, n };

	return tu_await(n_waiting_is, &w, POLL_S);
}

#define NOT_YET 12345

/* The party that times out gets -ETIMEDOUT and breaks the barrier: the others get
 * -ECANCELED, and so does every wait until reset. */
START_TEST(test_barrier_timeout)
{
	_Atomic int *res = tu_shared(2 * sizeof(*res));
	struct br_arg a[2];
	shmkit_barrier *b;
	pid_t pid[2];
	int64_t t0;
	int i;

	ck_assert_int_eq(shmkit_barrier_create(NULL, 4, 0, &b), 0);
	for (i = 0; i < 2; i++) {
		atomic_store(&res[i], NOT_YET);
		a[i] = (struct br_arg){ b, NULL, NULL, i, &res[i] };
		pid[i] = tu_fork(br_waiter, &a[i]);
	}
	ck_assert(await_waiting(b, 2));
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_barrier_wait_timeout(b, 100 * TU_NS_PER_MS), -ETIMEDOUT);
	ck_assert(tu_now_ns() - t0 >= 100 * TU_NS_PER_MS);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(tu_wait_child(pid[i], REAP_S), 0);
		ck_assert_int_eq(atomic_load(&res[i]), -ECANCELED);
	}
	ck_assert_int_eq(shmkit_barrier_broken(b), 1);
	ck_assert_int_eq(shmkit_barrier_n_waiting(b), 0);
	ck_assert_int_eq(shmkit_barrier_wait_timeout(b, CHILD_WAIT), -ECANCELED);
	ck_assert_int_eq(shmkit_barrier_wait(b), -ECANCELED);
	shmkit_barrier_close(b);
}
END_TEST

/* A party SIGKILLed while waiting breaks the barrier for the others (they would otherwise
 * wait until CHILD_WAIT and get -ETIMEDOUT), whether it died before or after they arrived. */
START_TEST(test_barrier_killed_party)
{
	char name[TU_NAME_SIZE];
	_Atomic int *res = tu_shared(3 * sizeof(*res));
	struct br_arg a[3];
	shmkit_barrier *b;
	pid_t pid[3];
	int round, i;

	ck_assert_int_eq(shmkit_barrier_create(tu_name(name, "bk"), 4, 0, &b), 0);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 3; i++) {
			atomic_store(&res[i], NOT_YET);
			a[i] = (struct br_arg){ b, (i & 1) ? name : NULL, NULL, i, &res[i] };
		}
		/* Party 0 is the victim: round 0 kills it after the others arrived, round 1
		 * before they arrive. */
		pid[0] = tu_fork(br_waiter, &a[0]);
		ck_assert(await_waiting(b, 1));
		if (round == 1)
			tu_kill_child(pid[0]);
		pid[1] = tu_fork(br_waiter, &a[1]);
		pid[2] = tu_fork(br_waiter, &a[2]);
		if (round == 0) {
			ck_assert(await_waiting(b, 3));
			tu_kill_child(pid[0]);
		}
		for (i = 1; i < 3; i++) {
			ck_assert_int_eq(tu_wait_child(pid[i], REAP_S), 0);
			ck_assert_int_eq(atomic_load(&res[i]), -ECANCELED);
		}
		ck_assert_int_eq(atomic_load(&res[0]), NOT_YET);
		ck_assert_int_eq(shmkit_barrier_broken(b), 1);
		ck_assert_int_eq(shmkit_barrier_reset(b), 0);
		ck_assert_int_eq(shmkit_barrier_broken(b), 0);
		ck_assert_int_eq(shmkit_barrier_n_waiting(b), 0);
	}
	shmkit_barrier_close(b);
	shmkit_barrier_unlink(name);
}
END_TEST

/* reset cancels the parties waiting and leaves a barrier that works again. */
START_TEST(test_barrier_reset)
{
	_Atomic int *res = tu_shared(3 * sizeof(*res));
	struct br_arg a[3];
	shmkit_barrier *b;
	pid_t pid[3];
	int i, r;
	unsigned seen;

	ck_assert_int_eq(shmkit_barrier_create(NULL, 3, 0, &b), 0);
	ck_assert_int_eq(shmkit_barrier_reset(b), 0); /* nobody waiting: harmless */
	for (i = 0; i < 2; i++) {
		atomic_store(&res[i], NOT_YET);
		a[i] = (struct br_arg){ b, NULL, NULL, i, &res[i] };
		pid[i] = tu_fork(br_waiter, &a[i]);
	}
	ck_assert(await_waiting(b, 2));
	ck_assert_int_eq(shmkit_barrier_reset(b), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(tu_wait_child(pid[i], REAP_S), 0);
		ck_assert_int_eq(atomic_load(&res[i]), -ECANCELED);
	}
	ck_assert_int_eq(shmkit_barrier_broken(b), 0);
	ck_assert_int_eq(shmkit_barrier_n_waiting(b), 0);

	/* Usable again: a full generation, then one after abort + reset. */
	for (int round = 0; round < 2; round++) {
		for (i = 0; i < 2; i++) {
			atomic_store(&res[i], NOT_YET);
			a[i] = (struct br_arg){ b, NULL, NULL, i, &res[i] };
			pid[i] = tu_fork(br_waiter, &a[i]);
		}
		r = shmkit_barrier_wait_timeout(b, CHILD_WAIT);
		ck_assert_msg(r >= 0 && r < 3, "wait: %d", r);
		seen = 1u << r;
		for (i = 0; i < 2; i++) {
			ck_assert_int_eq(tu_wait_child(pid[i], REAP_S), 0);
			r = atomic_load(&res[i]);
			ck_assert_msg(r >= 0 && r < 3, "child %d: %d", i, r);
			seen |= 1u << r;
		}
		ck_assert_uint_eq(seen, 7);
		ck_assert_int_eq(shmkit_barrier_abort(b), 0);
		ck_assert_int_eq(shmkit_barrier_wait_timeout(b, CHILD_WAIT), -ECANCELED);
		ck_assert_int_eq(shmkit_barrier_reset(b), 0);
	}
	shmkit_barrier_close(b);
}
END_TEST

static Suite *barrier_suite(void)
{
	Suite *s = suite_create("barrier");
	TCase *tc;

	tc = tu_tcase(s, "barrier", 120);
	tcase_add_test(tc, test_barrier_basic);
	tcase_add_test(tc, test_barrier_rounds);
	tcase_add_test(tc, test_barrier_timeout);
	tcase_add_test(tc, test_barrier_killed_party);
	tcase_add_test(tc, test_barrier_reset);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(barrier_suite());
}
