/*
 * Event, Condition and Barrier across processes: wake-ups, timeouts, wake counts, SIGKILLed
 * waiters, barrier generations, breaking and reset.
 *
 * Children report through shared memory and their exit status, never ck_assert. Every wait in
 * a child has a timeout far beyond a correct run, so a lost wake-up shows up as -ETIMEDOUT (a
 * failure) instead of a hang; a child that still hangs is SIGKILLed by reap() and fails the
 * test. Names carry the runner's pid; the runner removes them after each test case.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "shmkit.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define CHILD_WAIT (20 * SEC) /* a child's waits: far beyond any correct run */
#define REAP_WAIT (60 * SEC)  /* how long a child may take in all */
#define POLL_WAIT (20 * SEC)  /* how long the parent polls for a child to get somewhere */
#define NAME_SIZE (SHMKIT_NAME_MAX + 2)

static pid_t run_pid; /* the runner's pid: every name carries it, teardown removes them */
static unsigned name_seq;

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                    */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * MS };

	nanosleep(&ts, NULL);
}

static const char *mkname(char *buf, const char *tag)
{
	snprintf(buf, NAME_SIZE, "/shmkit-sync-%d-%d-%s-%u", (int)run_pid, (int)getpid(), tag,
		 ++name_seq);
	return buf;
}

/* Remove every name this run made, also those of tests that failed half-way. */
static void cleanup_names(void)
{
	struct dirent *de;
	char prefix[64], path[sizeof(de->d_name) + 2];
	DIR *d;

	snprintf(prefix, sizeof(prefix), "shmkit-sync-%d-", (int)run_pid);
	if (!(d = opendir("/dev/shm")))
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		snprintf(path, sizeof(path), "/%s", de->d_name);
		shm_unlink(path);
	}
	closedir(d);
}

/* Zeroed memory shared with children forked later. */
static void *shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_msg(p != MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

typedef int (*child_fn)(void *arg);

/* Fork a child running fn(arg); its return value is its exit status. It dies with us. */
static pid_t spawn(child_fn fn, void *arg)
{
	pid_t parent = getpid(), pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		_exit(fn(arg) & 0x7f);
	}
	return pid;
}

/* The child's exit status; -1 when it had to be SIGKILLed after timeout_ns, -2 when it died of
 * a signal. */
static int reap(pid_t pid, int64_t timeout_ns)
{
	int64_t end = now_ns() + timeout_ns;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -2;
		if (r < 0)
			return -3;
		if (now_ns() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		nap_ms(2);
	}
}

static void kill_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Wait until pid sleeps in the kernel ('S'). Callers make sure the only place it can sleep
 * at that point is the wait under test. */
static bool await_sleeping(pid_t pid)
{
	int64_t end = now_ns() + POLL_WAIT;
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	while (now_ns() < end) {
		FILE *f = fopen(path, "r");
		size_t n = 0;

		if (f) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
		}
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == 'S')
			return true;
		nap_ms(1);
	}
	return false;
}

/* Wait until *v reaches at least want. */
static bool await_count(_Atomic int *v, int want)
{
	int64_t end = now_ns() + POLL_WAIT;

	while (now_ns() < end) {
		if (atomic_load(v) >= want)
			return true;
		nap_ms(1);
	}
	return atomic_load(v) >= want;
}

/* ------------------------------------------------------------------------------------------ */
/* Event                                                                                      */

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
	t0 = now_ns();
	r = shmkit_event_wait_timeout(e, CHILD_WAIT);
	/* Seeing the flag only once the time is up means the set's wake-up was lost. */
	if (r == 0 && now_ns() - t0 >= CHILD_WAIT)
		r = -ETIMEDOUT;
	atomic_store(a->res, r);
	if (a->name)
		shmkit_event_close(e);
	return r == 0 ? 0 : 11;
}

START_TEST(test_event_basic)
{
	char name[NAME_SIZE];
	shmkit_event *e, *e2;
	shmkit_cond *c;
	int named;

	for (named = 0; named < 2; named++) {
		ck_assert_int_eq(shmkit_event_create(named ? mkname(name, "ev") : NULL, 0, &e), 0);
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
	t0 = now_ns();
	ck_assert_int_eq(shmkit_event_wait_timeout(e, 50 * MS), -ETIMEDOUT);
	dt = now_ns() - t0;
	ck_assert_msg(dt >= 50 * MS, "timed out after %lld ns", (long long)dt);
	shmkit_event_close(e);
}
END_TEST

/* A child waiting, by an inherited handle and by name, is woken by the parent's set. */
START_TEST(test_event_wakes_child)
{
	char name[NAME_SIZE];
	_Atomic int *res = shared(sizeof(*res));
	struct ev_arg a;
	shmkit_event *e;
	int named;
	pid_t pid;

	for (named = 0; named < 2; named++) {
		ck_assert_int_eq(shmkit_event_create(named ? mkname(name, "evc") : NULL, 0, &e),
				 0);
		atomic_store(res, 1);
		a = (struct ev_arg){ e, named ? name : NULL, res };
		pid = spawn(ev_waiter, &a);
		if (!await_sleeping(pid)) {
			kill_reap(pid);
			ck_abort_msg("child never slept");
		}
		ck_assert_int_eq(atomic_load(res), 1); /* still waiting */
		ck_assert_int_eq(shmkit_event_set(e), 0);
		ck_assert_int_eq(reap(pid, REAP_WAIT), 0);
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
	_Atomic int *res = shared(EV_MANY * sizeof(*res));
	struct ev_arg a[EV_MANY];
	pid_t pid[EV_MANY];
	shmkit_event *e;
	int round, i;

	ck_assert_int_eq(shmkit_event_create(NULL, 0, &e), 0);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < EV_MANY; i++) {
			atomic_store(&res[i], 1);
			a[i] = (struct ev_arg){ e, NULL, &res[i] };
			pid[i] = spawn(ev_waiter, &a[i]);
		}
		for (i = 0; i < EV_MANY; i++)
			ck_assert_msg(await_sleeping(pid[i]), "child %d never slept", i);
		ck_assert_int_eq(shmkit_event_set(e), 0);
		if (round == 1) /* the pulse */
			ck_assert_int_eq(shmkit_event_clear(e), 0);
		for (i = 0; i < EV_MANY; i++) {
			ck_assert_int_eq(reap(pid[i], REAP_WAIT), 0);
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
	char name[NAME_SIZE];
	_Atomic int *res = shared(2 * sizeof(*res));
	struct ev_arg a[2];
	shmkit_event *e;
	pid_t victim, live;
	int i;

	ck_assert_int_eq(shmkit_event_create(mkname(name, "evk"), 0, &e), 0);
	for (i = 0; i < 10; i++) {
		atomic_store(&res[0], 1);
		atomic_store(&res[1], 1);
		a[0] = (struct ev_arg){ e, (i & 1) ? name : NULL, &res[0] };
		a[1] = (struct ev_arg){ e, (i & 1) ? NULL : name, &res[1] };
		victim = spawn(ev_waiter, &a[0]);
		live = spawn(ev_waiter, &a[1]);
		ck_assert(await_sleeping(victim));
		ck_assert(await_sleeping(live));
		kill_reap(victim);
		ck_assert_int_eq(shmkit_event_set(e), 0);
		ck_assert_int_eq(reap(live, REAP_WAIT), 0);
		ck_assert_int_eq(atomic_load(&res[1]), 0);
		ck_assert_int_eq(atomic_load(&res[0]), 1); /* the victim never returned */
		ck_assert_int_eq(shmkit_event_clear(e), 0);
	}
	shmkit_event_close(e);
	shmkit_event_unlink(name);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Condition                                                                                  */

START_TEST(test_cond_basic)
{
	char name[NAME_SIZE];
	shmkit_cond *c, *c2;
	shmkit_event *e;
	shmkit_lock *l;
	int64_t t0, dt;

	ck_assert_int_eq(shmkit_cond_create(mkname(name, "cb"), 0, &c), 0);
	ck_assert_int_eq(shmkit_cond_create(name, 0, &c2), -EEXIST);
	ck_assert_int_eq(shmkit_event_open(name, &e), -EPROTOTYPE);
	l = shmkit_cond_lock(c);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(shmkit_lock_close(l), -EINVAL); /* borrowed */

	/* Not holding the lock. */
	ck_assert_int_eq(shmkit_cond_wait(c), -EPERM);
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, 10 * MS), -EPERM);
	ck_assert_int_eq(shmkit_cond_notify(c, 1), -EPERM);
	ck_assert_int_eq(shmkit_cond_notify_all(c), -EPERM);

	/* A timed wait returns -ETIMEDOUT with the lock held again. */
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, -1), -EINVAL);
	ck_assert_int_eq(shmkit_cond_notify(c, -1), -EINVAL);
	ck_assert_int_eq(shmkit_cond_notify(c, 0), 0);
	ck_assert_int_eq(shmkit_cond_notify(c, 3), 0); /* nobody waits */
	ck_assert_int_eq(shmkit_cond_notify_all(c), 0);
	t0 = now_ns();
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, 50 * MS), -ETIMEDOUT);
	dt = now_ns() - t0;
	ck_assert_msg(dt >= 50 * MS, "timed out after %lld ns", (long long)dt);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, 0), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), -EPERM);

	/* Held twice (RLock): the wait restores the depth. */
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, 20 * MS), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), -EPERM);

	ck_assert_int_eq(shmkit_cond_open(name, &c2), 0);
	ck_assert_int_eq(shmkit_lock_acquire_try(shmkit_cond_lock(c2)), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_lock_release(shmkit_cond_lock(c2)), 0);
	ck_assert_int_eq(shmkit_cond_close(c2), 0);
	ck_assert_int_eq(shmkit_cond_close(c), 0);
	ck_assert_int_eq(shmkit_cond_unlink(name), 0);
	ck_assert_int_eq(shmkit_cond_close(NULL), 0);
}
END_TEST

static int never(void *arg)
{
	(void)arg;
	return 0;
}

static int flag_set(void *arg)
{
	return atomic_load((_Atomic int *)arg) != 0;
}

struct cond_arg {
	shmkit_cond *c;
	const char *name; /* open by name when set */
	_Atomic int *ready, *woken, *res;
};

/* Takes the lock the parent holds twice while the parent waits in wait_for. */
static int cond_recursive_child(void *p)
{
	struct cond_arg *a = p;
	shmkit_cond *c;
	int r;

	if (shmkit_cond_open(a->name, &c))
		return 10;
	r = shmkit_lock_acquire_timeout(shmkit_cond_lock(c), CHILD_WAIT);
	if (r < 0)
		return 11;
	atomic_store(a->ready, 1);
	r = shmkit_cond_notify_all(c);
	shmkit_lock_release(shmkit_cond_lock(c));
	shmkit_cond_close(c);
	return r == 0 ? 0 : 12;
}

/* wait_for from a recursively held lock releases it fully, and keeps one deadline. */
START_TEST(test_cond_wait_for)
{
	char name[NAME_SIZE];
	_Atomic int *ready = shared(sizeof(*ready));
	struct cond_arg a;
	shmkit_cond *c;
	shmkit_lock *l;
	int64_t t0, dt;
	pid_t pid;

	ck_assert_int_eq(shmkit_cond_create(mkname(name, "cw"), 0, &c), 0);
	l = shmkit_cond_lock(c);
	ck_assert_int_eq(shmkit_cond_wait_for(c, never, NULL, 0), -EPERM);
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_wait_for(c, NULL, NULL, 0), -EINVAL);
	t0 = now_ns();
	ck_assert_int_eq(shmkit_cond_wait_for(c, never, NULL, 50 * MS), 0);
	dt = now_ns() - t0;
	ck_assert_msg(dt >= 50 * MS, "gave up after %lld ns", (long long)dt);
	ck_assert_int_eq(shmkit_cond_wait_for(c, never, NULL, 0), 0);
	atomic_store(ready, 1);
	ck_assert_int_eq(shmkit_cond_wait_for(c, flag_set, ready, 0), 1);
	atomic_store(ready, 0);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0); /* depth 2 */
	a = (struct cond_arg){ .c = c, .name = name, .ready = ready };
	pid = spawn(cond_recursive_child, &a);
	ck_assert_int_eq(shmkit_cond_wait_for(c, flag_set, ready, CHILD_WAIT), 1);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(reap(pid, REAP_WAIT), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), -EPERM);
	shmkit_cond_close(c);
	shmkit_cond_unlink(name);
}
END_TEST

/* Bounded buffer across processes: a producer and a consumer, each waiting with wait_for on
 * its own predicate, pass 1..RING_ITEMS in order through RING_SLOTS slots. */
#define RING_SLOTS 4
#define RING_ITEMS 2000

struct ring {
	int64_t slot[RING_SLOTS];
	uint64_t head, tail; /* under the Condition's lock */
};

struct ring_arg {
	shmkit_cond *c;
	const char *name;
	struct ring *ring;
};

static int ring_room(void *p)
{
	struct ring *r = p;

	return r->tail - r->head < RING_SLOTS;
}

static int ring_item(void *p)
{
	struct ring *r = p;

	return r->tail != r->head;
}

static int ring_producer(void *p)
{
	struct ring_arg *a = p;
	shmkit_lock *l = shmkit_cond_lock(a->c);
	int64_t i;

	for (i = 1; i <= RING_ITEMS; i++) {
		if (shmkit_lock_acquire(l) < 0)
			return 10;
		if (shmkit_cond_wait_for(a->c, ring_room, a->ring, CHILD_WAIT) != 1)
			return 11;
		a->ring->slot[a->ring->tail++ % RING_SLOTS] = i;
		if (shmkit_cond_notify(a->c, 1))
			return 12;
		shmkit_lock_release(l);
	}
	return 0;
}

static int ring_consumer(void *p)
{
	struct ring_arg *a = p;
	shmkit_cond *c;
	int64_t i, v;
	int err = 0;

	if (shmkit_cond_open(a->name, &c))
		return 20;
	for (i = 1; i <= RING_ITEMS && !err; i++) {
		if (shmkit_lock_acquire(shmkit_cond_lock(c)) < 0)
			return 21;
		if (shmkit_cond_wait_for(c, ring_item, a->ring, CHILD_WAIT) != 1) {
			err = 22;
		} else {
			v = a->ring->slot[a->ring->head++ % RING_SLOTS];
			if (v != i)
				err = 23;
			if (shmkit_cond_notify(c, 1))
				err = 24;
		}
		shmkit_lock_release(shmkit_cond_lock(c));
	}
	shmkit_cond_close(c);
	return err;
}

START_TEST(test_cond_producer_consumer)
{
	char name[NAME_SIZE];
	struct ring *ring = shared(sizeof(*ring));
	struct ring_arg a;
	shmkit_cond *c;
	pid_t prod, cons;

	ck_assert_int_eq(shmkit_cond_create(mkname(name, "cpc"), 0, &c), 0);
	a = (struct ring_arg){ c, name, ring };
	cons = spawn(ring_consumer, &a);
	prod = spawn(ring_producer, &a);
	ck_assert_int_eq(reap(prod, REAP_WAIT), 0);
	ck_assert_int_eq(reap(cons, REAP_WAIT), 0);
	ck_assert_uint_eq(ring->head, RING_ITEMS);
	ck_assert_uint_eq(ring->tail, RING_ITEMS);
	shmkit_cond_close(c);
	shmkit_cond_unlink(name);
}
END_TEST

/* Take the lock (a dead holder's is fine), count in, wait, count out. */
static int cond_waiter(void *p)
{
	struct cond_arg *a = p;
	shmkit_cond *c = a->c;
	int r;

	if (a->name && shmkit_cond_open(a->name, &c))
		return 10;
	if (shmkit_lock_acquire(shmkit_cond_lock(c)) < 0)
		return 11;
	atomic_fetch_add(a->ready, 1);
	r = shmkit_cond_wait_timeout(c, CHILD_WAIT);
	atomic_store(a->res, r);
	atomic_fetch_add(a->woken, 1);
	if (shmkit_lock_release(shmkit_cond_lock(c)))
		return 12;
	if (a->name)
		shmkit_cond_close(c);
	return r == 0 ? 0 : 13;
}

#define CW_N 4

/* notify(1) wakes exactly one of several sleepers, notify(2) two more, notify_all the rest.
 * Sleepers are counted in under the lock and seen asleep in the kernel first, so none is
 * between its release and its sleep (where any notify would count it as woken). */
START_TEST(test_cond_notify_counts)
{
	char name[NAME_SIZE];
	_Atomic int *sh = shared((2 + CW_N) * sizeof(*sh));
	_Atomic int *ready = &sh[0], *woken = &sh[1], *res = &sh[2];
	struct cond_arg a[CW_N];
	pid_t pid[CW_N];
	shmkit_cond *c;
	shmkit_lock *l;
	int i;

	ck_assert_int_eq(shmkit_cond_create(mkname(name, "cn"), 0, &c), 0);
	l = shmkit_cond_lock(c);
	for (i = 0; i < CW_N; i++) {
		atomic_store(&res[i], 1);
		a[i] = (struct cond_arg){ c, (i & 1) ? name : NULL, ready, woken, &res[i] };
		pid[i] = spawn(cond_waiter, &a[i]);
	}
	ck_assert(await_count(ready, CW_N));
	for (i = 0; i < CW_N; i++)
		ck_assert_msg(await_sleeping(pid[i]), "waiter %d never slept", i);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_notify(c, 1), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert(await_count(woken, 1));
	nap_ms(200);
	ck_assert_int_eq(atomic_load(woken), 1);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_notify(c, 2), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert(await_count(woken, 3));
	nap_ms(200);
	ck_assert_int_eq(atomic_load(woken), 3);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_notify_all(c), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	for (i = 0; i < CW_N; i++) {
		ck_assert_int_eq(reap(pid[i], REAP_WAIT), 0);
		ck_assert_int_eq(atomic_load(&res[i]), 0);
	}
	ck_assert_int_eq(atomic_load(woken), CW_N);
	shmkit_cond_close(c);
	shmkit_cond_unlink(name);
}
END_TEST

#define CA_N 6

START_TEST(test_cond_notify_all)
{
	_Atomic int *sh = shared((2 + CA_N) * sizeof(*sh));
	_Atomic int *ready = &sh[0], *woken = &sh[1], *res = &sh[2];
	struct cond_arg a[CA_N];
	pid_t pid[CA_N];
	shmkit_cond *c;
	int i;

	ck_assert_int_eq(shmkit_cond_create(NULL, 0, &c), 0);
	for (i = 0; i < CA_N; i++) {
		atomic_store(&res[i], 1);
		a[i] = (struct cond_arg){ c, NULL, ready, woken, &res[i] };
		pid[i] = spawn(cond_waiter, &a[i]);
	}
	ck_assert(await_count(ready, CA_N));
	for (i = 0; i < CA_N; i++)
		ck_assert(await_sleeping(pid[i]));
	ck_assert_int_eq(shmkit_lock_acquire(shmkit_cond_lock(c)), 0);
	ck_assert_int_eq(shmkit_cond_notify_all(c), 0);
	ck_assert_int_eq(shmkit_lock_release(shmkit_cond_lock(c)), 0);
	for (i = 0; i < CA_N; i++) {
		ck_assert_int_eq(reap(pid[i], REAP_WAIT), 0);
		ck_assert_int_eq(atomic_load(&res[i]), 0);
	}
	shmkit_cond_close(c);
}
END_TEST

/* A waiter SIGKILLed asleep, or anywhere in wait (even holding the lock), wedges neither
 * notify_all nor a live waiter. */
START_TEST(test_cond_killed_waiter)
{
	char name[NAME_SIZE];
	_Atomic int *sh = shared(4 * sizeof(*sh));
	_Atomic int *ready = &sh[0], *woken = &sh[1], *res = &sh[2];
	struct cond_arg a[2];
	shmkit_cond *c;
	shmkit_lock *l;
	pid_t victim, live;
	int i, r;

	ck_assert_int_eq(shmkit_cond_create(mkname(name, "ck"), 0, &c), 0);
	l = shmkit_cond_lock(c);
	for (i = 0; i < 20; i++) {
		atomic_store(ready, 0);
		atomic_store(woken, 0);
		atomic_store(&res[0], 1);
		atomic_store(&res[1], 1);
		a[0] = (struct cond_arg){ c, (i & 2) ? name : NULL, ready, woken, &res[0] };
		a[1] = (struct cond_arg){ c, (i & 2) ? NULL : name, ready, woken, &res[1] };
		victim = spawn(cond_waiter, &a[0]);
		ck_assert(await_count(ready, 1));
		if (i & 1) {
			/* Anywhere after counting in: maybe still holding the lock. */
			kill_reap(victim);
		}
		live = spawn(cond_waiter, &a[1]);
		ck_assert(await_count(ready, 2));
		ck_assert(await_sleeping(live));
		if (!(i & 1)) {
			ck_assert(await_sleeping(victim));
			kill_reap(victim);
		}
		r = shmkit_lock_acquire_timeout(l, CHILD_WAIT);
		ck_assert_msg(r == 0 || r == SHMKIT_OWNER_DIED, "acquire: %d", r);
		ck_assert_int_eq(shmkit_cond_notify_all(c), 0);
		ck_assert_int_eq(shmkit_lock_release(l), 0);
		ck_assert_int_eq(reap(live, REAP_WAIT), 0);
		ck_assert_int_eq(atomic_load(&res[1]), 0);
		ck_assert_int_eq(atomic_load(&res[0]), 1);
	}
	shmkit_cond_close(c);
	shmkit_cond_unlink(name);
}
END_TEST

/* The bakery: one baker puts loaves on a shelf (a shared Value) under the Condition's lock and
 * notifies one customer per loaf; customers take loaves until the bakery closes. */
#define LOAVES 300
#define CUSTOMERS 3

struct bakery {
	const char *cond_name, *shelf_name, *closed_name;
	_Atomic int *eaten; /* per customer */
};

struct shelf {
	shmkit_value *loaves, *closed;
};

static int shelf_ready(void *p)
{
	struct shelf *s = p;

	return shmkit_value_load(s->loaves) > 0 || shmkit_value_load(s->closed) != 0;
}

static int bakery_open(const struct bakery *b, shmkit_cond **c, struct shelf *s)
{
	if (shmkit_cond_open(b->cond_name, c))
		return -1;
	if (shmkit_value_open(b->shelf_name, &s->loaves) ||
	    shmkit_value_open(b->closed_name, &s->closed))
		return -1;
	return 0;
}

static int baker(void *p)
{
	struct bakery *b = p;
	struct shelf s;
	shmkit_cond *c;
	shmkit_lock *l;
	int i;

	if (bakery_open(b, &c, &s))
		return 10;
	l = shmkit_cond_lock(c);
	for (i = 0; i < LOAVES; i++) {
		if (shmkit_lock_acquire(l) < 0)
			return 11;
		shmkit_value_store(s.loaves, shmkit_value_load(s.loaves) + 1);
		if (shmkit_cond_notify(c, 1))
			return 12;
		shmkit_lock_release(l);
		if (i % 50 == 0)
			nap_ms(1); /* let the shelf run empty now and then */
	}
	if (shmkit_lock_acquire(l) < 0)
		return 13;
	shmkit_value_store(s.closed, 1);
	shmkit_cond_notify_all(c);
	shmkit_lock_release(l);
	return 0;
}

struct customer_arg {
	struct bakery *b;
	int id;
};

static int customer(void *p)
{
	struct customer_arg *a = p;
	struct shelf s;
	shmkit_cond *c;
	shmkit_lock *l;
	int err = 0, more = 1;

	if (bakery_open(a->b, &c, &s))
		return 20;
	l = shmkit_cond_lock(c);
	while (more && !err) {
		if (shmkit_lock_acquire(l) < 0)
			return 21;
		if (shmkit_cond_wait_for(c, shelf_ready, &s, CHILD_WAIT) != 1) {
			err = 22;
		} else if (shmkit_value_load(s.loaves) > 0) {
			shmkit_value_store(s.loaves, shmkit_value_load(s.loaves) - 1);
			atomic_fetch_add(&a->b->eaten[a->id], 1);
		} else {
			more = 0; /* closed and empty */
		}
		shmkit_lock_release(l);
	}
	return err;
}

START_TEST(test_cond_bakery)
{
	char cn[NAME_SIZE], sn[NAME_SIZE], xn[NAME_SIZE];
	struct customer_arg ca[CUSTOMERS];
	shmkit_value *loaves, *closed;
	pid_t pid[CUSTOMERS + 1];
	struct bakery b;
	shmkit_cond *c;
	int i, total = 0;

	b = (struct bakery){ mkname(cn, "bc"), mkname(sn, "bs"), mkname(xn, "bx"),
			     shared(CUSTOMERS * sizeof(_Atomic int)) };
	ck_assert_int_eq(shmkit_cond_create(cn, 0, &c), 0);
	ck_assert_int_eq(shmkit_value_create(sn, 0, 0, &loaves), 0);
	ck_assert_int_eq(shmkit_value_create(xn, 0, 0, &closed), 0);
	for (i = 0; i < CUSTOMERS; i++) {
		ca[i] = (struct customer_arg){ &b, i };
		pid[i] = spawn(customer, &ca[i]);
	}
	pid[CUSTOMERS] = spawn(baker, &b);
	for (i = 0; i <= CUSTOMERS; i++)
		ck_assert_int_eq(reap(pid[i], REAP_WAIT), 0);
	for (i = 0; i < CUSTOMERS; i++)
		total += atomic_load(&b.eaten[i]);
	ck_assert_int_eq(total, LOAVES);
	ck_assert_int_eq(shmkit_value_load(loaves), 0);
	ck_assert_int_eq(shmkit_value_load(closed), 1);
	shmkit_value_close(loaves);
	shmkit_value_close(closed);
	shmkit_cond_close(c);
	shmkit_value_unlink(sn);
	shmkit_value_unlink(xn);
	shmkit_cond_unlink(cn);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Barrier                                                                                    */

START_TEST(test_barrier_basic)
{
	char name[NAME_SIZE];
	shmkit_barrier *b, *b2;
	shmkit_event *e;
	int i;

	ck_assert_int_eq(shmkit_barrier_create(NULL, 0, 0, &b), -EINVAL);
	ck_assert_int_eq(shmkit_barrier_create(NULL, 1025, 0, &b), -EINVAL);
	ck_assert_int_eq(shmkit_barrier_create(NULL, 1024, 0, &b), 0);
	ck_assert_int_eq(shmkit_barrier_parties(b), 1024);
	shmkit_barrier_close(b);

	ck_assert_int_eq(shmkit_barrier_create(mkname(name, "bb"), 1, 0, &b), 0);
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
	char name[NAME_SIZE];
	struct rounds *rd = shared(sizeof(*rd));
	struct br_arg a[BR_PARTIES];
	pid_t pid[BR_PARTIES];
	shmkit_barrier *b;
	int i, round;

	ck_assert_int_eq(shmkit_barrier_create(mkname(name, "br"), BR_PARTIES, 0, &b), 0);
	for (i = 0; i < BR_PARTIES; i++) {
		a[i] = (struct br_arg){ b, (i & 1) ? name : NULL, rd, i, NULL };
		pid[i] = spawn(rounds_child, &a[i]);
	}
	for (i = 0; i < BR_PARTIES; i++)
		ck_assert_int_eq(reap(pid[i], REAP_WAIT), 0);
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

/* Wait until n parties are waiting on b. */
static bool await_waiting(shmkit_barrier *b, int n)
{
	int64_t end = now_ns() + POLL_WAIT;

	while (now_ns() < end) {
		if (shmkit_barrier_n_waiting(b) == n)
			return true;
		nap_ms(1);
	}
	return false;
}

#define NOT_YET 12345

/* The party that times out gets -ETIMEDOUT and breaks the barrier: the others get
 * -ECANCELED, and so does every wait until reset. */
START_TEST(test_barrier_timeout)
{
	_Atomic int *res = shared(2 * sizeof(*res));
	struct br_arg a[2];
	shmkit_barrier *b;
	pid_t pid[2];
	int64_t t0;
	int i;

	ck_assert_int_eq(shmkit_barrier_create(NULL, 4, 0, &b), 0);
	for (i = 0; i < 2; i++) {
		atomic_store(&res[i], NOT_YET);
		a[i] = (struct br_arg){ b, NULL, NULL, i, &res[i] };
		pid[i] = spawn(br_waiter, &a[i]);
	}
	ck_assert(await_waiting(b, 2));
	t0 = now_ns();
	ck_assert_int_eq(shmkit_barrier_wait_timeout(b, 100 * MS), -ETIMEDOUT);
	ck_assert(now_ns() - t0 >= 100 * MS);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(reap(pid[i], REAP_WAIT), 0);
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
	char name[NAME_SIZE];
	_Atomic int *res = shared(3 * sizeof(*res));
	struct br_arg a[3];
	shmkit_barrier *b;
	pid_t pid[3];
	int round, i;

	ck_assert_int_eq(shmkit_barrier_create(mkname(name, "bk"), 4, 0, &b), 0);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 3; i++) {
			atomic_store(&res[i], NOT_YET);
			a[i] = (struct br_arg){ b, (i & 1) ? name : NULL, NULL, i, &res[i] };
		}
		/* Party 0 is the victim: round 0 kills it after the others arrived, round 1
		 * before they arrive. */
		pid[0] = spawn(br_waiter, &a[0]);
		ck_assert(await_waiting(b, 1));
		if (round == 1)
			kill_reap(pid[0]);
		pid[1] = spawn(br_waiter, &a[1]);
		pid[2] = spawn(br_waiter, &a[2]);
		if (round == 0) {
			ck_assert(await_waiting(b, 3));
			kill_reap(pid[0]);
		}
		for (i = 1; i < 3; i++) {
			ck_assert_int_eq(reap(pid[i], REAP_WAIT), 0);
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
	_Atomic int *res = shared(3 * sizeof(*res));
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
		pid[i] = spawn(br_waiter, &a[i]);
	}
	ck_assert(await_waiting(b, 2));
	ck_assert_int_eq(shmkit_barrier_reset(b), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(reap(pid[i], REAP_WAIT), 0);
		ck_assert_int_eq(atomic_load(&res[i]), -ECANCELED);
	}
	ck_assert_int_eq(shmkit_barrier_broken(b), 0);
	ck_assert_int_eq(shmkit_barrier_n_waiting(b), 0);

	/* Usable again: a full generation, then one after abort + reset. */
	for (int round = 0; round < 2; round++) {
		for (i = 0; i < 2; i++) {
			atomic_store(&res[i], NOT_YET);
			a[i] = (struct br_arg){ b, NULL, NULL, i, &res[i] };
			pid[i] = spawn(br_waiter, &a[i]);
		}
		r = shmkit_barrier_wait_timeout(b, CHILD_WAIT);
		ck_assert_msg(r >= 0 && r < 3, "wait: %d", r);
		seen = 1u << r;
		for (i = 0; i < 2; i++) {
			ck_assert_int_eq(reap(pid[i], REAP_WAIT), 0);
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

/* ------------------------------------------------------------------------------------------ */

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	/* In the runner, after the case: also catches names of tests that failed. */
	tcase_add_unchecked_fixture(tc, NULL, cleanup_names);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc;

	tc = tcase(s, "event");
	tcase_add_test(tc, test_event_basic);
	tcase_add_test(tc, test_event_timeout);
	tcase_add_test(tc, test_event_wakes_child);
	tcase_add_test(tc, test_event_many_waiters);
	tcase_add_test(tc, test_event_killed_waiter);

	tc = tcase(s, "cond");
	tcase_add_test(tc, test_cond_basic);
	tcase_add_test(tc, test_cond_wait_for);
	tcase_add_test(tc, test_cond_producer_consumer);
	tcase_add_test(tc, test_cond_notify_counts);
	tcase_add_test(tc, test_cond_notify_all);
	tcase_add_test(tc, test_cond_killed_waiter);
	tcase_add_test(tc, test_cond_bakery);

	tc = tcase(s, "barrier");
	tcase_add_test(tc, test_barrier_basic);
	tcase_add_test(tc, test_barrier_rounds);
	tcase_add_test(tc, test_barrier_timeout);
	tcase_add_test(tc, test_barrier_killed_party);
	tcase_add_test(tc, test_barrier_reset);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (access("/dev/shm", W_OK) != 0)
		return 77; /* no usable POSIX shared memory here: skip */
	run_pid = getpid();
	sr = srunner_create(sync_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cleanup_names();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
