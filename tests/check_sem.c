/*
 * Semaphore and BoundedSemaphore: acquire/release/value, try and timed acquires on zero
 * (also with signals arriving), the bound (alone and with concurrent releasers), unlink
 * removing the named semaphore, a create that finds the semaphore's name taken, a
 * Semaphore(2) admitting two processes at a time, and children opening by name.
 */
#include "config.h"

#include <limits.h>
#include <sched.h>
#include <sys/time.h>

#include "testutil.h"

static shmkit_sem *make_sem(char *name, unsigned initial, unsigned flags)
{
	shmkit_sem *s = NULL;

	tu_name_kind(name, flags ? "bsem" : "sem", shmkit_sem_unlink);
	ck_assert_int_eq(shmkit_sem_create(name, initial, flags, 0, &s), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* _i: 0 named, 1 anonymous */
START_TEST(test_basic)
{
	char name[TU_NAME_SIZE];
	shmkit_sem *s, *s2 = NULL;

	if (_i) {
		ck_assert_int_eq(shmkit_sem_create(NULL, 2, 0, 0, &s), 0);
	} else {
		s = make_sem(name, 2, 0);
		ck_assert_int_eq(shmkit_sem_open(name, &s2), 0);
	}
	ck_assert_int_eq(shmkit_sem_value(s), 2);
	ck_assert_int_eq(shmkit_sem_acquire(s), 0);
	ck_assert_int_eq(shmkit_sem_value(s), 1);
	ck_assert_int_eq(shmkit_sem_acquire_try(s), 0);
	ck_assert_int_eq(shmkit_sem_value(s), 0);
	ck_assert_int_eq(shmkit_sem_acquire_try(s), -EAGAIN);
	ck_assert_int_eq(shmkit_sem_acquire_timeout(s, 0), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_sem_acquire_timeout(s, 1), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_sem_value(s), 0);
	/* not bounded: any number of releases */
	ck_assert_int_eq(shmkit_sem_release(s), 0);
	ck_assert_int_eq(shmkit_sem_release(s), 0);
	ck_assert_int_eq(shmkit_sem_release(s), 0);
	ck_assert_int_eq(shmkit_sem_value(s), 3);
	if (s2) {
		ck_assert_int_eq(shmkit_sem_value(s2), 3);
		ck_assert_int_eq(shmkit_sem_acquire_timeout(s2, TU_NS_PER_S), 0);
		ck_assert_int_eq(shmkit_sem_value(s), 2);
	}
	ck_assert_int_eq(shmkit_sem_acquire_timeout(s, -1), -EINVAL);
	ck_assert_int_eq(shmkit_sem_close(s2), 0);
	ck_assert_int_eq(shmkit_sem_close(s), 0);
	if (!_i) {
		ck_assert_int_eq(shmkit_sem_unlink(name), 0);
		ck_assert_int_eq(shmkit_sem_unlink(name), -ENOENT);
		ck_assert_int_eq(shmkit_sem_open(name, &s), -ENOENT);
	}
}
END_TEST

START_TEST(test_args)
{
	char name[TU_NAME_SIZE], path[4096];
	shmkit_sem *s = NULL;

	tu_name_kind(name, "args", shmkit_sem_unlink);
	ck_assert_int_eq(shmkit_sem_create(name, 0, 0x1, 0, &s), -EINVAL);
	ck_assert_int_eq(shmkit_sem_create(name, 0, SHMKIT_RECURSIVE | SHMKIT_BOUNDED, 0, &s),
			 -EINVAL);
	ck_assert_int_eq(shmkit_sem_create(name, (unsigned)SEM_VALUE_MAX + 1, 0, 0, &s), -EINVAL);
	ck_assert_int_eq(shmkit_sem_create(name, 0, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(shmkit_sem_create(name, 0, 0, 0200000, &s), -EINVAL);
	ck_assert_ptr_null(s);
	ck_assert(!tu_exists(tu_shm_path(path, sizeof(path), name)));
	ck_assert(!tu_exists(tu_sem_path(path, sizeof(path), name)));
	ck_assert_int_eq(shmkit_sem_open(name, NULL), -EINVAL);
	ck_assert_int_eq(shmkit_sem_close(NULL), 0);
	ck_assert_int_eq(shmkit_sem_create(NULL, SEM_VALUE_MAX, 0, 0, &s), 0);
	ck_assert_int_eq(shmkit_sem_value(s), SEM_VALUE_MAX);
	shmkit_sem_close(s);
}
END_TEST

/* A timed acquire on 0 waits its time, not less, and not forever. */
START_TEST(test_timeout)
{
	char name[TU_NAME_SIZE];
	shmkit_sem *s = make_sem(name, 0, _i ? SHMKIT_BOUNDED : 0);
	int64_t t0, dt;

	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_sem_acquire_timeout(s, 50 * TU_NS_PER_MS), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_msg(dt >= 50 * TU_NS_PER_MS, "after %lld us", (long long)dt / 1000);
	ck_assert_msg(dt < 5 * TU_NS_PER_S, "after %lld us", (long long)dt / 1000);
	ck_assert_int_eq(shmkit_sem_value(s), 0);
	shmkit_sem_close(s);
}
END_TEST

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	alarms++;
}

START_TEST(test_timeout_signals)
{
	struct itimerval it = { { 0, 10000 }, { 0, 10000 } }, off = { { 0, 0 }, { 0, 0 } };
	const int64_t timeout = 300 * TU_NS_PER_MS;
	char name[TU_NAME_SIZE];
	shmkit_sem *s = make_sem(name, 0, 0);
	struct sigaction sa, old;
	int64_t t0, dt;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
	alarms = 0;
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	t0 = tu_now_ns();
	rc = shmkit_sem_acquire_timeout(s, timeout);
	dt = tu_now_ns() - t0;
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);

	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert_msg(alarms >= 5, "only %d signals arrived", (int)alarms);
	ck_assert_msg(dt >= timeout, "early: %lld ms", (long long)(dt / TU_NS_PER_MS));
	ck_assert_msg(dt < timeout + 2 * TU_NS_PER_S, "late: %lld ms",
		      (long long)(dt / TU_NS_PER_MS));
	shmkit_sem_close(s);
}
END_TEST

/* _i: 0 named, 1 anonymous */
START_TEST(test_bounded)
{
	char name[TU_NAME_SIZE];
	shmkit_sem *s, *s2 = NULL;

	if (_i) {
		ck_assert_int_eq(shmkit_sem_create(NULL, 2, SHMKIT_BOUNDED, 0, &s), 0);
	} else {
		s = make_sem(name, 2, SHMKIT_BOUNDED);
		ck_assert_int_eq(shmkit_sem_open(name, &s2), 0);
	}
	ck_assert_int_eq(shmkit_sem_release(s), -EOVERFLOW);
	ck_assert_int_eq(shmkit_sem_value(s), 2);
	ck_assert_int_eq(shmkit_sem_acquire(s), 0);
	ck_assert_int_eq(shmkit_sem_release(s), 0);
	ck_assert_int_eq(shmkit_sem_release(s), -EOVERFLOW);
	ck_assert_int_eq(shmkit_sem_value(s), 2);
	ck_assert_int_eq(shmkit_sem_acquire(s), 0);
	ck_assert_int_eq(shmkit_sem_acquire(s), 0);
	ck_assert_int_eq(shmkit_sem_value(s), 0);
	if (s2) /* the bound travels with the object, not the handle */
		ck_assert_int_eq(shmkit_sem_release(s2), 0);
	else
		ck_assert_int_eq(shmkit_sem_release(s), 0);
	ck_assert_int_eq(shmkit_sem_release(s), 0);
	ck_assert_int_eq(shmkit_sem_release(s2 ? s2 : s), -EOVERFLOW);
	ck_assert_int_eq(shmkit_sem_value(s), 2);
	shmkit_sem_close(s2);
	shmkit_sem_close(s);
}
END_TEST

START_TEST(test_bounded_zero)
{
	shmkit_sem *s;

	ck_assert_int_eq(shmkit_sem_create(NULL, 0, SHMKIT_BOUNDED, 0, &s), 0);
	ck_assert_int_eq(shmkit_sem_release(s), -EOVERFLOW);
	ck_assert_int_eq(shmkit_sem_value(s), 0);
	ck_assert_int_eq(shmkit_sem_acquire_try(s), -EAGAIN);
	shmkit_sem_close(s);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* Processes                                                                                    */

#define NREL 8
#define BOUND 5

struct rel {
	const char *name;
	_Atomic int ready, go;
	_Atomic int ok, overflow, other;
};

static int child_release(void *arg)
{
	struct rel *r = arg;
	shmkit_sem *s;
	int i, rc;

	if (shmkit_sem_open(r->name, &s))
		return 10;
	atomic_fetch_add(&r->ready, 1);
	while (!atomic_load(&r->go))
		sched_yield();
	for (i = 0; i < 3; i++) {
		rc = shmkit_sem_release(s);
		if (rc == 0)
			atomic_fetch_add(&r->ok, 1);
		else if (rc == -EOVERFLOW)
			atomic_fetch_add(&r->overflow, 1);
		else
			atomic_fetch_add(&r->other, 1);
	}
	shmkit_sem_close(s);
	return 0;
}

/* Releasers racing on an emptied BoundedSemaphore: exactly the bound gets through. */
START_TEST(test_bounded_concurrent)
{
	static char name[TU_NAME_SIZE];
	shmkit_sem *s = make_sem(name, BOUND, SHMKIT_BOUNDED);
	struct rel *r = tu_shared(sizeof(*r));
	pid_t pids[NREL];
	int round, i;

	r->name = name;
	for (round = 0; round < 10; round++) {
		for (i = 0; i < BOUND; i++)
			ck_assert_int_eq(shmkit_sem_acquire_try(s), 0);
		ck_assert_int_eq(shmkit_sem_value(s), 0);
		memset((void *)r, 0, sizeof(*r));
		r->name = name;
		for (i = 0; i < NREL; i++)
			pids[i] = tu_fork(child_release, r);
		while (atomic_load(&r->ready) < NREL)
			tu_sleep_ms(1);
		atomic_store(&r->go, 1);
		ck_assert_int_eq(tu_wait_children(pids, NREL, 60), 0);
		ck_assert_int_eq(atomic_load(&r->other), 0);
		ck_assert_int_eq(atomic_load(&r->ok), BOUND);
		ck_assert_int_eq(atomic_load(&r->overflow), 3 * NREL - BOUND);
		ck_assert_int_eq(shmkit_sem_value(s), BOUND);
	}
	shmkit_sem_close(s);
}
END_TEST

#define NCONC 6
#define ROUNDS 50

struct conc {
	const char *name;
	shmkit_sem *s;
	_Atomic int inside, max_inside, errors;
};

static int child_concurrency(void *arg)
{
	struct conc *c = arg;
	shmkit_sem *s = c->s;
	int i, now, max;

	if (c->name && shmkit_sem_open(c->name, &s))
		return 10;
	for (i = 0; i < ROUNDS; i++) {
		if (shmkit_sem_acquire_timeout(s, 30 * TU_NS_PER_S)) {
			atomic_fetch_add(&c->errors, 1);
			return 11;
		}
		now = atomic_fetch_add(&c->inside, 1) + 1;
		max = atomic_load(&c->max_inside);
		while (now > max && !atomic_compare_exchange_weak(&c->max_inside, &max, now))
			;
		tu_sleep_ms(1);
		atomic_fetch_sub(&c->inside, 1);
		if (shmkit_sem_release(s)) {
			atomic_fetch_add(&c->errors, 1);
			return 12;
		}
	}
	if (c->name)
		shmkit_sem_close(s);
	return 0;
}

/* Semaphore(2): never more than two processes inside. _i: 0 named (opened by the children),
 * 1 anonymous (inherited), 2 bounded. */
START_TEST(test_limits_concurrency)
{
	static char name[TU_NAME_SIZE];
	struct conc *c = tu_shared(sizeof(*c));
	pid_t pids[NCONC];
	int i;

	if (_i == 1) {
		ck_assert_int_eq(shmkit_sem_create(NULL, 2, 0, 0, &c->s), 0);
	} else {
		c->s = make_sem(name, 2, _i == 2 ? SHMKIT_BOUNDED : 0);
		c->name = name;
	}
	for (i = 0; i < NCONC; i++)
		pids[i] = tu_fork(child_concurrency, c);
	ck_assert_int_eq(tu_wait_children(pids, NCONC, 120), 0);
	ck_assert_int_eq(atomic_load(&c->errors), 0);
	ck_assert_int_eq(atomic_load(&c->inside), 0);
	ck_assert_int_le(atomic_load(&c->max_inside), 2);
	ck_assert_int_ge(atomic_load(&c->max_inside), 1);
	ck_assert_int_eq(shmkit_sem_value(c->s), 2);
	shmkit_sem_close(c->s);
}
END_TEST

struct pingpong {
	const char *name;
	_Atomic int step;
};

/* Opened by name in a child that inherited nothing of it: take the parent's release, give one
 * back. */
static int child_by_name(void *arg)
{
	struct pingpong *p = arg;
	shmkit_sem *s;

	if (shmkit_sem_open(p->name, &s))
		return 10;
	atomic_store(&p->step, 1);
	if (shmkit_sem_acquire_timeout(s, 30 * TU_NS_PER_S))
		return 11;
	if (shmkit_sem_release(s) || shmkit_sem_release(s))
		return 12;
	shmkit_sem_close(s);
	return 0;
}

START_TEST(test_open_by_name_child)
{
	static char name[TU_NAME_SIZE];
	struct pingpong *p = tu_shared(sizeof(*p));
	shmkit_sem *s;
	pid_t pid;

	tu_name_kind(name, "pp", shmkit_sem_unlink);
	p->name = name;
	pid = tu_fork(child_by_name, p); /* nothing by that name yet: its open fails */
	ck_assert_int_eq(tu_wait_child(pid, 30), 10);

	ck_assert_int_eq(shmkit_sem_create(name, 0, 0, 0, &s), 0);
	pid = tu_fork(child_by_name, p);
	while (!atomic_load(&p->step))
		tu_sleep_ms(1);
	tu_sleep_ms(20); /* most likely blocked in acquire by now; either way it must work */
	ck_assert_int_eq(shmkit_sem_release(s), 0);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(shmkit_sem_value(s), 2);
	ck_assert_int_eq(shmkit_sem_acquire_timeout(s, TU_NS_PER_S), 0);
	ck_assert_int_eq(shmkit_sem_acquire_timeout(s, TU_NS_PER_S), 0);
	shmkit_sem_close(s);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* Names                                                                                        */

START_TEST(test_unlink_removes_sem)
{
	char name[TU_NAME_SIZE], spath[4096], rpath[4096];
	shmkit_sem *s = make_sem(name, 1, 0), *s2;

	tu_sem_path(spath, sizeof(spath), name);
	tu_shm_path(rpath, sizeof(rpath), name);
	ck_assert_msg(tu_exists(spath), "%s missing", spath);
	ck_assert_msg(tu_exists(rpath), "%s missing", rpath);
	ck_assert_int_eq(shmkit_sem_unlink(name), 0);
	ck_assert_msg(!tu_exists(spath), "%s left behind", spath);
	ck_assert_msg(!tu_exists(rpath), "%s left behind", rpath);
	/* an open handle keeps working after unlink */
	ck_assert_int_eq(shmkit_sem_acquire_try(s), 0);
	ck_assert_int_eq(shmkit_sem_release(s), 0);
	shmkit_sem_close(s);
	ck_assert_int_eq(shmkit_sem_open(name, &s2), -ENOENT);
	/* and the name can be used again */
	ck_assert_int_eq(shmkit_sem_create(name, 3, 0, 0, &s), 0);
	ck_assert_int_eq(shmkit_sem_value(s), 3);
	shmkit_sem_close(s);
	ck_assert_int_eq(shmkit_sem_unlink(name), 0);
}
END_TEST

/* Half an object left over (either part gone): unlink removes the rest. */
START_TEST(test_unlink_partial)
{
	char name[TU_NAME_SIZE], semname[TU_NAME_SIZE + 8], spath[4096], rpath[4096];
	shmkit_sem *s = make_sem(name, 1, 0);

	shmkit_sem_close(s);
	snprintf(semname, sizeof(semname), "%s.sem", name);
	ck_assert_int_eq(sem_unlink(semname), 0);
	ck_assert_int_eq(shmkit_sem_open(name, &s), -ENOENT);
	ck_assert_int_eq(shmkit_sem_unlink(name), 0);
	ck_assert(!tu_exists(tu_shm_path(rpath, sizeof(rpath), name)));

	s = make_sem(name, 1, 0);
	shmkit_sem_close(s);
	ck_assert_int_eq(shm_unlink(name), 0);
	ck_assert_int_eq(shmkit_sem_unlink(name), 0);
	ck_assert(!tu_exists(tu_sem_path(spath, sizeof(spath), name)));
	ck_assert_int_eq(shmkit_sem_unlink(name), -ENOENT);
}
END_TEST

/* The semaphore's name is taken (by someone's sem_open): create fails and leaves nothing. */
START_TEST(test_create_sem_name_taken)
{
	char name[TU_NAME_SIZE], semname[TU_NAME_SIZE + 8], rpath[4096];
	shmkit_sem *s = NULL;
	sem_t *other;
	int v = -1;

	tu_name_kind(name, "taken", shmkit_sem_unlink);
	snprintf(semname, sizeof(semname), "%s.sem", name);
	other = sem_open(semname, O_CREAT | O_EXCL, 0600, 7);
	ck_assert(other != SEM_FAILED);
	ck_assert_int_eq(shmkit_sem_create(name, 1, 0, 0, &s), -EEXIST);
	ck_assert_ptr_null(s);
	ck_assert_msg(!tu_exists(tu_shm_path(rpath, sizeof(rpath), name)), "%s left behind", rpath);
	/* and the other owner's semaphore is untouched */
	ck_assert_int_eq(sem_getvalue(other, &v), 0);
	ck_assert_int_eq(v, 7);
	sem_close(other);
	ck_assert_int_eq(sem_unlink(semname), 0);
}
END_TEST

START_TEST(test_create_twice)
{
	char name[TU_NAME_SIZE];
	shmkit_sem *s = make_sem(name, 4, 0), *s2 = NULL;

	ck_assert_int_eq(shmkit_sem_create(name, 1, 0, 0, &s2), -EEXIST);
	ck_assert_ptr_null(s2);
	/* the first is intact: both of its parts */
	ck_assert_int_eq(shmkit_sem_open(name, &s2), 0);
	ck_assert_int_eq(shmkit_sem_value(s2), 4);
	shmkit_sem_close(s2);
	shmkit_sem_close(s);
}
END_TEST

static Suite *sem_suite(void)
{
	Suite *s = suite_create("sem");
	TCase *tc;

	tc = tu_tcase(s, "basic", 60);
	tcase_add_loop_test(tc, test_basic, 0, 2);
	tcase_add_test(tc, test_args);
	tcase_add_loop_test(tc, test_timeout, 0, 2);
	tcase_add_test(tc, test_timeout_signals);
	tcase_add_loop_test(tc, test_bounded, 0, 2);
	tcase_add_test(tc, test_bounded_zero);

	tc = tu_tcase(s, "processes", 180);
	tcase_add_test(tc, test_bounded_concurrent);
	tcase_add_loop_test(tc, test_limits_concurrency, 0, 3);
	tcase_add_test(tc, test_open_by_name_child);

	tc = tu_tcase(s, "names", 60);
	tcase_add_test(tc, test_unlink_removes_sem);
	tcase_add_test(tc, test_unlink_partial);
	tcase_add_test(tc, test_create_sem_name_taken);
	tcase_add_test(tc, test_create_twice);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(sem_suite());
}
