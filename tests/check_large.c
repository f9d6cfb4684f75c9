/*
 * Messages longer than a slot, and longer than the whole ring: through queues and pipes,
 * mixed with small ones across several producers and consumers (every message checked), with
 * producers and consumers SIGKILLed in the middle of one (nothing partial is delivered, counts
 * exact, nobody stalls, nothing but the queue left in /dev/shm), -EMSGSIZE keeping the
 * message, deadlines, batches, loans and JoinableQueue accounting around them, and 1 GiB
 * through a 4 MiB queue.
 */
#include "config.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "shmkit.h"
#include "testutil.h"

#define MS (1000 * 1000LL)
#define WAIT_S 60.0

/* Message (id, seq) of len bytes: a header then bytes that depend on all three, so a torn,
 * shifted or foreign message fails its check. */
struct hdr {
	uint32_t id, seq;
	uint64_t len;
};

static unsigned char pat(uint32_t id, uint32_t seq, uint64_t i)
{
	return (unsigned char)(id * 131u + seq * 31u + (unsigned)i * 7u + (unsigned)(i >> 11));
}

static void make_msg(unsigned char *b, uint64_t len, uint32_t id, uint32_t seq)
{
	struct hdr h = { id, seq, len };
	uint64_t i;

	for (i = sizeof(h); i < len; i++)
		b[i] = pat(id, seq, i);
	memcpy(b, &h, len < sizeof(h) ? len : sizeof(h));
}

/* 0 when b (len bytes) is a whole message; its id and seq out. */
static int check_msg(const unsigned char *b, uint64_t len, uint32_t *id, uint32_t *seq)
{
	struct hdr h;
	uint64_t i;

	if (len < sizeof(h))
		return -1;
	memcpy(&h, b, sizeof(h));
	if (h.len != len)
		return -2;
	for (i = sizeof(h); i < len; i++)
		if (b[i] != pat(h.id, h.seq, i))
			return -3;
	*id = h.id;
	*seq = h.seq;
	return 0;
}

static shmkit_queue *make_q(const char *tag, char *name, uint32_t capacity, uint32_t slot,
			    uint32_t max_size, uint32_t writers, uint32_t flags)
{
	struct shmkit_queue_attr a = { 0 };
	shmkit_queue *q;

	a.capacity = capacity;
	a.slot_size = slot;
	a.max_size = max_size;
	a.writers = writers;
	a.flags = flags;
	tu_name_kind(name, tag, shmkit_queue_unlink);
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), 0);
	return q;
}

/* Names in /dev/shm starting with "shmkit-test-<tag>-<our pid>-": what this test left. */
static int leftovers(const char *tag)
{
	char prefix[96];
	struct dirent *d;
	DIR *dir = opendir("/dev/shm");
	int n = 0;

	ck_assert(dir != NULL);
	snprintf(prefix, sizeof(prefix), "shmkit-test-%s-%d-", tag, (int)getpid());
	while ((d = readdir(dir)))
		n += strncmp(d->d_name, prefix, strlen(prefix)) == 0;
	closedir(dir);
	return n;
}

/* ---------------------------------------------------------------------------------------- */
/* The API around one long message.                                                          */

START_TEST(test_defaults)
{
	struct shmkit_queue_attr a = { .capacity = 8 };
	char name[TU_NAME_SIZE];
	shmkit_queue *q;
	struct shmkit_queue_stats st;

	tu_name_kind(name, "lgdef", shmkit_queue_unlink);
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), 0);
	ck_assert_uint_eq(shmkit_queue_max_size(q), SHMKIT_MESSAGE_DEFAULT);
	ck_assert_uint_eq(shmkit_queue_slot_size(q), SHMKIT_SLOT_DEFAULT);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.slot_size, SHMKIT_SLOT_DEFAULT);
	ck_assert_uint_eq(st.max_size, SHMKIT_MESSAGE_DEFAULT);
	shmkit_queue_close(q);
	ck_assert_int_eq(shmkit_queue_unlink(name), 0);
	/* Up to 4096 bytes, one slot per message as before. */
	a.max_size = 100;
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), 0);
	ck_assert_uint_eq(shmkit_queue_slot_size(q), 100);
	shmkit_queue_close(q);
	ck_assert_int_eq(shmkit_queue_unlink(name), 0);
	/* A slot larger than the largest message, a reserved field set: refused. */
	a.slot_size = 200;
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), -EINVAL);
	a.slot_size = 0;
	a.reserved[0] = 1;
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), -EINVAL);
	a.reserved[0] = 0;
	a.max_size = SHMKIT_MESSAGE_MAX;
	a.slot_size = SHMKIT_SLOT_MAX + 1;
	ck_assert_int_eq(shmkit_queue_create(name, &a, &q), -EINVAL);
}
END_TEST

START_TEST(test_emsgsize_keeps_it)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make_q("lgsz", name, 64, 256, 1 << 20, 0, 0);
	size_t len = 10000;
	unsigned char *m = malloc(len), *b = malloc(len);
	struct iovec v = { b, 100 };
	const void *loan;
	void *got;
	uint32_t id, seq;

	make_msg(m, len, 1, 2);
	ck_assert_int_eq(shmkit_queue_put(q, m, len), 0);
	ck_assert_int_eq(shmkit_queue_next_size(q), (int)len);
	ck_assert_int_eq(shmkit_queue_get_try(q, b, len - 1), -EMSGSIZE);
	ck_assert_int_eq(shmkit_queue_get_many_try(q, &v, 1), -EMSGSIZE);
	ck_assert_int_eq(shmkit_queue_peek_try(q, &loan), -EMSGSIZE); /* loans are one slot */
	ck_assert_int_eq(shmkit_queue_next_size(q), (int)len);
	ck_assert_int_eq(shmkit_queue_get_try(q, b, len), (int)len);
	ck_assert_int_eq(check_msg(b, len, &id, &seq), 0);
	ck_assert(id == 1 && seq == 2);
	/* The allocating get. */
	ck_assert_int_eq(shmkit_queue_put(q, m, len), 0);
	ck_assert_int_eq(shmkit_queue_get_alloc_try(q, &got), (int)len);
	ck_assert_int_eq(memcmp(got, m, len), 0);
	free(got);
	ck_assert_int_eq(shmkit_queue_next_size(q), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_get_alloc_try(q, &got), -EAGAIN);
	/* Over max_size: refused whole. */
	ck_assert_int_eq(shmkit_queue_put(q, m, (1 << 20) + 1), -EMSGSIZE);
	free(m);
	free(b);
	shmkit_queue_close(q);
}
END_TEST

START_TEST(test_batches_and_loans_around_large)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make_q("lgbat", name, 64, 128, 1 << 16, 0, 0);
	unsigned char big[5000], small[16], b0[5000], b1[5000], b2[5000];
	struct iovec in[3] = { { small, 10 }, { big, sizeof(big) }, { small, 12 } };
	struct iovec out[3] = { { b0, sizeof(b0) }, { b1, sizeof(b1) }, { b2, sizeof(b2) } };
	uint32_t id, seq;
	void *slot;

	make_msg(big, sizeof(big), 3, 4);
	memset(small, 'x', sizeof(small));
	/* A long message ends a batch; first in it, it goes alone. */
	ck_assert_int_eq(shmkit_queue_put_many(q, in, 3), 1);
	ck_assert_int_eq(shmkit_queue_put_many(q, in + 1, 2), 1);
	ck_assert_int_eq(shmkit_queue_put_many(q, in + 2, 1), 1);
	/* A loan is one slot; its commit is refused past it and the loan stays. */
	ck_assert_int_eq(shmkit_queue_reserve(q, &slot), 0);
	ck_assert_int_eq(shmkit_queue_commit(q, 129), -EMSGSIZE);
	memset(slot, 'L', 128);
	ck_assert_int_eq(shmkit_queue_commit(q, 128), 0);
	ck_assert_int_eq(shmkit_queue_get_many(q, out, 3), 1);
	ck_assert_uint_eq(out[0].iov_len, 10);
	out[0].iov_len = sizeof(b0);
	ck_assert_int_eq(shmkit_queue_get_many(q, out, 3), 1);
	ck_assert_uint_eq(out[0].iov_len, sizeof(big));
	ck_assert_int_eq(check_msg(b0, sizeof(big), &id, &seq), 0);
	ck_assert(id == 3 && seq == 4);
	out[0].iov_len = sizeof(b0);
	ck_assert_int_eq(shmkit_queue_get_many(q, out, 3), 2);
	ck_assert_uint_eq(out[0].iov_len, 12);
	ck_assert_uint_eq(out[1].iov_len, 128);
	ck_assert_int_eq(b1[0], 'L');
	shmkit_queue_close(q);
}
END_TEST

START_TEST(test_deadlines)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make_q("lgdl", name, 16, 256, 1 << 20, 0, 0); /* 4 KiB of slots */
	size_t len = 100000;
	unsigned char *m = malloc(len), b[64];
	int64_t t0;

	make_msg(m, len, 5, 6);
	/* Larger than the free room: a _try does not start it. */
	ck_assert_int_eq(shmkit_queue_put_try(q, m, len), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_size(q), 0);
	/* A timed put streams, finds no consumer, withdraws at its deadline. */
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_queue_put_timeout(q, m, len, 200 * MS), -ETIMEDOUT);
	ck_assert(tu_now_ns() - t0 >= 200 * MS);
	/* What it wrote is never delivered: the next get drops it (freeing its slots) and
	 * finds nothing; the queue still works. */
	ck_assert_int_eq(shmkit_queue_get_try(q, b, sizeof(b)), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_size(q), 0);
	ck_assert_int_eq(shmkit_queue_put(q, "after", 5), 0);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, b, sizeof(b), 5000 * MS), 5);
	ck_assert_int_eq(memcmp(b, "after", 5), 0);
	ck_assert_int_eq(shmkit_queue_get_try(q, b, sizeof(b)), -EAGAIN);
	free(m);
	shmkit_queue_close(q);
}
END_TEST

START_TEST(test_joinable_counts_messages)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make_q("lgjn", name, 64, 64, 1 << 20, 0, SHMKIT_JOINABLE);
	unsigned char m[3000], b[3000];
	struct shmkit_queue_stats st;

	make_msg(m, sizeof(m), 1, 1);
	ck_assert_int_eq(shmkit_queue_put(q, m, sizeof(m)), 0);
	ck_assert_int_eq(shmkit_queue_join_try(q), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_get(q, b, sizeof(b)), sizeof(m));
	ck_assert_int_eq(shmkit_queue_join_try(q), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.unfinished, 1);
	ck_assert_uint_eq(st.put_total, 1);
	ck_assert_uint_eq(st.get_total, 1);
	ck_assert_int_eq(shmkit_queue_task_done(q), 0);
	ck_assert_int_eq(shmkit_queue_join_try(q), 0);
	ck_assert_int_eq(shmkit_queue_task_done(q), -EINVAL);
	shmkit_queue_close(q);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Several producers and consumers, small and large messages mixed, each checked.            */

#define MIX_PRODUCERS 3
#define MIX_CONSUMERS 3
#define MIX_MSGS 150

struct mix {
	char name[TU_NAME_SIZE];
	_Atomic int got[MIX_PRODUCERS][MIX_MSGS];
	_Atomic int bad;
};

static size_t mix_len(uint32_t id, uint32_t seq)
{
	uint32_t x = id * 2654435761u + seq * 40503u;

	switch (x % 5) {
	case 0:
		return 200000 + x % 100000; /* larger than the ring (64 x 512 B) */
	case 1:
		return 513 + x % 20000;     /* several slots */
	default:
		return sizeof(struct hdr) + x % 400; /* one slot */
	}
}

struct mix_child {
	struct mix *m;
	uint32_t id;
};

static int mix_put(void *arg)
{
	struct mix_child *c = arg;
	unsigned char *b = malloc(300000);
	shmkit_queue *q;
	uint32_t seq;
	size_t len;

	if (!b || shmkit_queue_open(c->m->name, &q))
		return 1;
	for (seq = 0; seq < MIX_MSGS; seq++) {
		len = mix_len(c->id, seq);
		make_msg(b, len, c->id, seq);
		if (shmkit_queue_put(q, b, len))
			return 2;
	}
	shmkit_queue_close(q); /* detaches: EOF after the last writer */
	return 0;
}

static int mix_get(void *arg)
{
	struct mix_child *c = arg;
	unsigned char *b = malloc(300000);
	shmkit_queue *q;
	uint32_t id, seq;
	int n;

	if (!b || shmkit_queue_open(c->m->name, &q))
		return 1;
	while ((n = shmkit_queue_get_timeout(q, b, 300000, 30000 * MS)) >= 0) {
		if (check_msg(b, (uint64_t)n, &id, &seq) || id >= MIX_PRODUCERS || seq >= MIX_MSGS ||
		    mix_len(id, seq) != (size_t)n)
			atomic_fetch_add(&c->m->bad, 1);
		else
			atomic_fetch_add(&c->m->got[id][seq], 1);
	}
	shmkit_queue_close(q);
	return n == -EPIPE ? 0 : 3;
}

START_TEST(test_mixed_many_to_many)
{
	struct mix *m = tu_shared(sizeof(*m));
	struct mix_child c[MIX_PRODUCERS + MIX_CONSUMERS];
	pid_t pids[MIX_PRODUCERS + MIX_CONSUMERS];
	struct shmkit_queue_stats st;
	shmkit_queue *q = make_q("lgmix", m->name, 64, 512, 1 << 20, MIX_PRODUCERS, 0);
	int i, j;

	for (i = 0; i < MIX_PRODUCERS + MIX_CONSUMERS; i++) {
		c[i].m = m;
		c[i].id = (uint32_t)i;
		pids[i] = tu_fork(i < MIX_PRODUCERS ? mix_put : mix_get, &c[i]);
	}
	ck_assert_int_eq(tu_wait_children(pids, MIX_PRODUCERS + MIX_CONSUMERS, WAIT_S), 0);
	ck_assert_int_eq(atomic_load(&m->bad), 0);
	for (i = 0; i < MIX_PRODUCERS; i++)
		for (j = 0; j < MIX_MSGS; j++)
			ck_assert_msg(atomic_load(&m->got[i][j]) == 1, "message %d/%d delivered %d times",
				      i, j, atomic_load(&m->got[i][j]));
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.put_total, MIX_PRODUCERS * MIX_MSGS);
	ck_assert_uint_eq(st.get_total, MIX_PRODUCERS * MIX_MSGS);
	ck_assert_uint_eq(st.lost_dead_consumer, 0);
	shmkit_queue_close(q);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Deaths in the middle of a long message.                                                   */

#define BIG (8u << 20)     /* a message 32 times the ring */
#define RING_SLOTS 64u
#define RING_SLOT 4096u

struct stage {
	char name[TU_NAME_SIZE];
	_Atomic int step;
	_Atomic int result;
};

static int big_putter(void *arg)
{
	struct stage *s = arg;
	unsigned char *b = malloc(BIG);
	shmkit_queue *q;

	if (!b || shmkit_queue_open(s->name, &q))
		return 1;
	make_msg(b, BIG, 7, 1);
	if (shmkit_queue_put(q, b, BIG))
		return 2;
	atomic_store(&s->step, 1);
	if (shmkit_queue_put(q, "after", 5))
		return 3;
	shmkit_queue_close(q);
	return 0;
}

/* Gets one message: 1 when it was the whole big one, 2 when it was "after". */
static int getter(void *arg)
{
	struct stage *s = arg;
	unsigned char *b = malloc(BIG);
	uint32_t id, seq;
	shmkit_queue *q;
	int n;

	if (!b || shmkit_queue_open(s->name, &q))
		return 10;
	n = shmkit_queue_get_timeout(q, b, BIG, 30000 * MS);
	shmkit_queue_close(q);
	if (n == (int)BIG && check_msg(b, BIG, &id, &seq) == 0 && id == 7)
		return 1;
	if (n == 5 && memcmp(b, "after", 5) == 0)
		return 2;
	return 11;
}

/* The long message's first part is all published: the ring is full and its head visible. */
static bool ring_full(void *arg)
{
	shmkit_queue *q = arg;

	return shmkit_queue_size(q) == RING_SLOTS && shmkit_queue_next_size(q) == (int)BIG;
}

/* The parent stays attached as a writer, so the queue never reaches EOF in these tests. */
static shmkit_queue *death_q(const char *tag, char *name)
{
	shmkit_queue *q = make_q(tag, name, RING_SLOTS, RING_SLOT, BIG, 0, 0);

	ck_assert_int_eq(shmkit_queue_attach_writer(q), 0);
	return q;
}

static bool ring_empty(void *arg)
{
	shmkit_queue *q = arg;

	return shmkit_queue_size(q) == 0;
}

START_TEST(test_producer_killed_mid_message)
{
	struct stage *s = tu_shared(sizeof(*s));
	shmkit_queue *q = death_q("lgpk", s->name);
	struct shmkit_queue_stats st;
	unsigned char b[64], *big = malloc(BIG);
	pid_t p;

	p = tu_fork(big_putter, s);
	/* Blocked with its message part written: the ring is full and nobody reads. */
	ck_assert(tu_await(ring_full, q, WAIT_S));
	tu_kill_child(p);
	/* Nothing of it is delivered: a consumer (once the dead producer is found, within a
	 * slice) drops what was written and finds nothing else. */
	ck_assert_int_eq(shmkit_queue_get_timeout(q, big, BIG, 100 * MS), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_queue_size(q), 0);
	/* Nobody stalls: another producer gets through. */
	ck_assert_int_eq(shmkit_queue_put_timeout(q, "next", 4, 20000 * MS), 0);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, b, sizeof(b), 20000 * MS), 4);
	ck_assert_int_eq(memcmp(b, "next", 4), 0);
	ck_assert_int_eq(shmkit_queue_get_try(q, b, sizeof(b)), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.lost_dead_consumer, 0);
	ck_assert_uint_eq(st.participants_reaped, 1);
	ck_assert_int_eq(leftovers("lgpk"), 1);
	free(big);
	shmkit_queue_close(q);
}
END_TEST

START_TEST(test_producer_killed_while_consumer_reads)
{
	struct stage *s = tu_shared(sizeof(*s));
	shmkit_queue *q = death_q("lgpc", s->name);
	struct shmkit_queue_stats st;
	pid_t p, c;

	p = tu_fork(big_putter, s);
	ck_assert(tu_await(ring_full, q, WAIT_S));
	ck_assert_int_eq(kill(p, SIGSTOP), 0);
	/* A consumer takes the start of the message and waits for the rest... */
	c = tu_fork(getter, s);
	ck_assert(tu_await(ring_empty, q, WAIT_S));
	ck_assert(tu_await_sleeping(c, WAIT_S));
	/* ...which never comes: it drops the message and takes the next one. */
	tu_kill_child(p);
	ck_assert_int_eq(shmkit_queue_put_timeout(q, "after", 5, 20000 * MS), 0);
	ck_assert_int_eq(tu_wait_child(c, WAIT_S), 2);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.lost_dead_consumer, 0);
	ck_assert_uint_eq(st.depth, 0);
	ck_assert_int_eq(leftovers("lgpc"), 1);
	shmkit_queue_close(q);
}
END_TEST

START_TEST(test_consumer_killed_mid_message)
{
	struct stage *s = tu_shared(sizeof(*s));
	shmkit_queue *q = death_q("lgck", s->name);
	struct shmkit_queue_stats st;
	unsigned char b[64];
	pid_t p, c, c2;

	p = tu_fork(big_putter, s);
	ck_assert(tu_await(ring_full, q, WAIT_S));
	ck_assert_int_eq(kill(p, SIGSTOP), 0);
	c = tu_fork(getter, s);
	ck_assert(tu_await(ring_empty, q, WAIT_S));
	ck_assert(tu_await_sleeping(c, WAIT_S));
	/* The consumer dies holding the first part of the message. */
	tu_kill_child(c);
	ck_assert_int_eq(kill(p, SIGCONT), 0);
	/* The rest of it is dropped by the next consumer, which gets the message after it. */
	c2 = tu_fork(getter, s);
	ck_assert_int_eq(tu_wait_child(c2, WAIT_S), 2);
	ck_assert_int_eq(tu_wait_child(p, WAIT_S), 0);
	ck_assert_int_eq(shmkit_queue_get_try(q, b, sizeof(b)), -EAGAIN);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.lost_dead_consumer, 1);
	ck_assert_uint_eq(st.participants_reaped, 1);
	ck_assert_int_eq(leftovers("lgck"), 1);
	/* The queue carries the next long message whole. */
	p = tu_fork(big_putter, s);
	c = tu_fork(getter, s);
	ck_assert_int_eq(tu_wait_child(c, WAIT_S), 1);
	ck_assert_int_eq(tu_wait_child(p, WAIT_S), 0);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, b, sizeof(b), 20000 * MS), 5);
	shmkit_queue_close(q);
}
END_TEST

/* A message that fit the free room, claimed whole by a consumer that dies before copying it. */
static int slow_whole_getter(void *arg)
{
	struct stage *s = arg;
	shmkit_queue *q;
	void *bad;

	if (shmkit_queue_open(s->name, &q))
		return 10;
	/* A buffer that faults on the first byte: the consumer dies holding the whole claim. */
	bad = mmap(NULL, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	signal(SIGSEGV, SIG_DFL);
	shmkit_queue_get(q, bad, 1 << 20);
	return 12;
}

START_TEST(test_consumer_killed_holding_whole_message)
{
	struct stage *s = tu_shared(sizeof(*s));
	shmkit_queue *q = death_q("lgcw", s->name);
	struct shmkit_queue_stats st;
	unsigned char *m = malloc(RING_SLOTS * RING_SLOT), b[64];

	make_msg(m, 100000, 1, 1);
	ck_assert_int_eq(shmkit_queue_put(q, m, 100000), 0);
	ck_assert_int_eq(shmkit_queue_put(q, "after", 5), 0);
	ck_assert_int_eq(tu_wait_child(tu_fork(slow_whole_getter, s), WAIT_S), 128 + SIGSEGV);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, b, sizeof(b), 20000 * MS), 5);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.lost_dead_consumer, 1);
	ck_assert_uint_eq(st.depth, 0);
	/* Its slots came back: the whole ring is usable again. */
	ck_assert_int_eq(shmkit_queue_put_try(q, m, RING_SLOTS * RING_SLOT), 0);
	free(m);
	shmkit_queue_close(q);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Pipes.                                                                                    */

static int pipe_sender(void *arg)
{
	const char *name = arg;
	unsigned char *b = malloc(BIG);
	shmkit_pipe *p;

	if (!b || shmkit_pipe_open(name, &p) || shmkit_pipe_attach(p, 0))
		return 1;
	make_msg(b, BIG, 9, 1);
	if (shmkit_pipe_send(p, b, BIG) || shmkit_pipe_send(p, "tail", 4))
		return 2;
	shmkit_pipe_close(p);
	return 0;
}

START_TEST(test_pipe_large_then_eof)
{
	char name[TU_NAME_SIZE];
	shmkit_pipe *p;
	unsigned char *b = malloc(BIG);
	void *got;
	uint32_t id, seq;
	pid_t c;

	tu_name_kind(name, "lgpipe", shmkit_pipe_unlink);
	ck_assert_int_eq(shmkit_pipe_create(name, 32, 0, SHMKIT_SIMPLEX, 0, &p), 0);
	ck_assert_uint_eq(shmkit_pipe_max_size(p), SHMKIT_MESSAGE_DEFAULT);
	ck_assert_uint_eq(shmkit_pipe_slot_size(p), SHMKIT_SLOT_DEFAULT);
	ck_assert_int_eq(shmkit_pipe_attach(p, 1), 0);
	c = tu_fork(pipe_sender, name);
	ck_assert_int_eq(shmkit_pipe_recv_timeout(p, b, 100, 20000 * MS), -EMSGSIZE);
	ck_assert_int_eq(shmkit_pipe_next_size(p), (int)BIG);
	ck_assert_int_eq(shmkit_pipe_recv_alloc(p, &got), (int)BIG);
	ck_assert_int_eq(check_msg(got, BIG, &id, &seq), 0);
	free(got);
	ck_assert_int_eq(shmkit_pipe_recv(p, b, BIG), 4);
	ck_assert_int_eq(shmkit_pipe_recv_timeout(p, b, BIG, 20000 * MS), -EPIPE);
	ck_assert_int_eq(tu_wait_child(c, WAIT_S), 0);
	free(b);
	shmkit_pipe_close(p);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* 1 GiB through 4 MiB.                                                                      */

#define GIB (1u << 30)

static int gib_putter(void *arg)
{
	const char *name = arg;
	unsigned char *b = mmap(NULL, GIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	shmkit_queue *q;

	if (b == MAP_FAILED || shmkit_queue_open(name, &q))
		return 1;
	make_msg(b, GIB, 11, 12);
	return shmkit_queue_put(q, b, GIB) ? 2 : 0;
}

static int gib_getter(void *arg)
{
	const char *name = arg;
	unsigned char *b = mmap(NULL, GIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	uint32_t id, seq;
	shmkit_queue *q;

	if (b == MAP_FAILED || shmkit_queue_open(name, &q))
		return 1;
	if (shmkit_queue_get(q, b, GIB) != (int)GIB)
		return 2;
	return check_msg(b, GIB, &id, &seq) == 0 && id == 11 && seq == 12 ? 0 : 3;
}

START_TEST(test_gib_through_4mib)
{
	char name[TU_NAME_SIZE];
	shmkit_queue *q = make_q("lggib", name, 1024, 4096, GIB, 0, 0);
	pid_t pids[2];

	pids[0] = tu_fork(gib_putter, name);
	pids[1] = tu_fork(gib_getter, name);
	ck_assert_int_eq(tu_wait_child(pids[1], 240), 0);
	ck_assert_int_eq(tu_wait_child(pids[0], 60), 0);
	ck_assert_int_eq(shmkit_queue_size(q), 0);
	shmkit_queue_close(q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("large");
	TCase *tc;

	tu_init();
	tu_skip_if_no_shm();
	tc = tu_tcase(s, "api", 30);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_emsgsize_keeps_it);
	tcase_add_test(tc, test_batches_and_loans_around_large);
	tcase_add_test(tc, test_deadlines);
	tcase_add_test(tc, test_joinable_counts_messages);
	tcase_add_test(tc, test_pipe_large_then_eof);
	tc = tu_tcase(s, "many", 120);
	tcase_add_test(tc, test_mixed_many_to_many);
	tc = tu_tcase(s, "deaths", 120);
	tcase_add_test(tc, test_producer_killed_mid_message);
	tcase_add_test(tc, test_producer_killed_while_consumer_reads);
	tcase_add_test(tc, test_consumer_killed_mid_message);
	tcase_add_test(tc, test_consumer_killed_holding_whole_message);
	tc = tu_tcase(s, "gib", 300);
	tcase_add_test(tc, test_gib_through_4mib);
	return tu_run(s);
}
