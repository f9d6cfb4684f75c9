/*
 * Property tests of the eventcount (lib/ec.c): its invariant, wake-ups owed never exceed armed
 * waiters (P <= W), holds after every operation of random sequences checked against a model,
 * and at every sample while threads arm, sleep, absorb, leave and wake concurrently; and no
 * wake-up is lost (a waiter that armed before its last look is woken by a waker that published
 * after it). Built from the library's sources, so ec.h's internals are at hand.
 */
#include "config.h"

#include <pthread.h>

#include "ec.h"
#include "testutil.h"

static uint64_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

/* Random single-threaded sequences against a model of how many waiters are armed. */
START_TEST(test_invariant_sequential)
{
	_Atomic uint32_t word = 0;
	uint64_t seed = 0x9e3779b97f4a7c15ULL + (uint64_t)_i;
	uint32_t armed = 0, back = 0, v; /* back: armed waiters that came back from the kernel */
	int step;

	for (step = 0; step < 200000; step++) {
		switch (rnd(&seed) % 6) {
		case 0: /* a waiter arms */
			shmkit__ec_arm(&word);
			armed++;
			break;
		case 1: /* an armed waiter comes back from the kernel and takes a wake-up in */
			if (armed > back) {
				shmkit__ec_absorb(&word);
				back++;
			}
			break;
		case 2: /* an armed waiter leaves, absorbing if it came back */
			if (armed) {
				bool was_back = back && rnd(&seed) % 2;

				shmkit__ec_leave(&word, was_back);
				armed--;
				back -= was_back;
				if (back > armed)
					back = armed;
			}
			break;
		case 3: /* a waker hands out up to k */
			shmkit__ec_wake_n(&word, (uint32_t)(rnd(&seed) % 4));
			break;
		case 4: /* wake all (close) */
			if (rnd(&seed) % 8 == 0)
				shmkit__ec_wake_n(&word, EC_FIELD);
			break;
		default: /* a dead waiter taken out by a reaper */
			if (armed && rnd(&seed) % 4 == 0) {
				shmkit__ec_leave(&word, false);
				armed--;
				if (back > armed)
					back = armed;
			}
		}
		v = atomic_load(&word);
		ck_assert_msg(shmkit__ec_p(v) <= shmkit__ec_w(v), "step %d: P %u > W %u", step,
			      shmkit__ec_p(v), shmkit__ec_w(v));
		ck_assert_uint_eq(shmkit__ec_w(v), armed);
		ck_assert(!(v & EC_FD)); /* the eventcount never sets the owner's flag */
	}
}
END_TEST

START_TEST(test_flag_carried)
{
	_Atomic uint32_t word = EC_FD;

	shmkit__ec_arm(&word);
	shmkit__ec_wake_n(&word, 1);
	shmkit__ec_absorb(&word);
	shmkit__ec_leave(&word, true);
	ck_assert_uint_eq(atomic_load(&word), EC_FD);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Threads.                                                                                   */

#define WAITERS 6
#define ROUNDS 3000

struct conc {
	_Atomic uint32_t word;
	_Atomic uint32_t events; /* what waiters wait for: a count they consume */
	_Atomic uint32_t never; /* the wake-all condition: never here */
	_Atomic int violations, waiters_done;
};

static void *waiter(void *arg)
{
	struct conc *c = arg;
	uint32_t seen, e;
	int r;

	for (r = 0; r < ROUNDS; r++) {
		bool got = false, absorb = false;

		seen = shmkit__ec_arm(&c->word);
		for (;;) {
			/* E2 */
			shmkit__heavy_fence();
			e = atomic_load(&c->events);
			while (e && !(got = atomic_compare_exchange_weak(&c->events, &e, e - 1)))
				;
			if (got)
				break;
			shmkit__futex_wait(&c->word, seen, shmkit__now() + 200 * 1000000LL);
			absorb = true;
			seen = shmkit__ec_absorb(&c->word);
			absorb = false;
		}
		shmkit__ec_leave(&c->word, absorb);
	}
	atomic_fetch_add(&c->waiters_done, 1);
	return NULL;
}

static void *waker(void *arg)
{
	struct conc *c = arg;

	while (atomic_load(&c->waiters_done) < WAITERS) {
		if (atomic_load(&c->events) < WAITERS) {
			atomic_fetch_add(&c->events, 1);
			shmkit__ec_wake_sleepers(&c->word, 1, &c->never, NULL, NULL);
		} else {
			sched_yield();
		}
	}
	return NULL;
}

static void *sampler(void *arg)
{
	struct conc *c = arg;
	uint32_t v;

	while (atomic_load(&c->waiters_done) < WAITERS) {
		v = atomic_load(&c->word);
		if (shmkit__ec_p(v) > shmkit__ec_w(v))
			atomic_fetch_add(&c->violations, 1);
	}
	return NULL;
}

START_TEST(test_invariant_concurrent)
{
	struct conc *c = calloc(1, sizeof(*c));
	pthread_t w[WAITERS], k, s;
	int i;
	uint32_t v;

	ck_assert(c != NULL);
	for (i = 0; i < WAITERS; i++)
		ck_assert_int_eq(pthread_create(&w[i], NULL, waiter, c), 0);
	ck_assert_int_eq(pthread_create(&k, NULL, waker, c), 0);
	ck_assert_int_eq(pthread_create(&s, NULL, sampler, c), 0);
	for (i = 0; i < WAITERS; i++)
		pthread_join(w[i], NULL);
	pthread_join(k, NULL);
	pthread_join(s, NULL);
	ck_assert_int_eq(atomic_load(&c->violations), 0);
	v = atomic_load(&c->word);
	ck_assert_uint_eq(shmkit__ec_w(v), 0);
	ck_assert_uint_eq(shmkit__ec_p(v), 0);
	free(c);
}
END_TEST

/* No lost wake-up: one waiter, one event, each time; the waiter sleeps without a timeout slice
 * short enough to hide a lost wake-up (2 s), and the whole test is timed. */
struct pingpong {
	_Atomic uint32_t word, flag;
	_Atomic int64_t slow;
};

static void *pp_waiter(void *arg)
{
	struct pingpong *p = arg;
	uint32_t seen;
	int r;

	for (r = 0; r < 2000; r++) {
		int64_t t0 = shmkit__now();
		bool absorb = false;

		seen = shmkit__ec_arm(&p->word);
		for (;;) {
			shmkit__heavy_fence();
			if (atomic_exchange(&p->flag, 0))
				break;
			shmkit__futex_wait(&p->word, seen, shmkit__now() + 2000 * 1000000LL);
			seen = shmkit__ec_absorb(&p->word);
			absorb = false;
		}
		shmkit__ec_leave(&p->word, absorb);
		if (shmkit__now() - t0 > 1000 * 1000000LL)
			atomic_fetch_add(&p->slow, 1);
	}
	return NULL;
}

START_TEST(test_no_lost_wakeup)
{
	struct pingpong *p = calloc(1, sizeof(*p));
	_Atomic uint32_t never = 0;
	pthread_t t;
	int r;

	ck_assert(p != NULL);
	ck_assert_int_eq(pthread_create(&t, NULL, pp_waiter, p), 0);
	for (r = 0; r < 2000; r++) {
		while (atomic_load(&p->flag))
			sched_yield();
		atomic_store(&p->flag, 1);
		/* E1 inside */
		shmkit__ec_wake_sleepers(&p->word, 1, &never, NULL, NULL);
	}
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&p->slow), 0);
	free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ec");
	TCase *tc = tcase_create("ec");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_invariant_sequential, 0, 4);
	tcase_add_test(tc, test_flag_carried);
	tcase_add_test(tc, test_invariant_concurrent);
	tcase_add_test(tc, test_no_lost_wakeup);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
