/* Queue batches (put_many/get_many) and zero-copy loans (reserve/commit, peek/release): order,
 * partial batches, sizes, busy and bad calls, fork stress, and SIGKILL in the middle of a batch
 * and during a loan (what the dead one held is skipped or counted lost; nobody stalls). */
#include "config.h"

#include <sys/uio.h>

#include "testutil.h"

#define MS TU_NS_PER_MS

static shmkit_queue *child_q;

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

START_TEST(test_batch_basic)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("batch", name, 8, 16, 0, 0);
	int v[12], out[12], i, got = 0, rc;
	struct iovec in[12], bufs[12];

	for (i = 0; i < 12; i++) {
		v[i] = 100 + i;
		in[i].iov_base = &v[i];
		in[i].iov_len = sizeof(int);
	}
	ck_assert_int_eq(shmkit_queue_put_many(q, in, 0), 0);
	/* 12 into a queue of 8: as many as fit, in order, then a try finds it full. */
	ck_assert_int_eq(shmkit_queue_put_many(q, in, 12), 8);
	ck_assert_int_eq(shmkit_queue_put_many_try(q, in + 8, 4), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_put_many_timeout(q, in + 8, 4, 10 * MS), -ETIMEDOUT);
	ck_assert_uint_eq(shmkit_queue_size(q), 8);
	/* Get in two batches of 5 buffers: 5 then the 3 left. */
	while (got < 8) {
		for (i = 0; i < 5; i++) {
			bufs[i].iov_base = &out[got + i];
			bufs[i].iov_len = sizeof(int);
		}
		rc = shmkit_queue_get_many(q, bufs, 5);
		ck_assert_int_eq(rc, got == 0 ? 5 : 3);
		for (i = 0; i < rc; i++)
			ck_assert_uint_eq(bufs[i].iov_len, sizeof(int));
		got += rc;
	}
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(out[i], 100 + i);
	ck_assert_int_eq(shmkit_queue_get_many_try(q, bufs, 5), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_get_many_timeout(q, bufs, 5, 10 * MS), -ETIMEDOUT);
	/* A message too long for put: the whole batch is refused, nothing queued. */
	in[1].iov_len = 17;
	ck_assert_int_eq(shmkit_queue_put_many(q, in, 3), -EMSGSIZE);
	ck_assert_uint_eq(shmkit_queue_size(q), 0);
	in[1].iov_len = sizeof(int);
	/* A buffer too small: first message -> -EMSGSIZE and it stays; later -> batch ends. */
	ck_assert_int_eq(shmkit_queue_put_many(q, in, 3), 3);
	bufs[0].iov_base = out;
	bufs[0].iov_len = 2;
	ck_assert_int_eq(shmkit_queue_get_many(q, bufs, 3), -EMSGSIZE);
	bufs[0].iov_len = sizeof(int);
	bufs[1].iov_base = out + 1;
	bufs[1].iov_len = 2;
	ck_assert_int_eq(shmkit_queue_get_many(q, bufs, 3), 1);
	ck_assert_int_eq(out[0], 100);
	ck_assert_uint_eq(shmkit_queue_size(q), 2);
	/* Single and batch calls mix. */
	ck_assert_int_eq(shmkit_queue_get(q, out, sizeof(int)), sizeof(int));
	ck_assert_int_eq(out[0], 101);
	/* EOF after shutdown, once drained. */
	ck_assert_int_eq(shmkit_queue_shutdown(q), 0);
	ck_assert_int_eq(shmkit_queue_put_many(q, in, 2), -EPIPE);
	bufs[0].iov_len = bufs[1].iov_len = sizeof(int);
	ck_assert_int_eq(shmkit_queue_get_many(q, bufs, 3), 1);
	ck_assert_int_eq(out[0], 102);
	ck_assert_int_eq(shmkit_queue_get_many(q, bufs, 3), -EPIPE);
	shmkit_queue_close(q);
}
END_TEST

START_TEST(test_loan_basic)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("loan", name, 4, 64, 3, 0), *q2;
	const void *m;
	void *buf, *buf2;
	char out[64];
	int i;

	ck_assert_int_eq(shmkit_queue_open(name, &q2), 0);
	ck_assert_int_eq(shmkit_queue_commit(q, 3), -EINVAL);
	ck_assert_int_eq(shmkit_queue_release(q2), -EINVAL);
	ck_assert_int_eq(shmkit_queue_peek_try(q2, &m), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_reserve(q, &buf), 0);
	ck_assert_int_eq(shmkit_queue_reserve_try(q, &buf2), -EBUSY);
	ck_assert_int_eq(shmkit_queue_put(q, "x", 1), -EBUSY);
	memcpy(buf, "hello", 5);
	ck_assert_int_eq(shmkit_queue_commit(q, 65), -EMSGSIZE); /* the loan stays */
	/* Not published yet: a consumer sees nothing. */
	ck_assert_int_eq(shmkit_queue_peek_try(q2, &m), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_commit(q, 5), 0);
	ck_assert_int_eq(shmkit_queue_put(q, "world", 5), 0);
	ck_assert_int_eq(shmkit_queue_peek(q2, &m), 5);
	ck_assert_mem_eq(m, "hello", 5);
	ck_assert_int_eq(shmkit_queue_get_try(q2, out, sizeof(out)), -EBUSY);
	ck_assert_int_eq(shmkit_queue_peek_try(q2, &m), -EBUSY);
	ck_assert_int_eq(shmkit_queue_release(q2), 0);
	ck_assert_int_eq(shmkit_queue_get(q2, out, sizeof(out)), 5);
	ck_assert_mem_eq(out, "world", 5);
	/* Full: reserve waits like put. */
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(shmkit_queue_put(q, "abcd", 4), 0);
	ck_assert_int_eq(shmkit_queue_reserve_try(q, &buf), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_reserve_timeout(q, &buf, 10 * MS), -ETIMEDOUT);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(shmkit_queue_get(q2, out, sizeof(out)), 4);
	/* Loans never outlive the handle: close skips a reserve and releases a peek. */
	ck_assert_int_eq(shmkit_queue_reserve(q, &buf), 0);
	ck_assert_int_eq(shmkit_queue_put_timeout(q, "y", 1, 0), -EBUSY);
	shmkit_queue_close(q);
	ck_assert_int_eq(shmkit_queue_open(name, &q), 0);
	ck_assert_int_eq(shmkit_queue_put(q, "after", 5), 0);
	ck_assert_int_eq(shmkit_queue_put(q, "later", 5), 0);
	ck_assert_int_eq(shmkit_queue_peek_timeout(q2, &m, 5000 * MS), 5);
	ck_assert_mem_eq(m, "after", 5);
	shmkit_queue_close(q2);
	ck_assert_int_eq(shmkit_queue_get(q, out, sizeof(out)), 5);
	ck_assert_mem_eq(out, "later", 5);
	shmkit_queue_close(q);
}
END_TEST

/* A child that dies by SIGKILL in the middle of copying: the SIGSEGV of touching an
 * inaccessible page turns into SIGKILL at exactly that point. */
static void kill_me(int sig)
{
	(void)sig;
	raise(SIGKILL);
}

static void *no_access_page(void)
{
	void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int batch_producer_dies(void *arg)
{
	struct iovec in[5];
	int v[5] = { 0, 1, 2, 3, 4 }, i;
	void *bad = no_access_page();

	(void)arg;
	if (!bad)
		return 3;
	signal(SIGSEGV, kill_me);
	for (i = 0; i < 5; i++) {
		in[i].iov_base = i == 2 ? bad : &v[i];
		in[i].iov_len = sizeof(int);
	}
	/* Claims 5 slots, publishes 0 and 1, dies copying message 2. */
	shmkit_queue_put_many(child_q, in, 5);
	return 2;
}

START_TEST(test_batch_producer_killed)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("bkp", name, 16, 8, 0, 0);
	struct shmkit_queue_stats st;
	int v, w = 7;

	child_q = q;
	ck_assert_int_eq(tu_wait_child(tu_fork(batch_producer_dies, NULL), 10), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_queue_put(q, &w, sizeof(w)), 0);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 10000 * MS), sizeof(v));
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 10000 * MS), sizeof(v));
	ck_assert_int_eq(v, 1);
	/* Behind the dead producer's three unpublished slots: reached once they are skipped. */
	ck_assert_int_eq(shmkit_queue_get_timeout(q, &v, sizeof(v), 10000 * MS), sizeof(v));
	ck_assert_int_eq(v, 7);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.slots_reclaimed, 3);
	ck_assert_uint_eq(st.put_total, 3);
	ck_assert_uint_eq(st.get_total, 3);
	ck_assert_uint_eq(st.depth, 0);
	shmkit_queue_close(q);
}
END_TEST

static int batch_consumer_dies(void *arg)
{
	struct iovec bufs[5];
	int v[5], i;
	void *bad = no_access_page();

	(void)arg;
	if (!bad)
		return 3;
	signal(SIGSEGV, kill_me);
	for (i = 0; i < 5; i++) {
		bufs[i].iov_base = i == 2 ? bad : &v[i];
		bufs[i].iov_len = sizeof(int);
	}
	/* Takes the 5 queued, copies out 0 and 1, dies copying message 2. */
	shmkit_queue_get_many(child_q, bufs, 5);
	return 2;
}

START_TEST(test_batch_consumer_killed)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("bkc", name, 8, 8, 0, 0);
	struct shmkit_queue_stats st;
	int v, i;

	child_q = q;
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(shmkit_queue_put(q, &i, sizeof(i)), 0);
	ck_assert_int_eq(tu_wait_child(tu_fork(batch_consumer_dies, NULL), 10), 128 + SIGKILL);
	/* The three slots it held come back once it is reaped: 8 fit again. */
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(shmkit_queue_put_timeout(q, &i, sizeof(i), 10000 * MS), 0);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.lost_dead_consumer, 3);
	ck_assert_uint_eq(st.participants_reaped, 1);
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(shmkit_queue_get(q, &v, sizeof(v)), sizeof(v));
		ck_assert_int_eq(v, i);
	}
	shmkit_queue_close(q);
}
END_TEST

static int reserve_then_die(void *arg)
{
	void *buf;

	(void)arg;
	if (shmkit_queue_reserve(child_q, &buf))
		return 1;
	memcpy(buf, "partial", 7);
	raise(SIGKILL);
	return 2;
}

static int peek_then_die(void *arg)
{
	const void *m;

	(void)arg;
	if (shmkit_queue_peek(child_q, &m) < 0)
		return 1;
	raise(SIGKILL);
	return 2;
}

START_TEST(test_loan_holders_killed)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("lk", name, 2, 16, 0, 0);
	struct shmkit_queue_stats st;
	char out[16];

	child_q = q;
	/* A reserve whose holder dies: skipped, the message behind it arrives. */
	ck_assert_int_eq(tu_wait_child(tu_fork(reserve_then_die, NULL), 10), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_queue_put(q, "next", 4), 0);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, out, sizeof(out), 10000 * MS), 4);
	ck_assert_mem_eq(out, "next", 4);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.slots_reclaimed, 1);
	/* A peek whose holder dies: the message is lost, counted, and its slot comes back. */
	ck_assert_int_eq(shmkit_queue_put(q, "gone", 4), 0);
	ck_assert_int_eq(tu_wait_child(tu_fork(peek_then_die, NULL), 10), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_queue_put(q, "a", 1), 0);
	ck_assert_int_eq(shmkit_queue_put_timeout(q, "b", 1, 10000 * MS), 0);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.lost_dead_consumer, 1);
	ck_assert_int_eq(shmkit_queue_get(q, out, sizeof(out)), 1);
	ck_assert_int_eq(out[0], 'a');
	ck_assert_int_eq(shmkit_queue_get(q, out, sizeof(out)), 1);
	ck_assert_int_eq(out[0], 'b');
	shmkit_queue_close(q);
}
END_TEST

/* Stress: 2 producers in batches or loans, 2 consumers in batches or peeks, stamps checked. */
#define STRESS_N 20000
#define STRESS_BATCH 7

struct stress {
	_Atomic uint64_t got[2]; /* per producer: messages received */
	_Atomic uint64_t bad;
};

static struct stress *st_board;

static int stress_producer(void *arg)
{
	int id = (int)(intptr_t)arg, rc;
	uint64_t seq = 0, m[STRESS_BATCH];
	struct iovec in[STRESS_BATCH];
	unsigned i, k;
	void *buf;

	if (shmkit_queue_attach_writer(child_q))
		return 1;
	while (seq < STRESS_N) {
		if (id == 0) {
			k = STRESS_N - seq < STRESS_BATCH ? (unsigned)(STRESS_N - seq) : STRESS_BATCH;
			for (i = 0; i < k; i++) {
				m[i] = (uint64_t)id << 56 | (seq + i);
				in[i].iov_base = &m[i];
				in[i].iov_len = sizeof(m[i]);
			}
			if ((rc = shmkit_queue_put_many(child_q, in, k)) <= 0)
				return 2;
			seq += (unsigned)rc;
		} else {
			if (shmkit_queue_reserve(child_q, &buf))
				return 3;
			m[0] = (uint64_t)id << 56 | seq;
			memcpy(buf, &m[0], sizeof(m[0]));
			if (shmkit_queue_commit(child_q, sizeof(m[0])))
				return 4;
			seq++;
		}
	}
	return shmkit_queue_detach_writer(child_q) ? 5 : 0;
}

static void check_msg(uint64_t *last, const void *p, size_t len)
{
	uint64_t w;
	unsigned id;

	if (len != sizeof(w)) {
		atomic_fetch_add(&st_board->bad, 1);
		return;
	}
	memcpy(&w, p, sizeof(w));
	id = (unsigned)(w >> 56);
	if (id > 1 || (w & ((1ULL << 56) - 1)) < last[id]) {
		atomic_fetch_add(&st_board->bad, 1);
		return;
	}
	last[id] = (w & ((1ULL << 56) - 1)) + 1;
	atomic_fetch_add(&st_board->got[id], 1);
}

static int stress_consumer(void *arg)
{
	int id = (int)(intptr_t)arg, rc, i;
	uint64_t last[2] = { 0, 0 }, m[STRESS_BATCH];
	struct iovec bufs[STRESS_BATCH];
	const void *p;

	for (;;) {
		if (id == 0) {
			for (i = 0; i < STRESS_BATCH; i++) {
				bufs[i].iov_base = &m[i];
				bufs[i].iov_len = sizeof(m[i]);
			}
			rc = shmkit_queue_get_many_timeout(child_q, bufs, STRESS_BATCH,
							   30000 * MS);
			if (rc == -EPIPE)
				return 0;
			if (rc <= 0)
				return 1;
			for (i = 0; i < rc; i++)
				check_msg(last, bufs[i].iov_base, bufs[i].iov_len);
		} else {
			rc = shmkit_queue_peek_timeout(child_q, &p, 30000 * MS);
			if (rc == -EPIPE)
				return 0;
			if (rc < 0)
				return 1;
			check_msg(last, p, (size_t)rc);
			if (shmkit_queue_release(child_q))
				return 2;
		}
	}
}

START_TEST(test_stress)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make("bst", name, 16, 8, 2, 0);
	pid_t pid[4];
	int i;

	st_board = tu_shared(sizeof(*st_board));
	child_q = q;
	for (i = 0; i < 2; i++)
		pid[i] = tu_fork(stress_consumer, (void *)(intptr_t)i);
	for (i = 0; i < 2; i++)
		pid[2 + i] = tu_fork(stress_producer, (void *)(intptr_t)i);
	ck_assert_int_eq(tu_wait_children(pid, 4, 120), 0);
	ck_assert_uint_eq(atomic_load(&st_board->bad), 0);
	ck_assert_uint_eq(atomic_load(&st_board->got[0]), STRESS_N);
	ck_assert_uint_eq(atomic_load(&st_board->got[1]), STRESS_N);
	shmkit_queue_close(q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bulk");
	TCase *tc;

	tu_skip_if_no_shm();
	tu_init();
	tc = tu_tcase(s, "api", 30);
	tcase_add_test(tc, test_batch_basic);
	tcase_add_test(tc, test_loan_basic);
	tc = tu_tcase(s, "deaths", 60);
	tcase_add_test(tc, test_batch_producer_killed);
	tcase_add_test(tc, test_batch_consumer_killed);
	tcase_add_test(tc, test_loan_holders_killed);
	tc = tu_tcase(s, "stress", 300);
	tcase_add_loop_test(tc, test_stress, 0, 3);
	return tu_run(s);
}
