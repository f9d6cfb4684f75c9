/*
 * Condition across processes: the lock it owns (a recursive one, whose depth a wait restores),
 * wait and notify without holding it, timeouts, wait_for's predicate and single deadline, a
 * bounded buffer passed in order, notify(n) waking exactly n, notify_all, waiters SIGKILLed
 * asleep or holding the lock, and the bakery (one producer notifying several consumers).
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

START_TEST(test_cond_basic)
{
	char name[TU_NAME_SIZE];
	shmkit_cond *c, *c2;
	shmkit_event *e;
	shmkit_lock *l;
	int64_t t0, dt;

	ck_assert_int_eq(shmkit_cond_create(tu_name(name, "cb"), 0, &c), 0);
	ck_assert_int_eq(shmkit_cond_create(name, 0, &c2), -EEXIST);
	ck_assert_int_eq(shmkit_event_open(name, &e), -EPROTOTYPE);
	l = shmkit_cond_lock(c);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(shmkit_lock_close(l), -EINVAL); /* borrowed */

	/* Not holding the lock. */
	ck_assert_int_eq(shmkit_cond_wait(c), -EPERM);
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, 10 * TU_NS_PER_MS), -EPERM);
	ck_assert_int_eq(shmkit_cond_notify(c, 1), -EPERM);
	ck_assert_int_eq(shmkit_cond_notify_all(c), -EPERM);

	/* A timed wait returns -ETIMEDOUT with the lock held again. */
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, -1), -EINVAL);
	ck_assert_int_eq(shmkit_cond_notify(c, -1), -EINVAL);
	ck_assert_int_eq(shmkit_cond_notify(c, 0), 0);
	ck_assert_int_eq(shmkit_cond_notify(c, 3), 0); /* nobody waits */
	ck_assert_int_eq(shmkit_cond_notify_all(c), 0);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, 50 * TU_NS_PER_MS), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_msg(dt >= 50 * TU_NS_PER_MS, "timed out after %lld ns", (long long)dt);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, 0), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(shmkit_lock_release(l), -EPERM);

	/* Held twice (RLock): the wait restores the depth. */
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_wait_timeout(c, 20 * TU_NS_PER_MS), -ETIMEDOUT);
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
	char name[TU_NAME_SIZE];
	_Atomic int *ready = tu_shared(sizeof(*ready));
	struct cond_arg a;
	shmkit_cond *c;
	shmkit_lock *l;
	int64_t t0, dt;
	pid_t pid;

	ck_assert_int_eq(shmkit_cond_create(tu_name(name, "cw"), 0, &c), 0);
	l = shmkit_cond_lock(c);
	ck_assert_int_eq(shmkit_cond_wait_for(c, never, NULL, 0), -EPERM);
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_wait_for(c, NULL, NULL, 0), -EINVAL);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_cond_wait_for(c, never, NULL, 50 * TU_NS_PER_MS), 0);
	dt = tu_now_ns() - t0;
	ck_assert_msg(dt >= 50 * TU_NS_PER_MS, "gave up after %lld ns", (long long)dt);
	ck_assert_int_eq(shmkit_cond_wait_for(c, never, NULL, 0), 0);
	atomic_store(ready, 1);
	ck_assert_int_eq(shmkit_cond_wait_for(c, flag_set, ready, 0), 1);
	atomic_store(ready, 0);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0); /* depth 2 */
	a = (struct cond_arg){ .c = c, .name = name, .ready = ready };
	pid = tu_fork(cond_recursive_child, &a);
	ck_assert_int_eq(shmkit_cond_wait_for(c, flag_set, ready, CHILD_WAIT), 1);
	ck_assert_int_eq(shmkit_lock_holder(l), getpid());
	ck_assert_int_eq(tu_wait_child(pid, REAP_S), 0);
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
	char name[TU_NAME_SIZE];
	struct ring *ring = tu_shared(sizeof(*ring));
	struct ring_arg a;
	shmkit_cond *c;
	pid_t prod, cons;

	ck_assert_int_eq(shmkit_cond_create(tu_name(name, "cpc"), 0, &c), 0);
	a = (struct ring_arg){ c, name, ring };
	cons = tu_fork(ring_consumer, &a);
	prod = tu_fork(ring_producer, &a);
	ck_assert_int_eq(tu_wait_child(prod, REAP_S), 0);
	ck_assert_int_eq(tu_wait_child(cons, REAP_S), 0);
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
	char name[TU_NAME_SIZE];
	_Atomic int *sh = tu_shared((2 + CW_N) * sizeof(*sh));
	_Atomic int *ready = &sh[0], *woken = &sh[1], *res = &sh[2];
	struct cond_arg a[CW_N];
	pid_t pid[CW_N];
	shmkit_cond *c;
	shmkit_lock *l;
	int i;

	ck_assert_int_eq(shmkit_cond_create(tu_name(name, "cn"), 0, &c), 0);
	l = shmkit_cond_lock(c);
	for (i = 0; i < CW_N; i++) {
		atomic_store(&res[i], 1);
		a[i] = (struct cond_arg){ c, (i & 1) ? name : NULL, ready, woken, &res[i] };
		pid[i] = tu_fork(cond_waiter, &a[i]);
	}
	ck_assert(tu_await_at_least(ready, CW_N, POLL_S));
	for (i = 0; i < CW_N; i++)
		ck_assert_msg(tu_await_sleeping(pid[i], POLL_S), "waiter %d never slept", i);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_notify(c, 1), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert(tu_await_at_least(woken, 1, POLL_S));
	tu_sleep_ms(200);
	ck_assert_int_eq(atomic_load(woken), 1);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_notify(c, 2), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert(tu_await_at_least(woken, 3, POLL_S));
	tu_sleep_ms(200);
	ck_assert_int_eq(atomic_load(woken), 3);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(shmkit_cond_notify_all(c), 0);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	for (i = 0; i < CW_N; i++) {
		ck_assert_int_eq(tu_wait_child(pid[i], REAP_S), 0);
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
	_Atomic int *sh = tu_shared((2 + CA_N) * sizeof(*sh));
	_Atomic int *ready = &sh[0], *woken = &sh[1], *res = &sh[2];
	struct cond_arg a[CA_N];
	pid_t pid[CA_N];
	shmkit_cond *c;
	int i;

	ck_assert_int_eq(shmkit_cond_create(NULL, 0, &c), 0);
	for (i = 0; i < CA_N; i++) {
		atomic_store(&res[i], 1);
		a[i] = (struct cond_arg){ c, NULL, ready, woken, &res[i] };
		pid[i] = tu_fork(cond_waiter, &a[i]);
	}
	ck_assert(tu_await_at_least(ready, CA_N, POLL_S));
	for (i = 0; i < CA_N; i++)
		ck_assert(tu_await_sleeping(pid[i], POLL_S));
	ck_assert_int_eq(shmkit_lock_acquire(shmkit_cond_lock(c)), 0);
	ck_assert_int_eq(shmkit_cond_notify_all(c), 0);
	ck_assert_int_eq(shmkit_lock_release(shmkit_cond_lock(c)), 0);
	for (i = 0; i < CA_N; i++) {
		ck_assert_int_eq(tu_wait_child(pid[i], REAP_S), 0);
		ck_assert_int_eq(atomic_load(&res[i]), 0);
	}
	shmkit_cond_close(c);
}
END_TEST

/* A waiter SIGKILLed asleep, or anywhere in wait (even holding the lock), wedges neither
 * notify_all nor a live waiter. */
START_TEST(test_cond_killed_waiter)
{
	char name[TU_NAME_SIZE];
	_Atomic int *sh = tu_shared(4 * sizeof(*sh));
	_Atomic int *ready = &sh[0], *woken = &sh[1], *res = &sh[2];
	struct cond_arg a[2];
	shmkit_cond *c;
	shmkit_lock *l;
	pid_t victim, live;
	int i, r;

	ck_assert_int_eq(shmkit_cond_create(tu_name(name, "ck"), 0, &c), 0);
	l = shmkit_cond_lock(c);
	for (i = 0; i < 20; i++) {
		atomic_store(ready, 0);
		atomic_store(woken, 0);
		atomic_store(&res[0], 1);
		atomic_store(&res[1], 1);
		a[0] = (struct cond_arg){ c, (i & 2) ? name : NULL, ready, woken, &res[0] };
		a[1] = (struct cond_arg){ c, (i & 2) ? NULL : name, ready, woken, &res[1] };
		victim = tu_fork(cond_waiter, &a[0]);
		ck_assert(tu_await_at_least(ready, 1, POLL_S));
		if (i & 1) {
			/* Anywhere after counting in: maybe still holding the lock. */
			tu_kill_child(victim);
		}
		live = tu_fork(cond_waiter, &a[1]);
		ck_assert(tu_await_at_least(ready, 2, POLL_S));
		ck_assert(tu_await_sleeping(live, POLL_S));
		if (!(i & 1)) {
			ck_assert(tu_await_sleeping(victim, POLL_S));
			tu_kill_child(victim);
		}
		r = shmkit_lock_acquire_timeout(l, CHILD_WAIT);
		ck_assert_msg(r == 0 || r == SHMKIT_OWNER_DIED, "acquire: %d", r);
		ck_assert_int_eq(shmkit_cond_notify_all(c), 0);
		ck_assert_int_eq(shmkit_lock_release(l), 0);
		ck_assert_int_eq(tu_wait_child(live, REAP_S), 0);
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
			tu_sleep_ms(1); /* let the shelf run empty now and then */
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
	char cn[TU_NAME_SIZE], sn[TU_NAME_SIZE], xn[TU_NAME_SIZE];
	struct customer_arg ca[CUSTOMERS];
	shmkit_value *loaves, *closed;
	pid_t pid[CUSTOMERS + 1];
	struct bakery b;
	shmkit_cond *c;
	int i, total = 0;

	b = (struct bakery){ tu_name(cn, "bc"), tu_name(sn, "bs"), tu_name(xn, "bx"),
			     tu_shared(CUSTOMERS * sizeof(_Atomic int)) };
	ck_assert_int_eq(shmkit_cond_create(cn, 0, &c), 0);
	ck_assert_int_eq(shmkit_value_create(sn, 0, 0, &loaves), 0);
	ck_assert_int_eq(shmkit_value_create(xn, 0, 0, &closed), 0);
	for (i = 0; i < CUSTOMERS; i++) {
		ca[i] = (struct customer_arg){ &b, i };
		pid[i] = tu_fork(customer, &ca[i]);
	}
	pid[CUSTOMERS] = tu_fork(baker, &b);
	for (i = 0; i <= CUSTOMERS; i++)
		ck_assert_int_eq(tu_wait_child(pid[i], REAP_S), 0);
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

static Suite *cond_suite(void)
{
	Suite *s = suite_create("cond");
	TCase *tc;

	tc = tu_tcase(s, "cond", 120);
	tcase_add_test(tc, test_cond_basic);
	tcase_add_test(tc, test_cond_wait_for);
	tcase_add_test(tc, test_cond_producer_consumer);
	tcase_add_test(tc, test_cond_notify_counts);
	tcase_add_test(tc, test_cond_notify_all);
	tcase_add_test(tc, test_cond_killed_waiter);
	tcase_add_test(tc, test_cond_bakery);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(cond_suite());
}
