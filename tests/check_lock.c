/*
 * Lock and RLock: acquire/release, try and timed acquires against a holder in another
 * process, release by a non-holder, non-recursive re-acquire, RLock recursion, the holder's
 * pid, owner death (every time, blocked or not, also for a Value's Lock), and timed acquires
 * that signals interrupt.
 */
#include "config.h"

#include <pthread.h>
#include <sys/time.h>

#include "testutil.h"

/* How a test and its child meet: flags in shared memory, each wait bounded. */
struct meet {
	_Atomic int step;   /* advanced by the child */
	_Atomic int go;     /* advanced by the parent */
	_Atomic int result; /* what the child saw */
	shmkit_lock *l;
	const char *name;   /* open by name when set */
	unsigned depth;     /* acquisitions for the child to make */
};

/* Wait until *flag >= want, at most 30 s; false on timeout. */
static bool await_flag(_Atomic int *flag, int want)
{
	return tu_await_at_least(flag, want, 30.0);
}

static shmkit_lock *child_lock(struct meet *m)
{
	shmkit_lock *l = m->l;

	if (m->name && shmkit_lock_open(m->name, &l))
		return NULL;
	return l;
}

/* Take the lock (depth times), say so, hold it until told, release (depth times). */
static int child_hold(void *arg)
{
	struct meet *m = arg;
	shmkit_lock *l = child_lock(m);
	unsigned i;

	if (!l)
		return 10;
	for (i = 0; i < (m->depth ? m->depth : 1); i++)
		if (shmkit_lock_acquire(l) != 0)
			return 11;
	atomic_store(&m->step, 1);
	if (!await_flag(&m->go, 1))
		return 12;
	for (i = 0; i < (m->depth ? m->depth : 1); i++)
		if (shmkit_lock_release(l) != 0)
			return 13;
	/* Free, or already the waiting parent's: never still ours. */
	if (shmkit_lock_holder(l) == getpid())
		return 14;
	atomic_store(&m->step, 2);
	return 0;
}

/* Take the lock (depth times) and die holding it. */
static int child_die(void *arg)
{
	struct meet *m = arg;
	shmkit_lock *l = child_lock(m);
	unsigned i;

	if (!l)
		return 10;
	for (i = 0; i < (m->depth ? m->depth : 1); i++)
		if (shmkit_lock_acquire(l) != 0)
			return 11;
	atomic_store(&m->step, 1);
	if (atomic_load(&m->go) == 0)
		tu_sleep_ms(20); /* let a blocked parent be asleep in the kernel when we die */
	raise(SIGKILL);
	return 12;
}

/* Try to take the lock: -EAGAIN expected while the parent holds it. */
static int child_try(void *arg)
{
	struct meet *m = arg;
	shmkit_lock *l = child_lock(m);

	if (!l)
		return 10;
	atomic_store(&m->result, shmkit_lock_acquire_try(l));
	atomic_store(&m->step, 1);
	return 0;
}

static struct meet *new_meet(shmkit_lock *l)
{
	struct meet *m = tu_shared(sizeof(*m));

	m->l = l;
	return m;
}

static shmkit_lock *make_lock(char *name, unsigned flags)
{
	shmkit_lock *l = NULL;

	tu_name_kind(name, flags ? "rlock" : "lock", shmkit_lock_unlink);
	ck_assert_int_eq(shmkit_lock_create(name, flags, 0, &l), 0);
	ck_assert_ptr_nonnull(l);
	return l;
}

/* ------------------------------------------------------------------------------------------- */

START_TEST(test_basic)
{
	unsigned flags = _i ? SHMKIT_RECURSIVE : 0;
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, flags), *l2 = NULL;

	ck_assert_int_eq(shmkit_lock_holder(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), -EPERM);
	ck_assert_int_eq(shmkit_lock_acquire_try(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, 0), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, TU_NS_PER_S), 0);
	/* a second handle on the same lock sees the same state */
	ck_assert_int_eq(shmkit_lock_open(name, &l2), 0);
	ck_assert_int_eq(shmkit_lock_holder(l2), getpid());
	ck_assert_int_eq(shmkit_lock_release(l2), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, -1), -EINVAL);
	ck_assert_int_eq(shmkit_lock_close(l2), 0);
	ck_assert_int_eq(shmkit_lock_close(l), 0);
	ck_assert_int_eq(shmkit_lock_unlink(name), 0);
	ck_assert_int_eq(shmkit_lock_unlink(name), -ENOENT);
}
END_TEST

START_TEST(test_args)
{
	shmkit_lock *l = NULL;

	ck_assert_int_eq(shmkit_lock_create(NULL, 0x10, 0, &l), -EINVAL);
	ck_assert_int_eq(shmkit_lock_create(NULL, SHMKIT_BOUNDED, 0, &l), -EINVAL);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(shmkit_lock_create(NULL, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(shmkit_lock_open("/whatever", NULL), -EINVAL);
	ck_assert_int_eq(shmkit_lock_close(NULL), 0);
}
END_TEST

/* Try and timed acquires against a holder in another process. */
START_TEST(test_held_elsewhere)
{
	unsigned flags = _i ? SHMKIT_RECURSIVE : 0;
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, flags);
	struct meet *m = new_meet(l);
	int64_t t0, dt;
	pid_t pid;

	m->name = name;
	pid = tu_fork(child_hold, m);
	ck_assert(await_flag(&m->step, 1));
	ck_assert_int_eq(shmkit_lock_holder(l), pid);

	ck_assert_int_eq(shmkit_lock_acquire_try(l), -EAGAIN);
	ck_assert_int_eq(shmkit_lock_release(l), -EPERM); /* not ours: refused, still held */
	ck_assert_int_eq(shmkit_lock_holder(l), pid);

	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, 50 * TU_NS_PER_MS), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_msg(dt >= 50 * TU_NS_PER_MS, "timed out after %lld us", (long long)dt / 1000);
	ck_assert_msg(dt < 5 * TU_NS_PER_S, "timed out after %lld us", (long long)dt / 1000);

	/* a zero timeout is a try that reports a timeout */
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, 0), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, 1), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_lock_holder(l), pid);

	/* a blocked acquire gets it once the holder lets go */
	atomic_store(&m->go, 1);
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, 30 * TU_NS_PER_S), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(atomic_load(&m->step), 2);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), 0);
	shmkit_lock_close(l);
}
END_TEST

/* The parent holds it: a child (by name, or inherited) can neither take nor release it. */
static int child_release(void *arg)
{
	struct meet *m = arg;

	atomic_store(&m->result, shmkit_lock_release(m->l));
	return 0;
}

START_TEST(test_held_by_parent)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, _i ? SHMKIT_RECURSIVE : 0);
	struct meet *m = new_meet(l);
	pid_t pid;

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	m->name = name;
	pid = tu_fork(child_try, m);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(atomic_load(&m->result), -EAGAIN);
	m->name = NULL;
	atomic_store(&m->result, 1);
	pid = tu_fork(child_try, m);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(atomic_load(&m->result), -EAGAIN);
	atomic_store(&m->result, 1);
	pid = tu_fork(child_release, m);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(atomic_load(&m->result), -EPERM);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	shmkit_lock_close(l);
}
END_TEST

static void *thread_release(void *arg)
{
	return (void *)(intptr_t)shmkit_lock_release(arg);
}

static void *thread_try(void *arg)
{
	return (void *)(intptr_t)shmkit_lock_acquire_try(arg);
}

/* Another thread of the holder's process is not the holder either. */
START_TEST(test_other_thread)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, _i ? SHMKIT_RECURSIVE : 0), *l2 = NULL;
	pthread_t t;
	void *rv;

	ck_assert_int_eq(shmkit_lock_open(name, &l2), 0); /* one handle per thread */
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, thread_release, l2), 0);
	ck_assert_int_eq(pthread_join(t, &rv), 0);
	ck_assert_int_eq((int)(intptr_t)rv, -EPERM);
	ck_assert_int_eq(pthread_create(&t, NULL, thread_try, l2), 0);
	ck_assert_int_eq(pthread_join(t, &rv), 0);
	ck_assert_int_eq((int)(intptr_t)rv, -EAGAIN);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	shmkit_lock_close(l2);
	shmkit_lock_close(l);
}
END_TEST

START_TEST(test_nonrecursive_reacquire)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, 0);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire(l), -EDEADLK);
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, 10 * TU_NS_PER_MS), -EDEADLK);
	ck_assert_int_eq(shmkit_lock_acquire_try(l), -EDEADLK);
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, 0), -EDEADLK);
	/* still held exactly once */
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), -EPERM);
	ck_assert_int_eq(shmkit_lock_holder(l), 0);
	shmkit_lock_close(l);
}
END_TEST

START_TEST(test_rlock_recursion)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, SHMKIT_RECURSIVE);
	struct meet *m = new_meet(l);
	pid_t pid;

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire_try(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, TU_NS_PER_S), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());

	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	/* still held once: another process cannot take it */
	pid = tu_fork(child_try, m);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(atomic_load(&m->result), -EAGAIN);

	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), -EPERM);

	/* now it can, recursively too */
	m->depth = 3;
	atomic_store(&m->step, 0);
	pid = tu_fork(child_hold, m);
	ck_assert(await_flag(&m->step, 1));
	ck_assert_int_eq(shmkit_lock_holder(l), pid);
	ck_assert_int_eq(shmkit_lock_acquire_try(l), -EAGAIN);
	atomic_store(&m->go, 1);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(shmkit_lock_acquire_try(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	shmkit_lock_close(l);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* Owner death                                                                                  */

/* One round: a child takes l (depth times) and SIGKILLs itself; the parent, already blocked
 * when `blocked`, gets SHMKIT_OWNER_DIED, holds it once, and the lock works on. */
static void owner_dies(shmkit_lock *l, unsigned depth, bool blocked)
{
	struct meet *m = new_meet(l);
	int64_t t0, dt;
	pid_t pid;
	int rc;

	m->depth = depth;
	m->go = blocked ? 0 : 1;
	pid = tu_fork(child_die, m);
	if (!blocked)
		ck_assert_int_eq(tu_wait_child(pid, 30), 128 + SIGKILL);
	else
		ck_assert(await_flag(&m->step, 1));
	t0 = tu_now_ns();
	rc = shmkit_lock_acquire_timeout(l, 30 * TU_NS_PER_S);
	dt = tu_now_ns() - t0;
	ck_assert_msg(rc == SHMKIT_OWNER_DIED, "acquire after owner death: %d", rc);
	ck_assert_msg(dt < TU_NS_PER_S, "owner death noticed after %lld ms",
		      (long long)(dt / TU_NS_PER_MS));
	if (blocked)
		ck_assert_int_eq(tu_wait_child(pid, 30), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	/* held once, whatever depth the dead holder had */
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), -EPERM);
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	munmap(m, sizeof(*m));
}

START_TEST(test_owner_died)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, 0);
	struct meet *m = new_meet(l);
	pid_t pid;

	/* the child by name, holding: the holder is the child */
	m->name = name;
	pid = tu_fork(child_hold, m);
	ck_assert(await_flag(&m->step, 1));
	ck_assert_int_eq(shmkit_lock_holder(l), pid);
	atomic_store(&m->go, 1);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), 0);

	owner_dies(l, 1, false);
	owner_dies(l, 1, true);
	shmkit_lock_close(l);
}
END_TEST

START_TEST(test_owner_died_loop)
{
	char name[TU_NAME_SIZE];
	unsigned flags = _i ? SHMKIT_RECURSIVE : 0;
	shmkit_lock *l = make_lock(name, flags);
	int i;

	for (i = 0; i < 50; i++)
		owner_dies(l, flags ? 1 + i % 3 : 1, i % 2);
	shmkit_lock_close(l);
}
END_TEST

/* The holder dies while the next one is waiting in a try loop and another process joins. */
START_TEST(test_owner_died_other_process_next)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, 0);
	struct meet *m = new_meet(l);
	pid_t pid;

	m->go = 1;
	pid = tu_fork(child_die, m);
	ck_assert_int_eq(tu_wait_child(pid, 30), 128 + SIGKILL);
	/* not us but another process finds the dead holder */
	m->name = name;
	m->result = 99;
	pid = tu_fork(child_try, m);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(atomic_load(&m->result), SHMKIT_OWNER_DIED);
	/* and that one exited holding it: dead again */
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, 30 * TU_NS_PER_S), SHMKIT_OWNER_DIED);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire_try(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	shmkit_lock_close(l);
}
END_TEST

/* A Value's (and an Array's) own Lock recovers the same way. */
START_TEST(test_owner_died_value_lock)
{
	char name[TU_NAME_SIZE];
	shmkit_value *v;
	shmkit_array *a;
	struct meet *m;
	pid_t pid;
	int64_t r;

	tu_name_kind(name, "vlock", shmkit_value_unlink);
	ck_assert_int_eq(shmkit_value_create(name, 0, 0, &v), 0);
	ck_assert_int_eq(shmkit_array_create(NULL, 2, 0, &a), 0);
	owner_dies(shmkit_value_lock(v), 1, false);
	owner_dies(shmkit_value_lock(v), 1, true);
	owner_dies(shmkit_array_lock(a), 1, true);

	m = new_meet(shmkit_value_lock(v));
	m->go = 1;
	pid = tu_fork(child_die, m);
	ck_assert_int_eq(tu_wait_child(pid, 30), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_value_add(v, 3, SHMKIT_ADD_LOCKED, &r), SHMKIT_OWNER_DIED);
	ck_assert_int_eq(r, 3);
	ck_assert_int_eq(shmkit_value_add(v, 3, SHMKIT_ADD_LOCKED, &r), 0);
	ck_assert_int_eq(r, 6);
	ck_assert_int_eq(shmkit_lock_holder(shmkit_value_lock(v)), 0);
	shmkit_value_close(v);
	shmkit_array_close(a);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* Timed acquires interrupted by signals                                                        */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	alarms++;
}

/* SIGALRM every 10 ms, without SA_RESTART; restores the old state in stop_alarms. */
static void start_alarms(struct sigaction *old)
{
	struct sigaction sa;
	struct itimerval it = { { 0, 10000 }, { 0, 10000 } };

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	ck_assert_int_eq(sigaction(SIGALRM, &sa, old), 0);
	alarms = 0;
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void stop_alarms(const struct sigaction *old)
{
	struct itimerval it = { { 0, 0 }, { 0, 0 } };

	setitimer(ITIMER_REAL, &it, NULL);
	sigaction(SIGALRM, old, NULL);
}

START_TEST(test_timeout_signals)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, _i ? SHMKIT_RECURSIVE : 0);
	struct meet *m = new_meet(l);
	const int64_t timeout = 300 * TU_NS_PER_MS;
	struct sigaction old;
	int64_t t0, dt;
	pid_t pid;
	int rc;

	pid = tu_fork(child_hold, m);
	ck_assert(await_flag(&m->step, 1));
	start_alarms(&old);
	t0 = tu_now_ns();
	rc = shmkit_lock_acquire_timeout(l, timeout);
	dt = tu_now_ns() - t0;
	stop_alarms(&old);
	atomic_store(&m->go, 1);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);

	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert_msg(alarms >= 5, "only %d signals arrived", (int)alarms);
	ck_assert_msg(dt >= timeout, "timed out early: %lld ms", (long long)(dt / TU_NS_PER_MS));
	/* Restarting the timeout after each signal would never end; generous slack otherwise. */
	ck_assert_msg(dt < timeout + 2 * TU_NS_PER_S, "timed out late: %lld ms",
		      (long long)(dt / TU_NS_PER_MS));
	shmkit_lock_close(l);
}
END_TEST

/* A holder that dies while a child it forked lives on: the child inherited the holder's
 * handle and mapping, but not its life. The lock comes back to the next acquirer, whether the
 * child touched its handle or not (a lease on the mapping's own description would live as
 * long as any mapping of it, the child's included). */
struct forked_holder {
	const char *name;
	_Atomic int held;
	_Atomic pid_t sleeper;
};

static int sleeper_child(void *arg)
{
	(void)arg;
	tu_sleep_ms(60 * 1000);
	return 0;
}

static int holder_forks(void *arg)
{
	struct forked_holder *f = arg;
	shmkit_lock *l;

	if (shmkit_lock_open(f->name, &l) || shmkit_lock_acquire(l) != 0)
		return 1;
	atomic_store(&f->sleeper, tu_fork(sleeper_child, NULL));
	atomic_store(&f->held, 1);
	for (;;)
		pause();
}

START_TEST(test_owner_died_child_lives)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *l = make_lock(name, 0);
	struct forked_holder *f = tu_shared(sizeof(*f));
	pid_t holder;

	f->name = name;
	holder = tu_fork(holder_forks, f);
	ck_assert(tu_await_at_least(&f->held, 1, 30));
	ck_assert_int_eq(shmkit_lock_acquire_try(l), -EAGAIN);
	tu_kill_child(holder);
	/* The sleeper still maps the lock, inherited from the dead holder. */
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, 30 * TU_NS_PER_S), SHMKIT_OWNER_DIED);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	kill(atomic_load(&f->sleeper), SIGKILL);
	shmkit_lock_close(l);
}
END_TEST

/* ---- close while another thread waits (issue 22 item 9) ------------------------------------ */

struct closer {
	void *h;
	int kind; /* 0 lock, 1 event, 2 barrier */
	_Atomic int started, rc;
};

static void *close_waiter(void *p)
{
	struct closer *c = p;
	int rc;

	atomic_store(&c->started, 1);
	if (c->kind == 0)
		rc = shmkit_lock_acquire(c->h);
	else if (c->kind == 1)
		rc = shmkit_event_wait(c->h);
	else
		rc = shmkit_barrier_wait(c->h);
	atomic_store(&c->rc, rc);
	return NULL;
}

static int child_hold_forever(void *arg)
{
	shmkit_lock *l;

	if (shmkit_lock_open(arg, &l) || shmkit_lock_acquire(l))
		return 10;
	for (;;)
		pause();
}

/* A thread blocked in a lock acquire, an event wait or a barrier wait through a handle that
 * another thread closes is woken and fails with -EBADF; close returns only then, and nothing
 * touches the unmapped region (before: SIGSEGV). */
START_TEST(test_close_while_waiting)
{
	char name[TU_NAME_SIZE];
	struct closer c = { 0 };
	shmkit_lock *l = make_lock(name, 0);
	shmkit_lock *mine;
	shmkit_event *e;
	shmkit_barrier *b;
	pthread_t t;
	pid_t pid = tu_fork(child_hold_forever, name);
	int k;

	while (shmkit_lock_holder(l) != pid)
		tu_sleep_ms(1);
	ck_assert_int_eq(shmkit_lock_open(name, &mine), 0);
	ck_assert_int_eq(shmkit_event_create(NULL, 0600, &e), 0);
	ck_assert_int_eq(shmkit_barrier_create(NULL, 2, 0600, &b), 0);
	for (k = 0; k < 3; k++) {
		c.h = k == 0 ? (void *)mine : k == 1 ? (void *)e : (void *)b;
		c.kind = k;
		atomic_store(&c.started, 0);
		atomic_store(&c.rc, 999);
		ck_assert_int_eq(pthread_create(&t, NULL, close_waiter, &c), 0);
		while (!atomic_load(&c.started))
			tu_sleep_ms(1);
		tu_sleep_ms(50); /* asleep by now */
		if (k == 0)
			ck_assert_int_eq(shmkit_lock_close(mine), 0);
		else if (k == 1)
			ck_assert_int_eq(shmkit_event_close(e), 0);
		else
			ck_assert_int_eq(shmkit_barrier_close(b), 0);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
		ck_assert_msg(atomic_load(&c.rc) == -EBADF, "kind %d: the waiter got %d", k,
			      atomic_load(&c.rc));
	}
	kill(pid, SIGKILL);
	tu_wait_child(pid, 30);
	shmkit_lock_close(l);
}
END_TEST

static Suite *lock_suite(void)
{
	Suite *s = suite_create("lock");
	TCase *tc;

	tc = tu_tcase(s, "basic", 60);
	tcase_add_loop_test(tc, test_basic, 0, 2);
	tcase_add_test(tc, test_args);
	tcase_add_loop_test(tc, test_held_elsewhere, 0, 2);
	tcase_add_test(tc, test_close_while_waiting);
	tcase_add_loop_test(tc, test_held_by_parent, 0, 2);
	tcase_add_loop_test(tc, test_other_thread, 0, 2);
	tcase_add_test(tc, test_nonrecursive_reacquire);
	tcase_add_test(tc, test_rlock_recursion);

	tc = tu_tcase(s, "owner_death", 120);
	tcase_add_test(tc, test_owner_died);
	tcase_add_loop_test(tc, test_owner_died_loop, 0, 2);
	tcase_add_test(tc, test_owner_died_other_process_next);
	tcase_add_test(tc, test_owner_died_value_lock);
	tcase_add_test(tc, test_owner_died_child_lives);

	tc = tu_tcase(s, "signals", 60);
	tcase_add_loop_test(tc, test_timeout_signals, 0, 2);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(lock_suite());
}
