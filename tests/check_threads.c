/*
 * Threads of one process sharing objects, each thread through its own handle (as the header
 * asks). These are the cases ThreadSanitizer can judge: it sees every thread of one process,
 * while across processes its view is per process (it cannot see another
 * process's accesses to a shared mapping). CI runs this suite under
 * --enable-sanitizers=thread; `make check` runs it plainly like the others.
 *
 * What each checks is exact: plain (non-atomic) data guarded by a shmkit Lock adds up, so a
 * lock that failed to order its holders would show as a lost update here and as a race report
 * under TSan.
 *
 * TSan sees ordering by address. Two handles of one object are two mappings, so the lock word
 * has a different address in each and TSan cannot see that it orders anything: the variants
 * where each thread opens its own handle are left out under TSan (they still run in `make
 * check`). Lock, RLock, Value and Event handles may be shared by threads (ownership belongs to
 * the thread), so the shared-handle variants are what TSan judges.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>

#include "shmkit.h"
#include "testutil.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

#define THREADS 4
#define ROUNDS 20000

struct shared {
	const char *name;   /* each thread opens its own handle of it, or: */
	shmkit_lock *l;     /* a handle all threads share */
	shmkit_value *v;
	shmkit_event *e;
	long plain; /* guarded by the lock: no atomics on purpose */
	long got_sum, got_n;
	int depth_ok;
	_Atomic int started;
};

static void *lock_worker(void *arg)
{
	struct shared *s = arg;
	shmkit_lock *l = s->l;
	int i;

	if (!l && shmkit_lock_open(s->name, &l))
		return (void *)1;
	for (i = 0; i < ROUNDS; i++) {
		if (shmkit_lock_acquire(l) < 0)
			return (void *)2;
		s->plain++;
		if (shmkit_lock_release(l))
			return (void *)3;
	}
	if (!s->l)
		shmkit_lock_close(l);
	return NULL;
}

static void run_threads(void *(*fn)(void *), void *arg, int n)
{
	pthread_t t[THREADS * 2];
	void *rv;
	int i;

	for (i = 0; i < n; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, fn, arg), 0);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(pthread_join(t[i], &rv), 0);
		ck_assert_ptr_null(rv);
	}
}

/* _i: bit 0 recursive, bit 1 a handle per thread. */
START_TEST(test_lock_threads)
{
	char name[TU_NAME_SIZE];
	struct shared s = { 0 };
	shmkit_lock *l;

#ifdef UNDER_TSAN
	if (_i & 2)
		return;
#endif
	tu_name_kind(name, "thrlock", shmkit_lock_unlink);
	ck_assert_int_eq(shmkit_lock_create(name, (_i & 1) ? SHMKIT_RECURSIVE : 0, 0, &l), 0);
	s.name = name;
	s.l = (_i & 2) ? NULL : l;
	run_threads(lock_worker, &s, THREADS);
	ck_assert_int_eq(s.plain, (long)THREADS * ROUNDS);
	ck_assert_int_eq(shmkit_lock_holder(l), 0);
	shmkit_lock_close(l);
}
END_TEST

/* An RLock taken twice by one thread is held until both releases; another thread's release
 * in between is refused and changes nothing. */
static void *rlock_worker(void *arg)
{
	struct shared *s = arg;
	shmkit_lock *l = s->l;
	int i;

	if (!l && shmkit_lock_open(s->name, &l))
		return (void *)1;
	for (i = 0; i < ROUNDS / 4; i++) {
		if (shmkit_lock_acquire(l) < 0 || shmkit_lock_acquire(l) < 0)
			return (void *)2;
		s->plain++;
		if (shmkit_lock_release(l))
			return (void *)3;
		s->plain++; /* still held once */
		if (shmkit_lock_release(l))
			return (void *)4;
		if (shmkit_lock_release(l) != -EPERM)
			return (void *)5;
	}
	if (!s->l)
		shmkit_lock_close(l);
	return NULL;
}

START_TEST(test_rlock_threads)
{
	char name[TU_NAME_SIZE];
	struct shared s = { 0 };
	shmkit_lock *l;

#ifdef UNDER_TSAN
	if (_i)
		return;
#endif
	tu_name_kind(name, "thrrlock", shmkit_lock_unlink);
	ck_assert_int_eq(shmkit_lock_create(name, SHMKIT_RECURSIVE, 0, &l), 0);
	s.name = name;
	s.l = _i ? NULL : l;
	run_threads(rlock_worker, &s, THREADS);
	ck_assert_int_eq(s.plain, 2L * THREADS * (ROUNDS / 4));
	shmkit_lock_close(l);
}
END_TEST

/* Producers and consumers, one queue handle each: every message once, the sum exact. */
static void *producer(void *arg)
{
	struct shared *s = arg;
	shmkit_queue *q;
	long i;

	if (shmkit_queue_open(s->name, &q))
		return (void *)1;
	for (i = 1; i <= ROUNDS; i++)
		if (shmkit_queue_put(q, &i, sizeof(i)))
			return (void *)2;
	shmkit_queue_close(q); /* detaches: the last writer's close is EOF */
	return NULL;
}

static pthread_mutex_t sum_mu = PTHREAD_MUTEX_INITIALIZER;

static void *consumer(void *arg)
{
	struct shared *s = arg;
	shmkit_queue *q;
	long v, sum = 0, n = 0;
	int rc;

	if (shmkit_queue_open(s->name, &q))
		return (void *)1;
	while ((rc = shmkit_queue_get(q, &v, sizeof(v))) == (int)sizeof(v)) {
		sum += v;
		n++;
	}
	shmkit_queue_close(q);
	if (rc != -EPIPE)
		return (void *)2;
	pthread_mutex_lock(&sum_mu);
	s->got_sum += sum;
	s->got_n += n;
	pthread_mutex_unlock(&sum_mu);
	return NULL;
}

static void *either(void *arg)
{
	struct shared *s = arg;
	int me = atomic_fetch_add(&s->started, 1);

	return me < 2 ? producer(arg) : consumer(arg);
}

START_TEST(test_queue_threads)
{
	struct shmkit_queue_attr a = { .capacity = 8, .max_size = sizeof(long), .writers = 2 };
	char name[TU_NAME_SIZE];
	struct shared s = { 0 };
	shmkit_queue *q;

	tu_name_kind(name, "thrq", shmkit_queue_unlink);
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), 0);
	s.name = name;
	run_threads(either, &s, 4);
	ck_assert_int_eq(s.got_n, 2L * ROUNDS);
	ck_assert_int_eq(s.got_sum, 2L * ROUNDS * (ROUNDS + 1) / 2);
	shmkit_queue_close(q);
}
END_TEST

/* A Value's locked add from threads: exact; and an Event set by one thread releases all. */
static void *adder(void *arg)
{
	struct shared *s = arg;
	shmkit_value *v = s->v;
	int i;

	if (!v && shmkit_value_open(s->name, &v))
		return (void *)1;
	for (i = 0; i < ROUNDS; i++)
		if (shmkit_value_add(v, 1, SHMKIT_ADD_LOCKED, NULL) < 0)
			return (void *)2;
	if (!s->v)
		shmkit_value_close(v);
	return NULL;
}

START_TEST(test_value_threads)
{
	char name[TU_NAME_SIZE];
	struct shared s = { 0 };
	shmkit_value *v;

	tu_name_kind(name, "thrv", shmkit_value_unlink);
	ck_assert_int_eq(shmkit_value_create(name, 0, 0, &v), 0);
	s.name = name;
	s.v = _i ? NULL : v;
	run_threads(adder, &s, THREADS);
	ck_assert_int_eq(shmkit_value_load(v), (int64_t)THREADS * ROUNDS);
	shmkit_value_close(v);
}
END_TEST

static void *event_waiter(void *arg)
{
	struct shared *s = arg;
	shmkit_event *e = s->e;
	long seen;

	if (!e && shmkit_event_open(s->name, &e))
		return (void *)1;
	atomic_fetch_add(&s->started, 1);
	if (shmkit_event_wait_timeout(e, 60 * TU_NS_PER_S))
		return (void *)2;
	/* The setter wrote plain data before setting: the wait must order it before us. */
	seen = s->plain;
	if (!s->e)
		shmkit_event_close(e);
	return seen == 42 ? NULL : (void *)3;
}

START_TEST(test_event_threads)
{
	char name[TU_NAME_SIZE];
	struct shared s = { 0 };
	pthread_t t[THREADS];
	shmkit_event *e;
	void *rv;
	int i;

#ifdef UNDER_TSAN
	if (_i)
		return;
#endif
	tu_name_kind(name, "thre", shmkit_event_unlink);
	ck_assert_int_eq(shmkit_event_create(name, 0, &e), 0);
	s.name = name;
	s.e = _i ? NULL : e;
	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, event_waiter, &s), 0);
	while (atomic_load(&s.started) < THREADS)
		tu_sleep_ms(1);
	s.plain = 42;
	ck_assert_int_eq(shmkit_event_set(e), 0);
	for (i = 0; i < THREADS; i++) {
		ck_assert_int_eq(pthread_join(t[i], &rv), 0);
		ck_assert_ptr_null(rv);
	}
	shmkit_event_close(e);
}
END_TEST

static Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tu_tcase(s, "one process", 300);

	tcase_add_loop_test(tc, test_lock_threads, 0, 4);
	tcase_add_loop_test(tc, test_rlock_threads, 0, 2);
	tcase_add_test(tc, test_queue_threads);
	tcase_add_loop_test(tc, test_value_threads, 0, 2);
	tcase_add_loop_test(tc, test_event_threads, 0, 2);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(threads_suite());
}
