/*
 * Value and Array: load/store/cas/add in the three add modes, bounds, bad arguments, and
 * forked processes adding at once (atomic and locked exact, racy never above the total),
 * children that open a Value by name rather than inherit it, and the embedded Lock.
 */
#include "config.h"

#include <sched.h>

#include "testutil.h"

#define NPROC 4
#define NADD 100000

static const enum shmkit_add_mode modes[] = { SHMKIT_ADD_RACY, SHMKIT_ADD_ATOMIC,
					      SHMKIT_ADD_LOCKED };

START_TEST(test_value_ops)
{
	enum shmkit_add_mode how = modes[_i];
	char name[TU_NAME_SIZE];
	shmkit_value *v = NULL, *v2 = NULL;
	int64_t e, r;

	tu_name_kind(name, "val", shmkit_value_unlink);
	ck_assert_int_eq(shmkit_value_create(name, 42, 0, &v), 0);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(shmkit_value_load(v), 42);
	ck_assert_int_eq(shmkit_value_open(name, &v2), 0);
	ck_assert_int_eq(shmkit_value_load(v2), 42);

	shmkit_value_store(v, -7);
	ck_assert_int_eq(shmkit_value_load(v2), -7);
	shmkit_value_store(v, INT64_MIN);
	ck_assert(shmkit_value_load(v2) == INT64_MIN);
	shmkit_value_store(v, 10);

	/* cas: success, then failure reporting what it saw */
	e = 10;
	ck_assert_int_eq(shmkit_value_cas(v, &e, 20), 0);
	ck_assert_int_eq(e, 10);
	ck_assert_int_eq(shmkit_value_load(v2), 20);
	e = 10;
	ck_assert_int_eq(shmkit_value_cas(v2, &e, 30), -EAGAIN);
	ck_assert_int_eq(e, 20);
	ck_assert_int_eq(shmkit_value_load(v), 20);
	ck_assert_int_eq(shmkit_value_cas(v, NULL, 1), -EINVAL);

	/* add */
	r = 0;
	ck_assert_int_eq(shmkit_value_add(v, 5, how, &r), 0);
	ck_assert_int_eq(r, 25);
	ck_assert_int_eq(shmkit_value_add(v2, -30, how, &r), 0);
	ck_assert_int_eq(r, -5);
	ck_assert_int_eq(shmkit_value_add(v, 1, how, NULL), 0);
	ck_assert_int_eq(shmkit_value_load(v2), -4);
	ck_assert_int_eq(shmkit_value_add(v, 0, how, &r), 0);
	ck_assert_int_eq(r, -4);
	/* the locked add leaves the Value's lock free */
	ck_assert_int_eq(shmkit_lock_holder(shmkit_value_lock(v)), 0);

	/* bad mode: refused, nothing changes */
	r = 1234;
	ck_assert_int_eq(shmkit_value_add(v, 5, (enum shmkit_add_mode)3, &r), -EINVAL);
	ck_assert_int_eq(shmkit_value_add(v, 5, (enum shmkit_add_mode)-1, &r), -EINVAL);
	ck_assert_int_eq(r, 1234);
	ck_assert_int_eq(shmkit_value_load(v), -4);

	ck_assert_int_eq(shmkit_value_close(v2), 0);
	ck_assert_int_eq(shmkit_value_close(v), 0);
	ck_assert_int_eq(shmkit_value_unlink(name), 0);
	ck_assert_int_eq(shmkit_value_open(name, &v), -ENOENT);
	ck_assert_int_eq(shmkit_value_unlink(name), -ENOENT);
}
END_TEST

START_TEST(test_value_args)
{
	shmkit_value *v = NULL;

	ck_assert_int_eq(shmkit_value_create(NULL, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(shmkit_value_open("/x", NULL), -EINVAL);
	ck_assert_int_eq(shmkit_value_create(NULL, 0, 0100000, &v), -EINVAL);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(shmkit_value_create(NULL, INT64_MAX, 0, &v), 0);
	ck_assert(shmkit_value_load(v) == INT64_MAX);
	ck_assert_int_eq(shmkit_value_close(v), 0);
}
END_TEST

START_TEST(test_array_ops)
{
	enum shmkit_add_mode how = modes[_i];
	char name[TU_NAME_SIZE];
	shmkit_array *a = NULL, *a2 = NULL;
	const size_t len = 17;
	int64_t x, e, r;
	size_t i;

	tu_name_kind(name, "arr", shmkit_array_unlink);
	ck_assert_int_eq(shmkit_array_create(name, len, 0, &a), 0);
	ck_assert_int_eq(shmkit_array_open(name, &a2), 0);
	ck_assert_uint_eq(shmkit_array_len(a), len);
	ck_assert_uint_eq(shmkit_array_len(a2), len);
	for (i = 0; i < len; i++) {
		x = -1;
		ck_assert_int_eq(shmkit_array_load(a2, i, &x), 0);
		ck_assert_int_eq(x, 0);
	}
	for (i = 0; i < len; i++)
		ck_assert_int_eq(shmkit_array_store(a, i, (int64_t)(i * 100)), 0);
	for (i = 0; i < len; i++) {
		ck_assert_int_eq(shmkit_array_add(a2, i, (int64_t)i, how, &r), 0);
		ck_assert_int_eq(r, (int64_t)(i * 101));
	}
	/* cells are independent */
	for (i = 0; i < len; i++) {
		ck_assert_int_eq(shmkit_array_load(a, i, &x), 0);
		ck_assert_int_eq(x, (int64_t)(i * 101));
	}
	e = 303;
	ck_assert_int_eq(shmkit_array_cas(a, 3, &e, -3), 0);
	e = 303;
	ck_assert_int_eq(shmkit_array_cas(a2, 3, &e, 9), -EAGAIN);
	ck_assert_int_eq(e, -3);
	ck_assert_int_eq(shmkit_array_cas(a, 3, NULL, 9), -EINVAL);
	ck_assert_int_eq(shmkit_array_add(a, 16, 1, how, NULL), 0);
	ck_assert_int_eq(shmkit_array_load(a2, 16, &x), 0);
	ck_assert_int_eq(x, 1617);
	ck_assert_int_eq(shmkit_array_load(a, 0, NULL), -EINVAL);

	/* bounds: every operation, nothing touched */
	x = 77;
	e = 0;
	ck_assert_int_eq(shmkit_array_load(a, len, &x), -ERANGE);
	ck_assert_int_eq(shmkit_array_load(a, (size_t)-1, &x), -ERANGE);
	ck_assert_int_eq(x, 77);
	ck_assert_int_eq(shmkit_array_store(a, len, 1), -ERANGE);
	ck_assert_int_eq(shmkit_array_store(a, SIZE_MAX, 1), -ERANGE);
	ck_assert_int_eq(shmkit_array_cas(a, len, &e, 1), -ERANGE);
	ck_assert_int_eq(shmkit_array_add(a, len, 1, how, &x), -ERANGE);
	ck_assert_int_eq(shmkit_array_add(a, len + 1000000, 1, how, &x), -ERANGE);
	ck_assert_int_eq(x, 77);

	r = 5;
	ck_assert_int_eq(shmkit_array_add(a, 0, 1, (enum shmkit_add_mode)3, &r), -EINVAL);
	ck_assert_int_eq(r, 5);
	ck_assert_int_eq(shmkit_lock_holder(shmkit_array_lock(a)), 0);

	ck_assert_int_eq(shmkit_array_close(a2), 0);
	ck_assert_int_eq(shmkit_array_close(a), 0);
	ck_assert_int_eq(shmkit_array_unlink(name), 0);
}
END_TEST

START_TEST(test_array_len)
{
	shmkit_array *a = NULL;

	ck_assert_int_eq(shmkit_array_create(NULL, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(shmkit_array_create(NULL, (1u << 24) + 1, 0, &a), -EINVAL);
	ck_assert_int_eq(shmkit_array_create(NULL, SIZE_MAX, 0, &a), -EINVAL);
	ck_assert_ptr_null(a);
	ck_assert_int_eq(shmkit_array_create(NULL, 1, 0, NULL), -EINVAL);
	ck_assert_int_eq(shmkit_array_create(NULL, 1, 0, &a), 0);
	ck_assert_uint_eq(shmkit_array_len(a), 1);
	ck_assert_int_eq(shmkit_array_close(a), 0);
	ck_assert_int_eq(shmkit_array_create(NULL, 1u << 24, 0, &a), 0);
	ck_assert_uint_eq(shmkit_array_len(a), 1u << 24);
	ck_assert_int_eq(shmkit_array_store(a, (1u << 24) - 1, 5), 0);
	ck_assert_int_eq(shmkit_array_store(a, 1u << 24, 5), -ERANGE);
	ck_assert_int_eq(shmkit_array_close(a), 0);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* Processes adding at once                                                                     */

struct adders {
	const char *name;      /* open by name when set, else use the inherited handle */
	shmkit_value *v;
	shmkit_array *a;       /* also add 1 to cell [child] and to cell [NPROC] */
	enum shmkit_add_mode how;
	_Atomic int ready;
	_Atomic int go;
};

struct adder {
	struct adders *ad;
	int idx;
};

static int child_add(void *arg)
{
	struct adders *ad = ((struct adder *)arg)->ad;
	int me = ((struct adder *)arg)->idx;
	shmkit_value *v = ad->v;
	int i, rc;

	if (ad->name && (rc = shmkit_value_open(ad->name, &v)))
		return 10;
	/* start together, so the adds really overlap */
	atomic_fetch_add(&ad->ready, 1);
	while (!atomic_load(&ad->go))
		sched_yield();
	for (i = 0; i < NADD; i++) {
		if (shmkit_value_add(v, 1, ad->how, NULL))
			return 11;
		if (ad->a && (shmkit_array_add(ad->a, (size_t)me, 1, ad->how, NULL) ||
			      shmkit_array_add(ad->a, NPROC, 1, ad->how, NULL)))
			return 12;
	}
	if (ad->name)
		shmkit_value_close(v);
	return 0;
}

/* Run NPROC adders, each NADD adds; the Value's final value. */
static int64_t run_adders(struct adders *ad)
{
	struct adder arg[NPROC];
	pid_t pids[NPROC];
	int i;

	for (i = 0; i < NPROC; i++) {
		arg[i].ad = ad;
		arg[i].idx = i;
		pids[i] = tu_fork(child_add, &arg[i]);
	}
	while (atomic_load(&ad->ready) < NPROC)
		tu_sleep_ms(1);
	atomic_store(&ad->go, 1);
	ck_assert_int_eq(tu_wait_children(pids, NPROC, 120), 0);
	return shmkit_value_load(ad->v);
}

START_TEST(test_adders_atomic)
{
	struct adders *ad = tu_shared(sizeof(*ad));
	int64_t x;
	int i;

	ck_assert_int_eq(shmkit_value_create(NULL, 0, 0, &ad->v), 0);
	ck_assert_int_eq(shmkit_array_create(NULL, NPROC + 1, 0, &ad->a), 0);
	ad->how = SHMKIT_ADD_ATOMIC;
	ck_assert_int_eq(run_adders(ad), NPROC * NADD);
	for (i = 0; i < NPROC; i++) {
		ck_assert_int_eq(shmkit_array_load(ad->a, (size_t)i, &x), 0);
		ck_assert_int_eq(x, NADD);
	}
	ck_assert_int_eq(shmkit_array_load(ad->a, NPROC, &x), 0);
	ck_assert_int_eq(x, NPROC * NADD);
	shmkit_value_close(ad->v);
	shmkit_array_close(ad->a);
}
END_TEST

START_TEST(test_adders_locked)
{
	struct adders *ad = tu_shared(sizeof(*ad));
	int64_t x;

	ck_assert_int_eq(shmkit_value_create(NULL, 0, 0, &ad->v), 0);
	ck_assert_int_eq(shmkit_array_create(NULL, NPROC + 1, 0, &ad->a), 0);
	ad->how = SHMKIT_ADD_LOCKED;
	ck_assert_int_eq(run_adders(ad), NPROC * NADD);
	ck_assert_int_eq(shmkit_array_load(ad->a, NPROC, &x), 0);
	ck_assert_int_eq(x, NPROC * NADD);
	ck_assert_int_eq(shmkit_lock_holder(shmkit_value_lock(ad->v)), 0);
	ck_assert_int_eq(shmkit_lock_holder(shmkit_array_lock(ad->a)), 0);
	shmkit_value_close(ad->v);
	shmkit_array_close(ad->a);
}
END_TEST

/* Racy adds lose updates, but can never invent any. */
START_TEST(test_adders_racy)
{
	struct adders *ad = tu_shared(sizeof(*ad));
	int64_t total, x;

	ck_assert_int_eq(shmkit_value_create(NULL, 0, 0, &ad->v), 0);
	ck_assert_int_eq(shmkit_array_create(NULL, NPROC + 1, 0, &ad->a), 0);
	ad->how = SHMKIT_ADD_RACY;
	total = run_adders(ad);
	/* Every store is some earlier value + 1; no lower bound beyond that survives bad luck. */
	ck_assert_int_le(total, NPROC * NADD);
	ck_assert_int_ge(total, 1);
	/* a cell only one process adds to loses nothing */
	ck_assert_int_eq(shmkit_array_load(ad->a, 0, &x), 0);
	ck_assert_int_eq(x, NADD);
	ck_assert_int_eq(shmkit_array_load(ad->a, NPROC, &x), 0);
	ck_assert_int_le(x, NPROC * NADD);
	shmkit_value_close(ad->v);
	shmkit_array_close(ad->a);
}
END_TEST

/* Children that open the Value by name, not inherit it. */
START_TEST(test_adders_by_name)
{
	struct adders *ad = tu_shared(sizeof(*ad));
	static char name[TU_NAME_SIZE];

	tu_name_kind(name, "adders", shmkit_value_unlink);
	ck_assert_int_eq(shmkit_value_create(name, 1000, 0, &ad->v), 0);
	ad->name = name;
	ad->how = modes[_i];
	if (ad->how == SHMKIT_ADD_RACY) {
		ck_assert_int_le(run_adders(ad), 1000 + NPROC * NADD);
	} else {
		ck_assert_int_eq(run_adders(ad), 1000 + NPROC * NADD);
	}
	shmkit_value_close(ad->v);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* The embedded Lock                                                                            */

struct locked {
	shmkit_value *v;
	shmkit_array *a;
	_Atomic int started;
	_Atomic int done;
};

static int child_locked_add(void *arg)
{
	struct locked *o = arg;
	int64_t r = 0;

	atomic_store(&o->started, 1);
	if (shmkit_value_add(o->v, 1, SHMKIT_ADD_LOCKED, &r) != 0 || r != 2)
		return 1;
	if (shmkit_array_add(o->a, 1, 1, SHMKIT_ADD_LOCKED, &r) != 0 || r != 1)
		return 2;
	atomic_store(&o->done, 1);
	return 0;
}

/* A locked add waits for whoever holds the object's Lock: it is the same lock. */
START_TEST(test_locked_add_uses_lock)
{
	struct locked *o = tu_shared(sizeof(*o));
	pid_t pid;

	ck_assert_int_eq(shmkit_value_create(NULL, 0, 0, &o->v), 0);
	ck_assert_int_eq(shmkit_array_create(NULL, 2, 0, &o->a), 0);
	ck_assert_int_eq(shmkit_lock_acquire(shmkit_value_lock(o->v)), 0);
	ck_assert_int_eq(shmkit_lock_holder(shmkit_value_lock(o->v)), getpid());
	pid = tu_fork(child_locked_add, o);
	while (!atomic_load(&o->started))
		tu_sleep_ms(1);
	/* an atomic add does not take the lock */
	ck_assert_int_eq(shmkit_value_add(o->v, 1, SHMKIT_ADD_ATOMIC, NULL), 0);
	tu_sleep_ms(100);
	ck_assert_int_eq(atomic_load(&o->done), 0);
	ck_assert_int_eq(shmkit_value_load(o->v), 1);
	ck_assert_int_eq(shmkit_lock_acquire(shmkit_array_lock(o->a)), 0);
	ck_assert_int_eq(shmkit_lock_release(shmkit_value_lock(o->v)), 0);
	tu_sleep_ms(100);
	ck_assert_int_eq(atomic_load(&o->done), 0);
	ck_assert_int_eq(shmkit_value_load(o->v), 2);
	ck_assert_int_eq(shmkit_lock_release(shmkit_array_lock(o->a)), 0);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(atomic_load(&o->done), 1);
	/* borrowed locks are closed with their object, not on their own */
	ck_assert_int_eq(shmkit_lock_close(shmkit_value_lock(o->v)), -EINVAL);
	ck_assert_int_eq(shmkit_lock_close(shmkit_array_lock(o->a)), -EINVAL);
	shmkit_value_close(o->v);
	shmkit_array_close(o->a);
}
END_TEST

static int child_die_holding(void *arg)
{
	shmkit_lock *l = arg;

	if (shmkit_lock_acquire(l) != 0)
		return 1;
	raise(SIGKILL);
	return 2;
}

/* A locked add after the holder died reports it once, with the add done. */
START_TEST(test_locked_add_owner_died)
{
	shmkit_value *v;
	shmkit_array *a;
	int64_t r = 0;
	pid_t pid;

	ck_assert_int_eq(shmkit_value_create(NULL, 10, 0, &v), 0);
	ck_assert_int_eq(shmkit_array_create(NULL, 3, 0, &a), 0);
	pid = tu_fork(child_die_holding, shmkit_value_lock(v));
	ck_assert_int_eq(tu_wait_child(pid, 30), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_value_add(v, 1, SHMKIT_ADD_LOCKED, &r), SHMKIT_OWNER_DIED);
	ck_assert_int_eq(r, 11);
	ck_assert_int_eq(shmkit_value_add(v, 1, SHMKIT_ADD_LOCKED, &r), 0);
	ck_assert_int_eq(r, 12);
	ck_assert_int_eq(shmkit_lock_holder(shmkit_value_lock(v)), 0);

	pid = tu_fork(child_die_holding, shmkit_array_lock(a));
	ck_assert_int_eq(tu_wait_child(pid, 30), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_array_add(a, 2, 5, SHMKIT_ADD_LOCKED, &r), SHMKIT_OWNER_DIED);
	ck_assert_int_eq(r, 5);
	ck_assert_int_eq(shmkit_array_add(a, 2, 5, SHMKIT_ADD_LOCKED, &r), 0);
	ck_assert_int_eq(r, 10);
	shmkit_value_close(v);
	shmkit_array_close(a);
}
END_TEST

static Suite *value_suite(void)
{
	Suite *s = suite_create("value");
	TCase *tc;

	tc = tu_tcase(s, "ops", 60);
	tcase_add_loop_test(tc, test_value_ops, 0, 3);
	tcase_add_test(tc, test_value_args);
	tcase_add_loop_test(tc, test_array_ops, 0, 3);
	tcase_add_test(tc, test_array_len);

	tc = tu_tcase(s, "processes", 300);
	tcase_add_test(tc, test_adders_atomic);
	tcase_add_test(tc, test_adders_locked);
	tcase_add_test(tc, test_adders_racy);
	tcase_add_loop_test(tc, test_adders_by_name, 0, 3);

	tc = tu_tcase(s, "lock", 60);
	tcase_add_test(tc, test_locked_add_uses_lock);
	tcase_add_test(tc, test_locked_add_owner_died);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(value_suite());
}
