/*
 * White-box tests of holds (lib/hold.c): a name is removed "unused" only when no open handle of
 * any process holds it, a fork child holds what it inherited, a handed descriptor holds, and an
 * opener that loses the race to a remover fails instead of using an unnamed object.
 */
#include "config.h"

#include <pthread.h>

#include "hold.h"
#include "lease.h"
#include "testutil.h"

static bool exists(const char *name)
{
	char path[TU_NAME_SIZE + 16];

	return access(tu_shm_path(path, sizeof(path), name), F_OK) == 0;
}

START_TEST(test_held_while_any_handle_is_open)
{
	char name[TU_NAME_SIZE];
	shmkit_lock *a, *b;

	tu_name(name, "hold");
	ck_assert_int_eq(shmkit_lock_create(name, 0, 0, &a), 0);
	ck_assert_int_eq(shmkit_lock_open(name, &b), 0);
	ck_assert_int_eq(shmkit__remove_unused(name), -EBUSY);
	ck_assert_int_eq(shmkit_lock_close(a), 0);
	ck_assert_int_eq(shmkit__remove_unused(name), -EBUSY); /* b still holds it */
	ck_assert(exists(name));
	ck_assert_int_eq(shmkit_lock_close(b), 0);
	ck_assert_int_eq(shmkit__remove_unused(name), 0);
	ck_assert(!exists(name));
	ck_assert_int_eq(shmkit__remove_unused(name), -ENOENT);
}
END_TEST

struct child_arg {
	const char *name;
	int go[2]; /* the parent writes a byte when the child may close and leave */
};

static int child_holds(void *p)
{
	struct child_arg *c = p;
	char x;

	/* The inherited handle is all the child has: it must hold the object by itself. */
	return read(c->go[0], &x, 1) == 1 ? 0 : 1;
}

START_TEST(test_fork_child_holds_what_it_inherited)
{
	char name[TU_NAME_SIZE];
	struct child_arg c;
	shmkit_queue *q;
	struct shmkit_queue_attr attr = { .capacity = 4, .max_size = 64 };
	pid_t pid;

	c.name = tu_name(name, "holdfork");
	ck_assert_int_eq(pipe(c.go), 0);
	ck_assert_int_eq(shmkit_queue_create(name, &attr, &q), 0);
	pid = tu_fork(child_holds, &c);
	ck_assert_int_eq(shmkit_queue_close(q), 0);
	ck_assert_int_eq(shmkit__remove_unused(name), -EBUSY);
	ck_assert_int_eq(write(c.go[1], "x", 1), 1);
	ck_assert_int_eq(tu_wait_child(pid, 30), 0);
	ck_assert_int_eq(shmkit__remove_unused(name), 0);
	ck_assert(!exists(name));
}
END_TEST

START_TEST(test_handed_descriptor_holds)
{
	char name[TU_NAME_SIZE];
	shmkit_event *e;
	int fd;

	tu_name(name, "holdfd");
	ck_assert_int_eq(shmkit_event_create(name, 0, &e), 0);
	fd = shmkit__hold_open(name);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmkit_event_close(e), 0);
	ck_assert_int_eq(shmkit__remove_unused(name), -EBUSY);
	close(fd);
	ck_assert_int_eq(shmkit__remove_unused(name), 0);
	ck_assert_int_eq(shmkit__hold_open(name), -ENOENT);
}
END_TEST

/* A remover holding the hold byte exclusively (as remove_unused does while it removes): an
 * opener that came meanwhile waits for it, then finds the name gone instead of keeping an
 * object nobody can open any more. */
struct opener {
	const char *name;
	int rc;
};

static void *open_lock(void *p)
{
	struct opener *o = p;
	shmkit_lock *l;

	o->rc = shmkit_lock_open(o->name, &l);
	if (o->rc == 0)
		shmkit_lock_close(l);
	return NULL;
}

START_TEST(test_opener_waiting_for_a_remover_fails)
{
	char name[TU_NAME_SIZE];
	struct opener o = { .rc = 1 };
	struct timespec nap = { 0, 200 * 1000000L };
	shmkit_lock *l;
	pthread_t t;
	int fd;

	o.name = tu_name(name, "holdrace");
	ck_assert_int_eq(shmkit_lock_create(name, 0, 0, &l), 0);
	ck_assert_int_eq(shmkit_lock_close(l), 0);
	fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmkit__lease_take(fd, SHMKIT__LEASE_HOLD), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, open_lock, &o), 0);
	nanosleep(&nap, NULL); /* the opener is waiting for the hold byte by now */
	ck_assert_int_eq(o.rc, 1);
	ck_assert_int_eq(shm_unlink(name), 0);
	close(fd);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(o.rc, -ENOENT);
}
END_TEST

START_TEST(test_remove_unused_leaves_foreign_files)
{
	char name[TU_NAME_SIZE], junk[256];
	int fd;

	tu_name(name, "holdforeign");
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	memset(junk, 'x', sizeof(junk)); /* a full header's worth, no shmkit magic */
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	ck_assert_int_eq(shmkit__remove_unused(name), -EBADMSG);
	ck_assert(exists(name));
	shm_unlink(name);
}
END_TEST

static Suite *hold_suite(void)
{
	Suite *s = suite_create("hold");
	TCase *tc = tu_tcase(s, "hold", 60);

	tcase_add_test(tc, test_held_while_any_handle_is_open);
	tcase_add_test(tc, test_fork_child_holds_what_it_inherited);
	tcase_add_test(tc, test_handed_descriptor_holds);
	tcase_add_test(tc, test_opener_waiting_for_a_remover_fails);
	tcase_add_test(tc, test_remove_unused_leaves_foreign_files);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(hold_suite());
}
