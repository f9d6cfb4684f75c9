/* Queue and JoinableQueue: sizes, timeouts, EOF, join, and P x C fork stress with stamps. */
#include "config.h"

#include "testutil.h"

#define MS TU_NS_PER_MS

static shmkit_queue *make(const char *tag, char *name, uint32_t cap, uint32_t max,
			  uint32_t writers, uint32_t flags)
{
	struct shmkit_queue_attr a = { .capacity = cap, .max_size = max, .writers = writers,
				       .flags = flags };
	shmkit_queue *q = NULL;
	int rc;

	rc = shmkit_queue_create(tu_name_kind(name, tag, shmkit_queue_unlink), &a, &q);
	ck_assert_msg(rc == 0, "create: %s", shmkit_strerror(rc));
	return q;
}

START_TEST(test_sizes)
{
	char name[TU_NAME_SIZE], buf[300], big[300];
	shmkit_queue *q = make("sizes", name, 8, 256, 0, 0), *q2;
	int rc, i;

	for (i = 0; i < 256; i++)
		big[i] = (char)i;
	ck_assert_int_eq(shmkit_queue_put(q, "", 0), 0);
	ck_assert_int_eq(shmkit_queue_put(q, "x", 1), 0);
	ck_assert_int_eq(shmkit_queue_put(q, big, 256), 0);
	/* Too long: refused, nothing queued. */
	ck_assert_int_eq(shmkit_queue_put(q, big, 257), -EMSGSIZE);
	ck_assert_uint_eq(shmkit_queue_size(q), 3);
	/* Another handle, opened by name, sees the same messages. */
	ck_assert_int_eq(shmkit_queue_open(name, &q2), 0);
	ck_assert_int_eq(shmkit_queue_get(q2, buf, sizeof(buf)), 0);
	ck_assert_int_eq(shmkit_queue_get(q2, buf, 1), 1);
	ck_assert_int_eq(buf[0], 'x');
	/* A buffer too small: -EMSGSIZE, and the message stays for a larger one. */
	ck_assert_int_eq(shmkit_queue_get(q2, buf, 255), -EMSGSIZE);
	ck_assert_uint_eq(shmkit_queue_size(q2), 1);
	ck_assert_int_eq(shmkit_queue_get(q2, buf, sizeof(buf)), 256);
	ck_assert_mem_eq(buf, big, 256);
	ck_assert_int_eq(shmkit_queue_empty(q2), 1);
	ck_assert_uint_eq(shmkit_queue_max_size(q2), 256);
	rc = shmkit_queue_get_try(q2, buf, sizeof(buf));
	ck_assert_int_eq(rc, -EAGAIN);
	shmkit_queue_close(q2);
	shmkit_queue_close(q);
}
END_TEST

START_TEST(test_bad_args)
{
	struct shmkit_queue_attr a = { .capacity = 0, .max_size = 8 };
	char name[TU_NAME_SIZE];
	shmkit_queue *q;
	shmkit_lock *l;

	tu_name_kind(name, "bad", shmkit_queue_unlink);
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), -EINVAL);
	a.capacity = (1u << 20) + 1;
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), -EINVAL);
	a.capacity = 4;
	a.flags = 0x100;
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), -EINVAL);
	a.flags = 0;
	ck_assert_int_eq(shmkit_queue_create("noslash", &a, &q), -EINVAL);
	ck_assert_int_eq(shmkit_queue_open(name, &q), -ENOENT);
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), 0);
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), -EEXIST);
	shmkit_queue_close(q);
	ck_assert_int_eq(shmkit_lock_open(name, &l), -EPROTOTYPE);
}
END_TEST

START_TEST(test_capacity_and_timeouts)
{
	char name[TU_NAME_SIZE], buf[8];
	shmkit_queue *q = make("cap", name, 10, 8, 0, 0);
	int64_t t0, dt;
	int i;

	for (i = 0; i < 10; i++)
		ck_assert_int_eq(shmkit_queue_put_try(q, &i, sizeof(i)), 0);
	ck_assert_int_eq(shmkit_queue_full(q), 1);
	ck_assert_uint_eq(shmkit_queue_size(q), 10);
	ck_assert_int_eq(shmkit_queue_put_try(q, &i, sizeof(i)), -EAGAIN);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_queue_put_timeout(q, &i, sizeof(i), 50 * MS), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_msg(dt >= 50 * MS && dt < 5000 * MS, "put timeout took %lld ns", (long long)dt);
	for (i = 0; i < 10; i++) {
		int v;
		ck_assert_int_eq(shmkit_queue_get(q, &v, sizeof(v)), sizeof(v));
		ck_assert_int_eq(v, i);
	}
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_queue_get_timeout(q, buf, sizeof(buf), 50 * MS), -ETIMEDOUT);
	dt = tu_now_ns() - t0;
	ck_assert_msg(dt >= 50 * MS && dt < 5000 * MS, "get timeout took %lld ns", (long long)dt);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, buf, sizeof(buf), 0), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, buf, sizeof(buf), -1), -EINVAL);
	shmkit_queue_close(q);
}
END_TEST

static shmkit_queue *child_q;

static int put_three_and_detach(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 3; i++)
		if (shmkit_queue_put(child_q, &i, sizeof(i)))
			return 1;
	return shmkit_queue_detach_writer(child_q) ? 2 : 0;
}

START_TEST(test_eof_no_writers)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("eof", name, 4, 8, 0, 0);
	int i, v;
	pid_t pid;

	child_q = q;
	/* No writer ever attached: not EOF yet, a consumer waits. */
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 20 * MS), -ETIMEDOUT);
	pid = tu_fork(put_three_and_detach, NULL);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 10000 * MS), sizeof(v));
		ck_assert_int_eq(v, i);
	}
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 10000 * MS), -EPIPE);
	ck_assert_int_eq(shmkit_queue_get(q, &v, sizeof(v)), -EPIPE);
	ck_assert_int_eq(tu_wait_child(pid, 10), 0);
	/* Closed for writing for good. */
	ck_assert_int_eq(shmkit_queue_put(q, &v, sizeof(v)), -EPIPE);
	ck_assert_int_eq(shmkit_queue_attach_writer(q), -EPIPE);
	shmkit_queue_close(q);
}
END_TEST

START_TEST(test_eof_writers_n)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("eofn", name, 4, 8, 2, 0), *w1, *w2, *w3;
	struct shmkit_queue_stats st;
	int v = 7;

	ck_assert_int_eq(shmkit_queue_open(name, &w1), 0);
	ck_assert_int_eq(shmkit_queue_open(name, &w2), 0);
	ck_assert_int_eq(shmkit_queue_open(name, &w3), 0);
	ck_assert_int_eq(shmkit_queue_put(w1, &v, sizeof(v)), 0);
	ck_assert_int_eq(shmkit_queue_detach_writer(w1), 0);
	/* One of two writers came and went: not EOF. */
	ck_assert_int_eq(shmkit_queue_get(q, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 20 * MS), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_queue_attach_writer(w2), 0);
	ck_assert_int_eq(shmkit_queue_attach_writer(w3), -EDQUOT); /* writer quota used up */
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.writers_attached, 1);
	ck_assert_uint_eq(st.writers_total, 2);
	ck_assert_uint_eq(st.writers_expected, 2);
	ck_assert_int_eq(st.eof, 0);
	shmkit_queue_close(w2); /* close detaches */
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 1000 * MS), -EPIPE);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_int_eq(st.eof, 1);
	shmkit_queue_close(w1);
	shmkit_queue_close(w3);
	shmkit_queue_close(q);
}
END_TEST

/* One slot cannot tell "published" from "free for the next lap": capacity 1 must still hold
 * exactly one message and never overwrite it. */
START_TEST(test_capacity_one)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("cap1", name, 1, 8, 0, 0);
	int a = 1, b = 2, v, i;

	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(shmkit_queue_put_try(q, &a, sizeof(a)), 0);
		ck_assert_int_eq(shmkit_queue_full(q), 1);
		ck_assert_int_eq(shmkit_queue_put_try(q, &b, sizeof(b)), -EAGAIN);
		ck_assert_int_eq(shmkit_queue_get_try(q, &v, sizeof(v)), sizeof(v));
		ck_assert_int_eq(v, a);
		ck_assert_int_eq(shmkit_queue_get_try(q, &v, sizeof(v)), -EAGAIN);
	}
	shmkit_queue_close(q);
}
END_TEST

/* join after shutdown and a refused put returns at once. (The narrower race, a put claiming
 * just after the close and leaving a skipped position, is what shmkit__ring_busy handles;
 * tests/check_ring.c drives ring states directly.) */
START_TEST(test_join_after_shutdown)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("joinshut", name, 4, 8, 0, SHMKIT_JOINABLE);
	int v = 1;

	ck_assert_int_eq(shmkit_queue_put(q, &v, sizeof(v)), 0);
	ck_assert_int_eq(shmkit_queue_get(q, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(shmkit_queue_task_done(q), 0);
	ck_assert_int_eq(shmkit_queue_shutdown(q), 0);
	ck_assert_int_eq(shmkit_queue_put(q, &v, sizeof(v)), -EPIPE);
	ck_assert_int_eq(shmkit_queue_join_timeout(q, 2000 * MS), 0);
	shmkit_queue_close(q);
}
END_TEST

START_TEST(test_shutdown)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("shut", name, 4, 8, 0, 0);
	int v = 1;

	ck_assert_int_eq(shmkit_queue_put(q, &v, sizeof(v)), 0);
	ck_assert_int_eq(shmkit_queue_shutdown(q), 0);
	ck_assert_int_eq(shmkit_queue_put(q, &v, sizeof(v)), -EPIPE);
	ck_assert_int_eq(shmkit_queue_get(q, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(shmkit_queue_get(q, &v, sizeof(v)), -EPIPE);
	shmkit_queue_close(q);
}
END_TEST

static int writer_then_die(void *arg)
{
	int v = 42;

	(void)arg;
	if (shmkit_queue_put(child_q, &v, sizeof(v)))
		return 1;
	raise(SIGKILL);
	return 2;
}

START_TEST(test_dead_writer_eof)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("deadw", name, 4, 8, 0, 0);
	struct shmkit_queue_stats st;
	int64_t t0;
	int v;
	pid_t pid;

	child_q = q;
	pid = tu_fork(writer_then_die, NULL);
	ck_assert_int_eq(tu_wait_child(pid, 10), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 10000 * MS), sizeof(v));
	ck_assert_int_eq(v, 42);
	/* The dead writer never detached: EOF comes anyway once it is noticed. */
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 10000 * MS), -EPIPE);
	ck_assert_msg(tu_now_ns() - t0 < 2000 * MS, "EOF took too long");
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.participants_reaped, 1);
	ck_assert_uint_eq(st.writers_attached, 0);
	shmkit_queue_close(q);
}
END_TEST

/* A consumer that only polls (get_try) must see EOF from a dead writer as well. */
START_TEST(test_dead_writer_eof_polling)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("deadwp", name, 4, 8, 0, 0);
	int64_t deadline;
	int v, rc;
	pid_t pid;

	child_q = q;
	pid = tu_fork(writer_then_die, NULL);
	ck_assert_int_eq(tu_wait_child(pid, 10), 128 + SIGKILL);
	deadline = tu_now_ns() + 10000 * MS;
	do {
		rc = shmkit_queue_get_try(q, &v, sizeof(v));
		if (rc == -EAGAIN)
			tu_sleep_ms(5);
	} while ((rc == -EAGAIN || rc == sizeof(v)) && tu_now_ns() < deadline);
	ck_assert_int_eq(rc, -EPIPE);
	shmkit_queue_close(q);
}
END_TEST

/* Joinable: the washer -> dryer lesson. */
static int dryer(void *arg)
{
	int v, n = 0, rc;

	(void)arg;
	while ((rc = shmkit_queue_get_timeout(child_q, &v, sizeof(v), 10000 * MS)) >= 0) {
		n++;
		tu_sleep_ms(1);
		if (shmkit_queue_task_done(child_q))
			return 1;
	}
	return rc == -EPIPE && n > 0 ? 0 : 3;
}

START_TEST(test_joinable)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("join", name, 4, 8, 0, SHMKIT_JOINABLE), *plain;
	struct shmkit_queue_stats st;
	pid_t pid[2];
	int i;

	child_q = q;
	ck_assert_int_eq(shmkit_queue_task_done(q), -EINVAL);
	ck_assert_int_eq(shmkit_queue_join_timeout(q, 0), 0); /* nothing put */
	pid[0] = tu_fork(dryer, NULL);
	pid[1] = tu_fork(dryer, NULL);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(shmkit_queue_put(q, &i, sizeof(i)), 0);
	ck_assert_int_eq(shmkit_queue_join_timeout(q, 20000 * MS), 0);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.unfinished, 0);
	ck_assert_uint_eq(st.put_total, 20);
	shmkit_queue_detach_writer(q);
	ck_assert_int_eq(tu_wait_children(pid, 2, 20), 0);
	shmkit_queue_close(q);

	plain = make("plain", name, 4, 8, 0, 0);
	ck_assert_int_eq(shmkit_queue_join(plain), -ENOTSUP);
	ck_assert_int_eq(shmkit_queue_task_done(plain), -ENOTSUP);
	shmkit_queue_close(plain);
}
END_TEST

static int taker_then_die(void *arg)
{
	int v;

	(void)arg;
	if (shmkit_queue_get(child_q, &v, sizeof(v)) != sizeof(v))
		return 1;
	raise(SIGKILL); /* took a message and never called task_done */
	return 2;
}

START_TEST(test_join_dead_consumer)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("joind", name, 4, 8, 0, SHMKIT_JOINABLE);
	int v = 1;
	pid_t pid;

	child_q = q;
	ck_assert_int_eq(shmkit_queue_put(q, &v, sizeof(v)), 0);
	pid = tu_fork(taker_then_die, NULL);
	ck_assert_int_eq(tu_wait_child(pid, 10), 128 + SIGKILL);
	/* join must not wait forever for a task_done that will never come. */
	ck_assert_int_eq(shmkit_queue_join_timeout(q, 5000 * MS), 0);
	shmkit_queue_close(q);
}
END_TEST

/* Fork stress: P producers x C consumers, each message stamped and checked. */
#define STRESS_N 20000
struct stamp {
	uint32_t producer, seq, sum;
	uint8_t pad[20];
};

struct stress {
	_Atomic uint8_t seen[4][STRESS_N];
	_Atomic int bad;
};

static struct stress *sx;
static int stress_p;

static uint32_t checksum(const struct stamp *s)
{
	return s->producer * 2654435761u ^ s->seq * 40503u ^ 0x5a5a5a5au;
}

static int stress_producer(void *arg)
{
	struct stamp s = { .producer = (uint32_t)(intptr_t)arg };
	uint32_t i;

	memset(s.pad, (int)s.producer, sizeof(s.pad));
	for (i = 0; i < STRESS_N; i++) {
		s.seq = i;
		s.sum = checksum(&s);
		if (shmkit_queue_put_timeout(child_q, &s, sizeof(s), 30000 * MS))
			return 1;
	}
	return 0;
}

static int stress_consumer(void *arg)
{
	int64_t last[4] = { -1, -1, -1, -1 };
	struct stamp s;
	int rc;

	(void)arg;
	while ((rc = shmkit_queue_get_timeout(child_q, &s, sizeof(s), 30000 * MS)) >= 0) {
		if (rc != sizeof(s) || s.producer >= (uint32_t)stress_p || s.seq >= STRESS_N ||
		    s.sum != checksum(&s) || (int64_t)s.seq <= last[s.producer]) {
			atomic_fetch_add(&sx->bad, 1);
			continue;
		}
		last[s.producer] = s.seq;
		atomic_fetch_add(&sx->seen[s.producer][s.seq], 1);
	}
	return rc == -EPIPE ? 0 : 10;
}

static void stress(int P, int C)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("stress", name, 64, sizeof(struct stamp), (uint32_t)P, 0);
	pid_t pid[8];
	int i, j, n = 0;

	sx = tu_shared(sizeof(*sx));
	child_q = q;
	stress_p = P;
	for (i = 0; i < C; i++)
		pid[n++] = tu_fork(stress_consumer, NULL);
	for (i = 0; i < P; i++)
		pid[n++] = tu_fork(stress_producer, (void *)(intptr_t)i);
	ck_assert_int_eq(tu_wait_children(pid, n, 120), 0);
	ck_assert_int_eq(atomic_load(&sx->bad), 0);
	for (i = 0; i < P; i++)
		for (j = 0; j < STRESS_N; j++)
			ck_assert_msg(atomic_load(&sx->seen[i][j]) == 1,
				      "P%d C%d: message %d/%d delivered %d times", P, C, i, j,
				      atomic_load(&sx->seen[i][j]));
	munmap(sx, sizeof(*sx));
	shmkit_queue_close(q);
}

START_TEST(test_stress)
{
	static const int shape[] = { 1, 2, 4 };

	stress(shape[_i / 3], shape[_i % 3]);
}
END_TEST

START_TEST(test_anonymous_fork)
{
	struct shmkit_queue_attr a = { .capacity = 2, .max_size = 16 };
	shmkit_queue *q;
	int v;

	ck_assert_int_eq(shmkit_queue_create(NULL, &a, &q), 0);
	child_q = q;
	pid_t pid = tu_fork(put_three_and_detach, NULL);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 10000 * MS), sizeof(v));
		ck_assert_int_eq(v, i);
	}
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 10000 * MS), -EPIPE);
	ck_assert_int_eq(tu_wait_child(pid, 10), 0);
	shmkit_queue_close(q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("queue");
	TCase *tc;

	tu_skip_if_no_shm();
	tu_init();
	tc = tu_tcase(s, "api", 30);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_capacity_and_timeouts);
	tcase_add_test(tc, test_shutdown);
	tcase_add_test(tc, test_capacity_one);
	tcase_add_test(tc, test_join_after_shutdown);
	tcase_add_test(tc, test_anonymous_fork);
	tc = tu_tcase(s, "eof", 60);
	tcase_add_test(tc, test_eof_no_writers);
	tcase_add_test(tc, test_eof_writers_n);
	tcase_add_test(tc, test_dead_writer_eof);
	tcase_add_test(tc, test_dead_writer_eof_polling);
	tc = tu_tcase(s, "joinable", 60);
	tcase_add_test(tc, test_joinable);
	tcase_add_test(tc, test_join_dead_consumer);
	tc = tu_tcase(s, "stress", 300);
	tcase_add_loop_test(tc, test_stress, 0, 9);
	return tu_run(s);
}
