/*
 * Any object by name: shmkit_info(), shmkit_remove() and shmkit_kind_name() (the name rules of
 * shmkit_name_check() are in check_region.c, with the other region rules).
 *
 * info: every kind, with the fields lib/shmkit.h documents for it (and every field not of its
 * kind zero), a missing name, a file that is not a shmkit region, a FIFO (which must not block
 * the call). remove: every kind with what it owns (the semaphore's sem.NAME.sem), the
 * leftovers a killed create leaves (an empty file, a zeroed header, a semaphore without its
 * region), a foreign file (refused, nothing removed), a FIFO, and a name whose creator is still
 * at work (-EBUSY until it dies).
 */
#include "config.h"

#include "layout.h"
#include "testutil.h"

#define MODE 0640                     /* not the default 0600: info must report what was asked */
#define CHILD_WAIT (20 * TU_NS_PER_S) /* a child's waits: far beyond any correct run */
#define REAP_S 60.0                   /* how long a child may take in all */
#define POLL_S 20.0                   /* how long the parent polls for a child to get somewhere */

/* ------------------------------------------------------------------------------------------- */
/* Helpers                                                                                      */

/* The kind-specific fields of struct shmkit_info, for "fields not of its kind are zero". */
enum {
	HAS_FLAGS = 1 << 0,
	HAS_VALUE = 1 << 1,
	HAS_LEN = 1 << 2,
	HAS_LOCK = 1 << 3, /* holder, owner_deaths, lock_waiters, holder_waits_for */
	HAS_QUEUE = 1 << 4,
	HAS_QUEUE2 = 1 << 5,
	HAS_ENDS = 1 << 6,
};

/* shmkit_info(name) succeeds, with the fields every kind has filled as documented for an
 * object this process created with MODE, and every kind-specific field outside `may` zero. */
static struct shmkit_info info_of(const char *name, int kind, unsigned may)
{
	static const struct shmkit_queue_stats zero_stats;
	struct shmkit_info in;
	char path[TU_NAME_SIZE + 16];
	struct stat st;
	int err;

	err = shmkit_info(name, &in);
	ck_assert_msg(err == 0, "info %s: %s", name, shmkit_strerror(err));
	ck_assert_msg(in.kind == kind, "%s: kind %d (%s), want %s", name, in.kind,
		      shmkit_kind_name(in.kind), shmkit_kind_name(kind));
	ck_assert_int_eq(stat(tu_shm_path(path, sizeof(path), name), &st), 0);
	ck_assert_uint_eq(in.size, (uint64_t)st.st_size);
	ck_assert_uint_eq(in.mode, MODE);
	ck_assert_uint_eq(in.uid, geteuid());
	ck_assert_int_eq(in.creator, getpid());
	if (!(may & HAS_FLAGS))
		ck_assert_uint_eq(in.flags, 0);
	if (!(may & HAS_VALUE))
		ck_assert_int_eq(in.value, 0);
	if (!(may & HAS_LEN))
		ck_assert_uint_eq(in.len, 0);
	if (!(may & HAS_LOCK)) {
		ck_assert_int_eq(in.holder, 0);
		ck_assert_uint_eq(in.owner_deaths, 0);
		ck_assert_uint_eq(in.lock_waiters, 0);
		ck_assert_str_eq(in.holder_waits_for, "");
	}
	if (!(may & HAS_QUEUE))
		ck_assert(!memcmp(&in.queue, &zero_stats, sizeof(zero_stats)));
	if (!(may & HAS_QUEUE2))
		ck_assert(!memcmp(&in.queue2, &zero_stats, sizeof(zero_stats)));
	if (!(may & HAS_ENDS)) {
		ck_assert_int_eq(in.ends[0], 0);
		ck_assert_int_eq(in.ends[1], 0);
	}
	return in;
}

/* The lock fields of a free lock nobody waits for. */
static void assert_lock_free(const struct shmkit_info *in)
{
	ck_assert_int_eq(in->holder, 0);
	ck_assert_uint_eq(in->lock_waiters, 0);
	ck_assert_str_eq(in->holder_waits_for, "");
}

/* The region file of name exists (or not), and so does its semaphore's file. */
static void assert_files(const char *name, bool region, bool sem)
{
	char path[TU_NAME_SIZE + 16];

	tu_shm_path(path, sizeof(path), name);
	ck_assert_msg(tu_exists(path) == region, "%s %s", path, region ? "missing" : "left");
	tu_sem_path(path, sizeof(path), name);
	ck_assert_msg(tu_exists(path) == sem, "%s %s", path, sem ? "missing" : "left");
}

/* A FIFO under a region name (what another program may have put in /dev/shm). */
static void make_fifo(const char *name)
{
	char path[TU_NAME_SIZE + 16];

	ck_assert_msg(mkfifo(tu_shm_path(path, sizeof(path), name), 0600) == 0, "mkfifo: %s",
		      strerror(errno));
}

/* ------------------------------------------------------------------------------------------- */
/* info, kind by kind                                                                           */

START_TEST(test_info_value)
{
	char name[TU_NAME_SIZE];
	struct shmkit_info in;
	shmkit_value *v;

	tu_name_kind(name, "iv", shmkit_value_unlink);
	ck_assert_int_eq(shmkit_value_create(name, 42, MODE, &v), 0);
	/* len is left out: a Value reports 1 (one cell), the header documents len for arrays. */
	in = info_of(name, SHMKIT_KIND_VALUE, HAS_VALUE | HAS_LEN | HAS_LOCK);
	ck_assert_int_eq(in.value, 42);
	assert_lock_free(&in);
	ck_assert_int_eq(shmkit_value_store(v, -7), 0);
	ck_assert_int_eq(shmkit_lock_acquire(shmkit_value_lock(v)), 0);
	in = info_of(name, SHMKIT_KIND_VALUE, HAS_VALUE | HAS_LEN | HAS_LOCK);
	ck_assert_int_eq(in.value, -7);
	ck_assert_int_eq(in.holder, getpid());
	ck_assert_int_eq(shmkit_lock_release(shmkit_value_lock(v)), 0);
	in = info_of(name, SHMKIT_KIND_VALUE, HAS_VALUE | HAS_LEN | HAS_LOCK);
	ck_assert_int_eq(in.holder, 0);
	shmkit_value_close(v);
}
END_TEST

START_TEST(test_info_array)
{
	char name[TU_NAME_SIZE];
	struct shmkit_info in;
	shmkit_array *a;

	tu_name_kind(name, "ia", shmkit_array_unlink);
	ck_assert_int_eq(shmkit_array_create(name, 5, MODE, &a), 0);
	ck_assert_int_eq(shmkit_array_store(a, 0, 9), 0); /* cells are not in info: value stays 0 */
	in = info_of(name, SHMKIT_KIND_ARRAY, HAS_LEN | HAS_LOCK);
	ck_assert_uint_eq(in.len, 5);
	assert_lock_free(&in);
	ck_assert_int_eq(shmkit_lock_acquire(shmkit_array_lock(a)), 0);
	ck_assert_int_eq(info_of(name, SHMKIT_KIND_ARRAY, HAS_LEN | HAS_LOCK).holder, getpid());
	ck_assert_int_eq(shmkit_lock_release(shmkit_array_lock(a)), 0);
	shmkit_array_close(a);
}
END_TEST

/* Dies holding the lock: the next acquire recovers it and counts an owner death. */
static int child_die_holding(void *arg)
{
	shmkit_lock *l;

	if (shmkit_lock_open(arg, &l))
		return 10;
	if (shmkit_lock_acquire_timeout(l, CHILD_WAIT) < 0)
		return 11;
	return 0; /* exits holding it */
}

/* Waits for the lock the parent holds, then lets it go. */
static int child_wait_for(void *arg)
{
	shmkit_lock *l;

	if (shmkit_lock_open(arg, &l))
		return 10;
	if (shmkit_lock_acquire_timeout(l, CHILD_WAIT) < 0)
		return 11;
	shmkit_lock_release(l);
	shmkit_lock_close(l);
	return 0;
}

struct lock_watch {
	const char *name;
	int kind;
	struct shmkit_info in;
};

static bool lock_waited_on(void *arg)
{
	struct lock_watch *w = arg;

	w->in = info_of(w->name, w->kind, HAS_FLAGS | HAS_LOCK);
	return w->in.lock_waiters == 1;
}

/* Lock and RLock: flags, holder, owner deaths, waiters. (What a holder waits for, the
 * deadlock detector's display, is left to the detector's own tests: it goes through the
 * per-user wait-for graph every shmkit process on the machine shares.) */
START_TEST(test_info_lock)
{
	unsigned flags = _i ? SHMKIT_RECURSIVE : 0;
	char name[TU_NAME_SIZE];
	struct lock_watch w;
	struct shmkit_info in;
	shmkit_lock *l;
	pid_t pid;

	tu_name_kind(name, "il", shmkit_lock_unlink);
	ck_assert_int_eq(shmkit_lock_create(name, flags, MODE, &l), 0);
	in = info_of(name, SHMKIT_KIND_LOCK, HAS_FLAGS | HAS_LOCK);
	ck_assert_uint_eq(in.flags, flags);
	assert_lock_free(&in);
	ck_assert_uint_eq(in.owner_deaths, 0);

	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	ck_assert_int_eq(info_of(name, SHMKIT_KIND_LOCK, HAS_FLAGS | HAS_LOCK).holder, getpid());
	ck_assert_int_eq(shmkit_lock_release(l), 0);

	/* A holder that died: counted once recovered. */
	ck_assert_int_eq(tu_wait_child(tu_fork(child_die_holding, name), REAP_S), 0);
	ck_assert_int_eq(shmkit_lock_acquire_timeout(l, CHILD_WAIT), SHMKIT_OWNER_DIED);
	in = info_of(name, SHMKIT_KIND_LOCK, HAS_FLAGS | HAS_LOCK);
	ck_assert_uint_eq(in.owner_deaths, 1);
	ck_assert_int_eq(in.holder, getpid());

	/* We hold it; a child waits for it: one waiter, and we are waiting for nothing. */
	pid = tu_fork(child_wait_for, name);
	w = (struct lock_watch){ .name = name, .kind = SHMKIT_KIND_LOCK };
	if (!tu_await(lock_waited_on, &w, POLL_S)) {
		tu_kill_child(pid);
		ck_abort_msg("the child never waited for %s", name);
	}
	ck_assert_int_eq(w.in.holder, getpid());
	ck_assert_str_eq(w.in.holder_waits_for, "");
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	ck_assert_int_eq(tu_wait_child(pid, REAP_S), 0);
	in = info_of(name, SHMKIT_KIND_LOCK, HAS_FLAGS | HAS_LOCK);
	assert_lock_free(&in);
	shmkit_lock_close(l);
}
END_TEST

START_TEST(test_info_sem)
{
	unsigned flags = _i ? SHMKIT_BOUNDED : 0;
	char name[TU_NAME_SIZE];
	struct shmkit_info in;
	shmkit_sem *s;

	tu_name_kind(name, "is", shmkit_sem_unlink);
	ck_assert_int_eq(shmkit_sem_create(name, 3, flags, MODE, &s), 0);
	in = info_of(name, SHMKIT_KIND_SEM, HAS_FLAGS | HAS_VALUE);
	ck_assert_uint_eq(in.flags, flags);
	ck_assert_int_eq(in.value, 3);
	ck_assert_int_eq(shmkit_sem_acquire_try(s), 0);
	ck_assert_int_eq(info_of(name, SHMKIT_KIND_SEM, HAS_FLAGS | HAS_VALUE).value, 2);
	shmkit_sem_close(s);
}
END_TEST

START_TEST(test_info_queue)
{
	struct shmkit_queue_attr attr = { .capacity = 8, .max_size = 64, .writers = 2,
					  .flags = _i ? SHMKIT_JOINABLE : 0, .mode = MODE };
	char name[TU_NAME_SIZE], buf[64];
	struct shmkit_info in;
	shmkit_queue *q;
	int i;

	tu_name_kind(name, "iq", shmkit_queue_unlink);
	ck_assert_int_eq(shmkit_queue_create(name, &attr, &q), 0);
	in = info_of(name, SHMKIT_KIND_QUEUE, HAS_FLAGS | HAS_QUEUE);
	ck_assert_uint_eq(in.flags, attr.flags);
	ck_assert_uint_eq(in.queue.capacity, 8);
	ck_assert_uint_eq(in.queue.max_size, 64);
	ck_assert_uint_eq(in.queue.depth, 0);
	ck_assert_uint_eq(in.queue.writers_expected, 2);
	ck_assert_int_eq(in.queue.joinable, _i);
	ck_assert_int_eq(in.queue.eof, 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(shmkit_queue_put(q, "abc", 3), 0);
	ck_assert_int_eq(shmkit_queue_get(q, buf, sizeof(buf)), 3);
	in = info_of(name, SHMKIT_KIND_QUEUE, HAS_FLAGS | HAS_QUEUE);
	ck_assert_uint_eq(in.queue.depth, 2);
	ck_assert_uint_eq(in.queue.put_total, 3);
	ck_assert_uint_eq(in.queue.get_total, 1);
	ck_assert_uint_eq(in.queue.writers_attached, 1);
	ck_assert_uint_eq(in.queue.unfinished, _i ? 3 : 0);
	ck_assert_int_eq(shmkit_queue_shutdown(q), 0);
	ck_assert_int_eq(info_of(name, SHMKIT_KIND_QUEUE, HAS_FLAGS | HAS_QUEUE).queue.eof, 1);
	shmkit_queue_close(q);
}
END_TEST

/* Duplex (_i 0) and simplex (_i 1) pipes: both directions, and the ends' holders. */
START_TEST(test_info_pipe)
{
	unsigned flags = _i ? SHMKIT_SIMPLEX : 0;
	unsigned may = HAS_FLAGS | HAS_QUEUE | HAS_ENDS | (_i ? 0 : HAS_QUEUE2);
	char name[TU_NAME_SIZE];
	struct shmkit_info in;
	shmkit_pipe *p;

	tu_name_kind(name, "ip", shmkit_pipe_unlink);
	ck_assert_int_eq(shmkit_pipe_create(name, 4, 32, flags, MODE, &p), 0);
	in = info_of(name, SHMKIT_KIND_PIPE, may);
	ck_assert_uint_eq(in.flags, flags);
	ck_assert_uint_eq(in.queue.capacity, 4);
	ck_assert_uint_eq(in.queue.max_size, 32);
	ck_assert_uint_eq(in.queue.depth, 0);
	if (!_i) {
		ck_assert_uint_eq(in.queue2.capacity, 4);
		ck_assert_uint_eq(in.queue2.max_size, 32);
	}
	ck_assert_int_eq(in.ends[0], 0);
	ck_assert_int_eq(in.ends[1], 0);
	ck_assert_int_eq(shmkit_pipe_attach(p, 0), 0);
	ck_assert_int_eq(shmkit_pipe_send_try(p, "hello", 5), 0);
	in = info_of(name, SHMKIT_KIND_PIPE, may);
	ck_assert_int_eq(in.ends[0], getpid());
	ck_assert_int_eq(in.ends[1], 0);
	ck_assert_uint_eq(in.queue.depth, 1);
	ck_assert_uint_eq(in.queue2.depth, 0);
	shmkit_pipe_close(p);
}
END_TEST

START_TEST(test_info_event)
{
	char name[TU_NAME_SIZE];
	shmkit_event *e;

	tu_name_kind(name, "ie", shmkit_event_unlink);
	ck_assert_int_eq(shmkit_event_create(name, MODE, &e), 0);
	ck_assert_int_eq(info_of(name, SHMKIT_KIND_EVENT, HAS_VALUE).value, 0);
	ck_assert_int_eq(shmkit_event_set(e), 0);
	ck_assert_int_eq(info_of(name, SHMKIT_KIND_EVENT, HAS_VALUE).value, 1);
	ck_assert_int_eq(shmkit_event_clear(e), 0);
	ck_assert_int_eq(info_of(name, SHMKIT_KIND_EVENT, HAS_VALUE).value, 0);
	shmkit_event_close(e);
}
END_TEST

START_TEST(test_info_cond)
{
	char name[TU_NAME_SIZE];
	struct shmkit_info in;
	shmkit_cond *c;

	tu_name_kind(name, "ic", shmkit_cond_unlink);
	ck_assert_int_eq(shmkit_cond_create(name, MODE, &c), 0);
	in = info_of(name, SHMKIT_KIND_COND, HAS_FLAGS | HAS_LOCK);
	ck_assert_uint_eq(in.flags, SHMKIT_RECURSIVE); /* its lock is an RLock, as in Python */
	assert_lock_free(&in);
	ck_assert_int_eq(shmkit_lock_acquire(shmkit_cond_lock(c)), 0);
	ck_assert_int_eq(info_of(name, SHMKIT_KIND_COND, HAS_FLAGS | HAS_LOCK).holder, getpid());
	ck_assert_int_eq(shmkit_lock_release(shmkit_cond_lock(c)), 0);
	shmkit_cond_close(c);
}
END_TEST

static int child_barrier_wait(void *arg)
{
	shmkit_barrier *b;
	int r;

	if (shmkit_barrier_open(arg, &b))
		return 10;
	r = shmkit_barrier_wait_timeout(b, CHILD_WAIT);
	shmkit_barrier_close(b);
	return r >= 0 ? 0 : 11;
}

static bool one_waiting(void *arg)
{
	return info_of(arg, SHMKIT_KIND_BARRIER, HAS_VALUE | HAS_LEN).value == 1;
}

/* Parties in len, parties waiting now in value. */
START_TEST(test_info_barrier)
{
	char name[TU_NAME_SIZE];
	struct shmkit_info in;
	shmkit_barrier *b;
	pid_t pid;

	tu_name_kind(name, "ib", shmkit_barrier_unlink);
	ck_assert_int_eq(shmkit_barrier_create(name, 2, MODE, &b), 0);
	in = info_of(name, SHMKIT_KIND_BARRIER, HAS_VALUE | HAS_LEN);
	ck_assert_uint_eq(in.len, 2);
	ck_assert_int_eq(in.value, 0);
	pid = tu_fork(child_barrier_wait, name);
	if (!tu_await(one_waiting, name, POLL_S)) {
		tu_kill_child(pid);
		ck_abort_msg("the child never waited");
	}
	ck_assert_int_ge(shmkit_barrier_wait_timeout(b, CHILD_WAIT), 0);
	ck_assert_int_eq(tu_wait_child(pid, REAP_S), 0);
	in = info_of(name, SHMKIT_KIND_BARRIER, HAS_VALUE | HAS_LEN);
	ck_assert_uint_eq(in.len, 2);
	ck_assert_int_eq(in.value, 0);
	shmkit_barrier_close(b);
}
END_TEST

/* The name of every kind info reports, "unknown" for anything else. */
START_TEST(test_kind_name)
{
	static const char *const names[] = { "value", "array", "lock", "sem", "queue",
					     "pipe", "event", "cond", "barrier", "block" };
	int kind;

	for (kind = SHMKIT_KIND_VALUE; kind <= SHMKIT_KIND_BLOCK; kind++)
		ck_assert_str_eq(shmkit_kind_name(kind), names[kind - SHMKIT_KIND_VALUE]);
	ck_assert_str_eq(shmkit_kind_name(0), "unknown");
	ck_assert_str_eq(shmkit_kind_name(-1), "unknown");
	ck_assert_str_eq(shmkit_kind_name(SHMKIT_KIND_BLOCK + 1), "unknown");
	ck_assert_str_eq(shmkit_kind_name(1 << 30), "unknown");
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* info of what is not an object                                                                */

START_TEST(test_info_missing)
{
	char name[TU_NAME_SIZE];
	struct shmkit_info in;

	tu_name(name, "imiss");
	ck_assert_int_eq(shmkit_info(name, &in), -ENOENT);
	ck_assert_int_eq(shmkit_info("no slash", &in), -EINVAL);
	ck_assert_int_eq(shmkit_info("/sem.reserved", &in), -EINVAL);
	ck_assert_int_eq(shmkit_info(name, NULL), -EINVAL);
}
END_TEST

/* A file someone else made under the name: refused, and left as it was. */
START_TEST(test_info_foreign)
{
	char name[TU_NAME_SIZE], path[TU_NAME_SIZE + 16];
	struct shmkit_info in;
	struct stat st;

	tu_name(name, "iforeign");
	close(tu_raw_file(name, 4096, 0xa5));
	ck_assert_int_eq(shmkit_info(name, &in), -EBADMSG);
	ck_assert_int_eq(stat(tu_shm_path(path, sizeof(path), name), &st), 0);
	ck_assert_int_eq(st.st_size, 4096);
}
END_TEST

/* A FIFO under the name: opening one for reading blocks until a writer comes, which must not
 * happen to info or remove. SIGALRM (default action: the test dies) bounds them. */
START_TEST(test_info_remove_fifo)
{
	char name[TU_NAME_SIZE], path[TU_NAME_SIZE + 16];
	struct shmkit_info in;

	tu_name(name, "ififo");
	make_fifo(name);
	signal(SIGALRM, SIG_DFL);
	alarm(20);
	ck_assert_int_eq(shmkit_info(name, &in), -EBADMSG);
	ck_assert_int_eq(shmkit_remove(name), -EBADMSG);
	alarm(0);
	ck_assert(tu_exists(tu_shm_path(path, sizeof(path), name)));
}
END_TEST

/* ------------------------------------------------------------------------------------------- */
/* remove                                                                                       */

/* Every kind by name, closed or not, with what it owns; afterwards the name is free. */
START_TEST(test_remove_every_kind)
{
	struct shmkit_queue_attr qa = { .capacity = 4, .max_size = 16 };
	char name[TU_NAME_SIZE];
	void *h = NULL;
	int kind, err;

	for (kind = SHMKIT_KIND_VALUE; kind <= SHMKIT_KIND_BARRIER; kind++) {
		tu_name(name, shmkit_kind_name(kind));
		switch (kind) {
		case SHMKIT_KIND_VALUE:
			err = shmkit_value_create(name, 1, 0, (shmkit_value **)&h);
			break;
		case SHMKIT_KIND_ARRAY:
			err = shmkit_array_create(name, 3, 0, (shmkit_array **)&h);
			break;
		case SHMKIT_KIND_LOCK:
			err = shmkit_lock_create(name, 0, 0, (shmkit_lock **)&h);
			break;
		case SHMKIT_KIND_SEM:
			err = shmkit_sem_create(name, 1, 0, 0, (shmkit_sem **)&h);
			break;
		case SHMKIT_KIND_QUEUE:
			err = shmkit_queue_create(name, &qa, (shmkit_queue **)&h);
			break;
		case SHMKIT_KIND_PIPE:
			err = shmkit_pipe_create(name, 4, 16, 0, 0, (shmkit_pipe **)&h);
			break;
		case SHMKIT_KIND_EVENT:
			err = shmkit_event_create(name, 0, (shmkit_event **)&h);
			break;
		case SHMKIT_KIND_COND:
			err = shmkit_cond_create(name, 0, (shmkit_cond **)&h);
			break;
		default:
			err = shmkit_barrier_create(name, 2, 0, (shmkit_barrier **)&h);
			break;
		}
		ck_assert_msg(err == 0, "create %s: %s", name, shmkit_strerror(err));
		assert_files(name, true, kind == SHMKIT_KIND_SEM);
		err = shmkit_remove(name);
		ck_assert_msg(err == 0, "remove %s: %s", name, shmkit_strerror(err));
		assert_files(name, false, false);
		ck_assert_int_eq(shmkit_remove(name), -ENOENT);
		/* the handle outlives the name; closing it is still fine */
		switch (kind) {
		case SHMKIT_KIND_VALUE:
			ck_assert_int_eq(shmkit_value_load(h), 1);
			ck_assert_int_eq(shmkit_value_close(h), 0);
			break;
		case SHMKIT_KIND_ARRAY:
			ck_assert_int_eq(shmkit_array_close(h), 0);
			break;
		case SHMKIT_KIND_LOCK:
			ck_assert_int_eq(shmkit_lock_close(h), 0);
			break;
		case SHMKIT_KIND_SEM:
			ck_assert_int_eq(shmkit_sem_acquire_try(h), 0);
			ck_assert_int_eq(shmkit_sem_close(h), 0);
			break;
		case SHMKIT_KIND_QUEUE:
			ck_assert_int_eq(shmkit_queue_close(h), 0);
			break;
		case SHMKIT_KIND_PIPE:
			ck_assert_int_eq(shmkit_pipe_close(h), 0);
			break;
		case SHMKIT_KIND_EVENT:
			ck_assert_int_eq(shmkit_event_close(h), 0);
			break;
		case SHMKIT_KIND_COND:
			ck_assert_int_eq(shmkit_cond_close(h), 0);
			break;
		default:
			ck_assert_int_eq(shmkit_barrier_close(h), 0);
			break;
		}
	}
}
END_TEST

START_TEST(test_remove_missing)
{
	char name[TU_NAME_SIZE];

	tu_name(name, "rmiss");
	ck_assert_int_eq(shmkit_remove(name), -ENOENT);
	ck_assert_int_eq(shmkit_remove("no slash"), -EINVAL);
	ck_assert_int_eq(shmkit_remove("/sem.reserved"), -EINVAL);
	ck_assert_int_eq(shmkit_remove(NULL), -EINVAL);
}
END_TEST

/* A file without shmkit's header (_i 0: empty; _i 1: a header's worth of zeros, as a 1 MiB
 * file of zeros would be), with no creator at work: not provably ours, so remove and
 * remove_check refuse it with -EBADMSG and it stays. (Create links a name only once its header
 * is written: test_create_links_complete.) */
START_TEST(test_remove_headerless)
{
	char name[TU_NAME_SIZE];

	tu_name(name, "rleft");
	close(tu_raw_file(name, _i ? 4096 : 0, 0));
	ck_assert_int_eq(shmkit_remove_check(name), -EBADMSG);
	ck_assert_int_eq(shmkit_remove(name), -EBADMSG);
	assert_files(name, true, false);
	ck_assert_int_eq(shm_unlink(name), 0);
	ck_assert_int_eq(shmkit_remove_check(name), -ENOENT);
}
END_TEST

/* A name never appears without its header: a child creates and removes a large block (its
 * pages reserved before the header is written) again and again while we look at the name;
 * whenever it exists, it starts with shmkit's magic. */
struct churn {
	const char *name;
	_Atomic int done;
};

static int child_churn(void *arg)
{
	struct churn *c = arg;
	shmkit_block *b;
	int i;

	for (i = 0; i < 40; i++) {
		if (shmkit_block_create(c->name, 32u << 20, 0, &b))
			return 10 + i;
		shmkit_block_close(b);
		shmkit_block_unlink(c->name);
	}
	atomic_store(&c->done, 1);
	return 0;
}

START_TEST(test_create_links_complete)
{
	struct churn *c = tu_shared(sizeof(*c));
	char name[TU_NAME_SIZE];
	uint64_t magic;
	long seen = 0, bad = 0;
	pid_t pid;
	ssize_t n;
	int fd;

	int64_t deadline = tu_now_ns() + 30 * TU_NS_PER_S; /* the child's failure ends it */

	c->name = tu_name_kind(name, "rchurn", shmkit_block_unlink);
	pid = tu_fork(child_churn, c);
	while (!atomic_load(&c->done) && tu_now_ns() < deadline) {
		if ((fd = shm_open(name, O_RDONLY, 0)) < 0)
			continue;
		n = pread(fd, &magic, sizeof(magic), 0);
		seen++;
		if (n != (ssize_t)sizeof(magic) || magic != SHMKIT__MAGIC)
			bad++;
		close(fd);
	}
	ck_assert_int_eq(tu_wait_child(pid, POLL_S), 0);
	ck_assert_msg(seen > 0, "never saw the name");
	ck_assert_msg(bad == 0, "%ld of %ld looks found the name without its header", bad, seen);
}
END_TEST

/* A semaphore whose region is gone (killed between the two, or removed by hand): the
 * semaphore's file would keep the name from being created again. */
START_TEST(test_remove_sem_orphan)
{
	char name[TU_NAME_SIZE];
	shmkit_sem *s;

	tu_name_kind(name, "rorph", shmkit_sem_unlink);
	ck_assert_int_eq(shmkit_sem_create(name, 1, 0, 0, &s), 0);
	shmkit_sem_close(s);
	ck_assert_int_eq(shm_unlink(name), 0);
	assert_files(name, false, true);
	ck_assert_int_eq(shmkit_remove(name), 0);
	assert_files(name, false, false);
	ck_assert_int_eq(shmkit_remove(name), -ENOENT);
	ck_assert_int_eq(shmkit_sem_create(name, 2, 0, 0, &s), 0);
	ck_assert_int_eq(shmkit_sem_value(s), 2);
	shmkit_sem_close(s);
}
END_TEST

/* A file with garbage where the magic goes, or a shmkit-sized one with a wrong magic: not
 * ours, so refused with nothing removed and the content untouched. */
START_TEST(test_remove_foreign)
{
	char name[TU_NAME_SIZE];
	unsigned char buf[4096];
	ssize_t n;
	int fd, i;

	tu_name(name, "rforeign");
	fd = tu_raw_file(name, sizeof(buf), 0x5a);
	ck_assert_int_eq(shmkit_remove(name), -EBADMSG);
	assert_files(name, true, false);
	n = pread(fd, buf, sizeof(buf), 0);
	ck_assert_int_eq(n, (ssize_t)sizeof(buf));
	for (i = 0; i < (int)sizeof(buf); i++)
		ck_assert_int_eq(buf[i], 0x5a);
	close(fd);
}
END_TEST

/* A creator at its first step: the name exists, empty, and the creator holds its lease. */
struct creator {
	const char *name;
	_Atomic int ready;
};

static int child_creator(void *arg)
{
	struct creator *c = arg;
	int fd = shm_open(c->name, O_RDWR | O_CREAT | O_EXCL, 0600);

	if (fd < 0)
		return 10;
	if (tu_ofd_lock(c->name, SHMKIT__LEASE_CREATOR) < 0)
		return 11;
	atomic_store(&c->ready, 1);
	for (;;) /* at work until killed */
		pause();
}

/* While a live creator holds the creator's lease (region.c's fallback create, which makes the
 * name first), remove says -EBUSY and leaves the name; once the creator is killed (the kernel
 * drops its lease), the header-less file is not provably ours and stays. */
START_TEST(test_remove_busy)
{
	struct creator *c = tu_shared(sizeof(*c));
	char name[TU_NAME_SIZE];
	pid_t pid;

	c->name = tu_name(name, "rbusy");
	pid = tu_fork(child_creator, c);
	if (!tu_await_at_least(&c->ready, 1, POLL_S)) {
		tu_kill_child(pid);
		ck_abort_msg("creator never started");
	}
	ck_assert_int_eq(shmkit_remove(name), -EBUSY);
	ck_assert_int_eq(shmkit_remove(name), -EBUSY);
	assert_files(name, true, false);
	tu_kill_child(pid);
	/* Killed before writing a header: nothing says the file was shmkit's any more. */
	ck_assert_int_eq(shmkit_remove(name), -EBADMSG);
	assert_files(name, true, false);
	ck_assert_int_eq(shm_unlink(name), 0);
}
END_TEST

/* ------------------------------------------------------------------------------------------- */

static Suite *info_suite(void)
{
	Suite *s = suite_create("info");
	TCase *tc;

	tc = tu_tcase(s, "info", 120);
	tcase_add_test(tc, test_info_value);
	tcase_add_test(tc, test_info_array);
	tcase_add_loop_test(tc, test_info_lock, 0, 2);
	tcase_add_loop_test(tc, test_info_sem, 0, 2);
	tcase_add_loop_test(tc, test_info_queue, 0, 2);
	tcase_add_loop_test(tc, test_info_pipe, 0, 2);
	tcase_add_test(tc, test_info_event);
	tcase_add_test(tc, test_info_cond);
	tcase_add_test(tc, test_info_barrier);
	tcase_add_test(tc, test_kind_name);
	tcase_add_test(tc, test_info_missing);
	tcase_add_test(tc, test_info_foreign);
	tcase_add_test(tc, test_info_remove_fifo);

	tc = tu_tcase(s, "remove", 120);
	tcase_add_test(tc, test_remove_every_kind);
	tcase_add_test(tc, test_remove_missing);
	tcase_add_loop_test(tc, test_remove_headerless, 0, 2);
	tcase_add_test(tc, test_create_links_complete);
	tcase_add_test(tc, test_remove_sem_orphan);
	tcase_add_test(tc, test_remove_foreign);
	tcase_add_test(tc, test_remove_busy);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(info_suite());
}
