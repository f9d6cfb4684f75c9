/*
 * White-box tests of the message ring's crash safety and of what the queue does with a region
 * someone scribbled on. Built from the library's sources (not against libshmkit), so the
 * ring's internals are at hand.
 *
 * Ring level: a producer or consumer that "dies" between claiming a position and finishing
 * with it is simulated by doing its claim by hand (claim word, CAS on tail or head) and then
 * calling the resolve functions as the queue's reaper would. Queue level: the named region is
 * mapped raw and overwritten, and every call on it runs in a forked child with a deadline, so
 * a crash or a hang fails the test instead of the suite.
 */
#include "config.h"

#include <pthread.h>

#include "ring.h"
#include "testutil.h"
#include "wait.h"

#define CHILD_TIMEOUT_S 20.0
#define MS_NS 1000000LL

/* ------------------------------------------------------------------------------------------ */
/* A ring in anonymous shared memory, with a live participant and a "dead" one.              */

struct rf {
	struct shmkit__ring r;
	struct shmkit__who live, dead;
	struct shmkit__claim live_c, dead_c;
};

static struct rf *rf_new(uint32_t capacity, uint32_t max_size)
{
	size_t shsz = (sizeof(struct shmkit__ring_sh) + 63) & ~(size_t)63;
	struct rf *f = tu_shared(sizeof(*f));
	unsigned char *mem = tu_shared(shsz + shmkit__ring_bytes(capacity, max_size));
	struct shmkit__ring_sh *sh = (struct shmkit__ring_sh *)mem;

	/* Slots of max_size bytes: every message fits one, as in the queues made before large
	 * messages (those have their own tests below). */
	shmkit__ring_init(sh, mem + shsz, capacity, max_size, max_size);
	shmkit__ring_bind(&f->r, sh, mem + shsz, capacity, max_size, max_size);
	shmkit__ring_who_bind(&f->live, &f->live_c, 0, NULL);
	shmkit__ring_who_bind(&f->dead, &f->dead_c, 1, NULL);
	return f;
}

static struct shmkit__slot *rf_slot(struct rf *f, uint64_t pos)
{
	return (struct shmkit__slot *)(f->r.slots + (pos & f->r.mask) * f->r.slot_size);
}

static int put_s(struct rf *f, const char *s)
{
	return shmkit__ring_put(&f->r, &f->live, s, strlen(s), 0, NULL, NULL);
}

/* Get into buf (NUL-terminated); the ring's result. */
static int get_s(struct rf *f, char *buf, size_t size)
{
	int rc = shmkit__ring_get(&f->r, &f->live, buf, size - 1, 0, NULL, NULL);

	buf[rc >= 0 ? rc : 0] = '\0';
	return rc;
}

/* A producer claims the next position, writes part of its message and dies. */
static uint64_t dead_claim_put(struct rf *f, const char *partial)
{
	uint64_t p = atomic_load(&f->r.sh->tail);
	struct shmkit__slot *s = rf_slot(f, p);

	ck_assert_uint_eq(atomic_load(&s->seq), p); /* free for it */
	atomic_store(&f->dead.c->put_pos, p);
	ck_assert(atomic_compare_exchange_strong(&f->r.sh->tail, &p, p + 1));
	s->len = (uint32_t)strlen(partial) + 100;
	memcpy(s->data, partial, strlen(partial));
	return p;
}

/* A consumer claims the oldest message and dies before copying it out and releasing it. */
static uint64_t dead_claim_get(struct rf *f)
{
	uint64_t p = atomic_load(&f->r.sh->head);

	atomic_store(&f->dead.c->get_pos, p);
	ck_assert(atomic_compare_exchange_strong(&f->r.sh->head, &p, p + 1));
	return p;
}

START_TEST(test_ring_basics)
{
	struct rf *f = rf_new(3, 16);
	char buf[64];

	ck_assert_uint_eq(f->r.nslots, 4);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EAGAIN);
	ck_assert_int_eq(put_s(f, "one"), 0);
	ck_assert_int_eq(put_s(f, "two"), 0);
	ck_assert_int_eq(put_s(f, "three"), 0);
	ck_assert_int_eq(put_s(f, "four"), -EAGAIN); /* capacity 3, not the 4 slots */
	ck_assert_int_eq(put_s(f, "seventeen bytes!!"), -EMSGSIZE);
	ck_assert_uint_eq(shmkit__ring_depth(&f->r), 3);
	ck_assert_int_eq(shmkit__ring_get(&f->r, &f->live, buf, 2, 0, NULL, NULL), -EMSGSIZE);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "one");
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "two");
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "three");
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EAGAIN);
	shmkit__ring_close(&f->r);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EPIPE);
	ck_assert_int_eq(put_s(f, "late"), -EPIPE);
	ck_assert_uint_eq(atomic_load(&f->live_c.put_pos), RING_NONE);
	ck_assert_uint_eq(atomic_load(&f->live_c.get_pos), RING_NONE);
}
END_TEST

START_TEST(test_dead_producer_slot_skipped)
{
	struct rf *f = rf_new(4, 32);
	char buf[64];
	uint64_t p;

	ck_assert_int_eq(put_s(f, "before"), 0);
	p = dead_claim_put(f, "PARTIAL");
	ck_assert_int_eq(put_s(f, "after"), 0);

	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, "before");
	/* Stuck at the dead producer's slot: nothing, and certainly not its partial message. */
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EAGAIN);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EAGAIN);

	ck_assert_int_eq(shmkit__ring_resolve_put(&f->r, p), 1);
	ck_assert_uint_eq(atomic_load(&f->r.sh->slots_reclaimed), 1);
	ck_assert_int_eq(shmkit__ring_resolve_put(&f->r, p), 0); /* once only */

	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "after");
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EAGAIN);
	ck_assert_uint_eq(atomic_load(&f->r.sh->slots_reclaimed), 1);
	ck_assert_uint_eq(atomic_load(&f->r.sh->lost_dead_consumer), 0);

	/* The skipped slot is usable again on the next lap. */
	for (p = 0; p < 8; p++) {
		ck_assert_int_eq(put_s(f, "lap"), 0);
		ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 3);
		ck_assert_str_eq(buf, "lap");
	}
}
END_TEST

START_TEST(test_dead_consumer_slot_released)
{
	struct rf *f = rf_new(4, 32);
	char buf[64];
	uint64_t p;

	ck_assert_int_eq(put_s(f, "taken"), 0);
	ck_assert_int_eq(put_s(f, "b"), 0);
	p = dead_claim_get(f);
	ck_assert_int_eq(put_s(f, "c"), 0);
	ck_assert_int_eq(put_s(f, "d"), 0);
	/* Full: the dead consumer never released its slot. */
	ck_assert_int_eq(put_s(f, "e"), -EAGAIN);

	ck_assert_int_eq(shmkit__ring_resolve_get(&f->r, p), 2); /* a real message, lost */
	ck_assert_uint_eq(atomic_load(&f->r.sh->lost_dead_consumer), 1);
	ck_assert_int_eq(shmkit__ring_resolve_get(&f->r, p), 0);
	ck_assert_int_eq(put_s(f, "e"), 0);

	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "b");
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "c");
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "d");
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "e");
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EAGAIN);
	ck_assert_uint_eq(atomic_load(&f->r.sh->lost_dead_consumer), 1);
}
END_TEST

START_TEST(test_dead_consumer_of_skipped_slot)
{
	struct rf *f = rf_new(4, 32);
	char buf[64];
	uint64_t pp, pg;

	pp = dead_claim_put(f, "x");
	ck_assert_int_eq(shmkit__ring_resolve_put(&f->r, pp), 1);
	/* A consumer claims the skipped position and dies: nothing was in it, nothing lost. */
	pg = dead_claim_get(f);
	ck_assert_uint_eq(pg, pp);
	ck_assert_int_eq(shmkit__ring_resolve_get(&f->r, pg), 1);
	ck_assert_uint_eq(atomic_load(&f->r.sh->lost_dead_consumer), 0);
	ck_assert_int_eq(put_s(f, "next"), 0);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "next");
}
END_TEST

START_TEST(test_resolve_leaves_live_state_alone)
{
	struct rf *f = rf_new(4, 32);
	char buf[64];

	ck_assert_int_eq(put_s(f, "kept"), 0);
	/* Published, not taken: neither resolve may touch it. */
	ck_assert_int_eq(shmkit__ring_resolve_put(&f->r, 0), 0);
	ck_assert_int_eq(shmkit__ring_resolve_get(&f->r, 0), 0);
	/* Never claimed, or no claim at all. */
	ck_assert_int_eq(shmkit__ring_resolve_put(&f->r, 1), 0);
	ck_assert_int_eq(shmkit__ring_resolve_put(&f->r, 12345), 0);
	ck_assert_int_eq(shmkit__ring_resolve_put(&f->r, RING_NONE), 0);
	ck_assert_int_eq(shmkit__ring_resolve_get(&f->r, RING_NONE), 0);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "kept");
	/* Taken and released: done with. */
	ck_assert_int_eq(shmkit__ring_resolve_get(&f->r, 0), 0);
	ck_assert_int_eq(shmkit__ring_resolve_put(&f->r, 0), 0);
	/* Stale claims from an earlier lap name positions long since reused. */
	ck_assert_int_eq(put_s(f, "a"), 0);
	ck_assert_int_eq(put_s(f, "b"), 0);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 1);
	ck_assert_int_eq(shmkit__ring_resolve_put(&f->r, 0), 0);
	ck_assert_int_eq(shmkit__ring_resolve_get(&f->r, 0), 0);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "b");
	ck_assert_uint_eq(atomic_load(&f->r.sh->slots_reclaimed), 0);
	ck_assert_uint_eq(atomic_load(&f->r.sh->lost_dead_consumer), 0);
}
END_TEST

/* Threads in one process (one mapping, so ThreadSanitizer can follow the ring's ordering):
 * producers and consumers with their own claim words; every message arrives once, whole, and
 * in its producer's order. */
#define T_PRODUCERS 3
#define T_CONSUMERS 2
#define T_MSGS 20000

struct tmsg {
	uint32_t producer, seq, check;
	char pad[20];
};

struct tstate {
	struct rf *f;
	int idx;
	struct shmkit__claim claim;
	struct shmkit__who who;
	_Atomic int *got; /* [T_PRODUCERS * T_MSGS], shared by the consumers */
	int result;
};

static void *producer_thread(void *arg)
{
	struct tstate *t = arg;
	struct tmsg m = { 0 };
	uint32_t i;

	for (i = 0; i < T_MSGS; i++) {
		m.producer = (uint32_t)t->idx;
		m.seq = i;
		m.check = m.producer * 2654435761u ^ i;
		memset(m.pad, (int)(i & 0xff), sizeof(m.pad));
		if (shmkit__ring_put(&t->f->r, &t->who, &m, sizeof(m),
				     shmkit__now() + 10000 * MS_NS, NULL, NULL)) {
			t->result = 1;
			break;
		}
	}
	return NULL;
}

static void *consumer_thread(void *arg)
{
	int64_t last[T_PRODUCERS] = { -1, -1, -1 };
	struct tstate *t = arg;
	struct tmsg m;
	int rc, k;

	for (;;) {
		rc = shmkit__ring_get(&t->f->r, &t->who, &m, sizeof(m),
				      shmkit__now() + 10000 * MS_NS, NULL, NULL);
		if (rc == -EPIPE)
			break;
		if (rc != (int)sizeof(m) || m.producer >= T_PRODUCERS || m.seq >= T_MSGS ||
		    m.check != (m.producer * 2654435761u ^ m.seq) ||
		    (int64_t)m.seq <= last[m.producer]) {
			t->result = 2;
			break;
		}
		for (k = 0; k < (int)sizeof(m.pad); k++)
			if (m.pad[k] != (char)(m.seq & 0xff))
				t->result = 3;
		last[m.producer] = m.seq;
		if (atomic_fetch_add(&t->got[m.producer * T_MSGS + m.seq], 1))
			t->result = 4;
	}
	return NULL;
}

START_TEST(test_ring_threads)
{
	struct rf *f = rf_new(8, sizeof(struct tmsg));
	struct tstate t[T_PRODUCERS + T_CONSUMERS];
	pthread_t th[T_PRODUCERS + T_CONSUMERS];
	_Atomic int *got = calloc(T_PRODUCERS * T_MSGS, sizeof(*got));
	int i;

	ck_assert(got != NULL);
	for (i = 0; i < T_PRODUCERS + T_CONSUMERS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].f = f;
		t[i].idx = i;
		t[i].got = got;
		shmkit__ring_who_bind(&t[i].who, &t[i].claim, (uint32_t)i, NULL);
		ck_assert_int_eq(pthread_create(&th[i], NULL,
						i < T_PRODUCERS ? producer_thread : consumer_thread,
						&t[i]),
				 0);
	}
	for (i = 0; i < T_PRODUCERS; i++)
		pthread_join(th[i], NULL);
	shmkit__ring_close(&f->r);
	for (i = T_PRODUCERS; i < T_PRODUCERS + T_CONSUMERS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < T_PRODUCERS + T_CONSUMERS; i++)
		ck_assert_msg(t[i].result == 0, "thread %d: failure %d", i, t[i].result);
	for (i = 0; i < T_PRODUCERS * T_MSGS; i++)
		ck_assert_msg(atomic_load(&got[i]) == 1, "message %d delivered %d times", i,
			      atomic_load(&got[i]));
	free(got);
}
END_TEST

/* Corrupt states: -EBADMSG, with or without a deadline (a wait would end in -ETIMEDOUT); never a
 * crash. */

static int get_deadline(struct rf *f, int64_t ms)
{
	char buf[64];

	return shmkit__ring_get(&f->r, &f->live, buf, sizeof(buf), shmkit__now() + ms * MS_NS,
				NULL, NULL);
}

static int put_deadline(struct rf *f, int64_t ms)
{
	return shmkit__ring_put(&f->r, &f->live, "x", 1, shmkit__now() + ms * MS_NS, NULL, NULL);
}

START_TEST(test_corrupt_head_ahead_of_tail)
{
	struct rf *f = rf_new(3, 16); /* capacity < slots: put checks head */
	struct rf *g = rf_new(4, 16); /* capacity == slots: it does not */
	char buf[64];
	int i, rc = 0;

	ck_assert_int_eq(put_s(f, "a"), 0);
	atomic_store(&f->r.sh->head, 7);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EBADMSG);
	ck_assert_int_eq(get_deadline(f, 2000), -EBADMSG);
	/* Puts land while the producer's cached head says there is room, then see it. */
	for (i = 0; i < 4 && (rc = put_s(f, "b")) == 0; i++)
		;
	ck_assert_int_eq(rc, -EBADMSG);
	ck_assert_int_eq(put_deadline(f, 2000), -EBADMSG);
	ck_assert_uint_eq(shmkit__ring_depth(&f->r), 0);

	atomic_store(&g->r.sh->head, 5);
	ck_assert_int_eq(get_s(g, buf, sizeof(buf)), -EBADMSG);
	ck_assert_int_eq(get_deadline(g, 2000), -EBADMSG);
}
END_TEST

START_TEST(test_corrupt_tail_laps_ahead)
{
	struct rf *f = rf_new(4, 16);
	char buf[64];

	ck_assert_int_eq(put_s(f, "a"), 0);
	atomic_store(&f->r.sh->tail, 1000);
	ck_assert_int_eq(put_s(f, "b"), -EBADMSG);
	ck_assert_int_eq(put_deadline(f, 2000), -EBADMSG);
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 1); /* the real message is still there */
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EBADMSG);
	ck_assert_uint_eq(shmkit__ring_depth(&f->r), 4);
}
END_TEST

START_TEST(test_corrupt_seq_ahead)
{
	struct rf *f = rf_new(4, 16);
	char buf[64];

	ck_assert_int_eq(put_s(f, "a"), 0);
	atomic_store(&rf_slot(f, 0)->seq, 0 + 7); /* neither published (1) nor released (4) */
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EBADMSG);
	ck_assert_int_eq(get_deadline(f, 2000), -EBADMSG);
	atomic_store(&rf_slot(f, 1)->seq, 1 + 9); /* the producer's next slot, ahead of tail */
	ck_assert_int_eq(put_s(f, "b"), -EBADMSG);
	ck_assert_int_eq(put_deadline(f, 2000), -EBADMSG);
	ck_assert_uint_eq(atomic_load(&f->live_c.put_pos), RING_NONE);
	ck_assert_uint_eq(atomic_load(&f->live_c.get_pos), RING_NONE);
}
END_TEST

START_TEST(test_corrupt_len)
{
	struct rf *f = rf_new(4, 16);
	char buf[64];

	ck_assert_int_eq(put_s(f, "a"), 0);
	rf_slot(f, 0)->len = 17;
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EBADMSG);
	rf_slot(f, 0)->len = UINT32_MAX;
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EBADMSG);
	ck_assert_int_eq(get_deadline(f, 2000), -EBADMSG);
	/* Still there, still refused: a corrupt slot is not silently dropped. */
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), -EBADMSG);
	rf_slot(f, 0)->len = 1;
	ck_assert_int_eq(get_s(f, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "a");
}
END_TEST

/* Random indices, sequence words and lengths: every call returns, in a child with a deadline. */
static int random_ring_child(void *arg)
{
	uint64_t seed = 0x853c49e6748fea9bULL, r;
	struct rf *f = arg;
	char buf[64];
	int round, i;

	(void)arg;
	for (round = 0; round < 2000; round++) {
		r = seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		atomic_store(&f->r.sh->head, r % 4 ? r >> 40 : r);
		r = seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		atomic_store(&f->r.sh->tail, r % 4 ? r >> 40 : r);
		for (i = 0; i < (int)f->r.nslots; i++) {
			r = seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			atomic_store(&rf_slot(f, (uint64_t)i)->seq,
				     r % 3 ? atomic_load(&f->r.sh->head) + (r >> 60) : r);
			rf_slot(f, (uint64_t)i)->len = (uint32_t)(r % 5 ? (r >> 33) % 40 : r >> 32);
		}
		for (i = 0; i < 8; i++) {
			int g = get_s(f, buf, sizeof(buf)), p = put_s(f, "xyz");
			if (g > 16 || (g < 0 && g != -EAGAIN && g != -EBADMSG && g != -EMSGSIZE))
				return 1;
			if (p > 0 || (p < 0 && p != -EAGAIN && p != -EBADMSG))
				return 2;
			shmkit__ring_resolve_put(&f->r, atomic_load(&f->r.sh->tail) - (uint64_t)i);
			shmkit__ring_resolve_get(&f->r, atomic_load(&f->r.sh->head) - (uint64_t)i);
		}
		shmkit__ring_depth(&f->r);
	}
	return 0;
}

START_TEST(test_corrupt_random)
{
	struct rf *f = rf_new(5, 16);

	ck_assert_int_eq(tu_wait_child(tu_fork(random_ring_child, f), CHILD_TIMEOUT_S), 0);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* The queue's named region, scribbled on through a raw mapping.                              */

#define QCAP 4
#define QMAX 32

struct qmap {
	unsigned char *base;
	size_t size;
	size_t ring; /* offset of struct shmkit__ring_sh */
	size_t slot0, slot_size;
};

static void *raw_map(const char *name, size_t *size)
{
	struct stat st;
	void *p;
	int fd = shm_open(name, O_RDWR, 0);

	ck_assert_msg(fd >= 0, "shm_open %s: %s", name, strerror(errno));
	ck_assert_int_eq(fstat(fd, &st), 0);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert(p != MAP_FAILED);
	*size = (size_t)st.st_size;
	return p;
}

/*
 * A queue holding one message ("msg-one-payload" at position 1; "msg-zero-payload" at 0 was
 * taken), mapped raw. The layout is private to queue.c, so it is found rather than assumed:
 * the ring is where tail (2) and head (1) sit a cache line apart, the slots are where the
 * payloads are.
 */
static void queue_fixture(char *name, struct qmap *m)
{
	/* EOF only after 100 writers: the fixture's own handle detaching must not close it. */
	struct shmkit_queue_attr qa = { .capacity = QCAP, .max_size = QMAX, .writers = 100 };
	const char *m0 = "msg-zero-payload", *m1 = "msg-one-payload";
	unsigned char *d0, *d1;
	shmkit_queue *q;
	char buf[QMAX];
	size_t o;

	tu_name_kind(name, "ring", shmkit_queue_unlink);
	ck_assert_int_eq(shmkit_queue_create(name, &qa, &q), 0);
	ck_assert_int_eq(shmkit_queue_put(q, m0, strlen(m0)), 0);
	ck_assert_int_eq(shmkit_queue_put(q, m1, strlen(m1)), 0);
	ck_assert_int_eq(shmkit_queue_get(q, buf, sizeof(buf)), (int)strlen(m0));
	ck_assert_int_eq(shmkit_queue_close(q), 0);

	memset(m, 0, sizeof(*m));
	m->base = raw_map(name, &m->size);
	for (o = sizeof(struct shmkit__hdr); o + sizeof(struct shmkit__ring_sh) <= m->size; o += 64)
		if (*(uint64_t *)(m->base + o) == 2 && *(uint64_t *)(m->base + o + 64) == 1)
			break;
	ck_assert_msg(o + sizeof(struct shmkit__ring_sh) <= m->size, "ring not found");
	m->ring = o;
	d0 = memmem(m->base, m->size, m0, strlen(m0));
	d1 = memmem(m->base, m->size, m1, strlen(m1));
	ck_assert(d0 && d1 && d1 > d0);
	m->slot0 = (size_t)(d0 - m->base) - offsetof(struct shmkit__slot, data);
	m->slot_size = (size_t)(d1 - d0);
	ck_assert_uint_eq(*(uint64_t *)(m->base + m->slot0 + m->slot_size), 2); /* published */
	ck_assert_uint_eq(*(uint32_t *)(m->base + m->slot0 + m->slot_size + 8), strlen(m1));
}

static struct shmkit__ring_sh *qm_ring(struct qmap *m)
{
	return (struct shmkit__ring_sh *)(m->base + m->ring);
}

static struct shmkit__slot *qm_slot(struct qmap *m, uint64_t pos)
{
	return (struct shmkit__slot *)(m->base + m->slot0 + (pos % 4) * m->slot_size);
}

/* What a child reports: the results of its calls, in shared memory. */
struct qres {
	int open, get[3], put[3], stats, blocking_get;
	uint32_t depth;
};

struct qjob {
	const char *name;
	struct qres *res;
	bool blocking; /* also one get without a deadline (expected to return, not hang) */
};

static int queue_calls_child(void *arg)
{
	struct qjob *j = arg;
	struct shmkit_queue_stats st;
	shmkit_queue *q;
	char buf[QMAX];
	int i;

	j->res->open = shmkit_queue_open(j->name, &q);
	if (j->res->open)
		return 0;
	for (i = 0; i < 3; i++)
		j->res->get[i] = shmkit_queue_get_timeout(q, buf, sizeof(buf), 200 * MS_NS);
	for (i = 0; i < 3; i++)
		j->res->put[i] = shmkit_queue_put_timeout(q, "new", 3, 200 * MS_NS);
	j->res->stats = shmkit_queue_stats(q, &st);
	j->res->depth = st.depth;
	shmkit_queue_size(q);
	shmkit_queue_empty(q);
	shmkit_queue_full(q);
	if (j->blocking)
		j->res->blocking_get = shmkit_queue_get(q, buf, sizeof(buf));
	shmkit_queue_close(q);
	return 0;
}

/* Run the calls in a child; it must finish (no crash, no hang). */
static struct qres *run_calls(const char *name, bool blocking)
{
	struct qres *res = tu_shared(sizeof(*res));
	struct qjob *j = tu_shared(sizeof(*j));

	j->name = name;
	j->res = res;
	j->blocking = blocking;
	ck_assert_int_eq(tu_wait_child(tu_fork(queue_calls_child, j), CHILD_TIMEOUT_S), 0);
	return res;
}

START_TEST(test_queue_scribbled_header)
{
	struct shmkit__hdr *h;
	struct qmap m;
	char name[TU_NAME_SIZE];
	struct qres *res;

	/* One corruption per run of the loop; each on a fresh queue. */
	for (int k = 0; k < 11; k++) {
		queue_fixture(name, &m);
		h = (struct shmkit__hdr *)m.base;
		switch (k) {
		case 0: h->param[0] = 0; break;               /* capacity */
		case 1: h->param[0] = 1u << 30; break;
		case 2: h->param[0] = QCAP * 64; break;       /* more slots than the region has */
		case 3: h->param[1] = UINT64_MAX; break;      /* max_size */
		case 4: h->param[1] = QMAX * 1000; break;
		case 5: h->param[2] = 100000; break;          /* writers */
		case 6: h->param[3] = 7; break;               /* participant table */
		case 7: h->size += 64; break;
		case 8: h->version = 99; break;
		case 9: h->kind = SHMKIT_KIND_PIPE; break;
		case 10: h->magic ^= 1; break;
		}
		res = run_calls(name, false);
		ck_assert_msg(res->open < 0, "corruption %d: open returned %d", k, res->open);
		munmap(m.base, m.size);
		shmkit_queue_unlink(name);
	}
}
END_TEST

START_TEST(test_queue_scribbled_indices)
{
	struct qmap m;
	char name[TU_NAME_SIZE];
	struct qres *res;
	int i;

	/* head ahead of tail: every get says corrupt, a blocking one too (no hang). */
	queue_fixture(name, &m);
	atomic_store(&qm_ring(&m)->head, 9);
	res = run_calls(name, true);
	ck_assert_int_eq(res->open, 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(res->get[i], -EBADMSG);
	ck_assert_int_eq(res->blocking_get, -EBADMSG);
	ck_assert_int_eq(res->stats, 0);
	ck_assert_uint_eq(res->depth, 0);
	munmap(m.base, m.size);

	/* tail far ahead: the next slot's sequence word does not match. */
	queue_fixture(name, &m);
	atomic_store(&qm_ring(&m)->tail, 1000003);
	res = run_calls(name, false);
	ck_assert_int_eq(res->open, 0);
	ck_assert_int_eq(res->get[0], 15); /* the message queued before */
	ck_assert_int_eq(res->get[1], -EBADMSG);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(res->put[i], -EBADMSG);
	ck_assert_uint_le(res->depth, QCAP);
	munmap(m.base, m.size);

	/* Indices near the top of the 64-bit range. */
	queue_fixture(name, &m);
	atomic_store(&qm_ring(&m)->head, UINT64_MAX - 1);
	atomic_store(&qm_ring(&m)->tail, UINT64_MAX);
	res = run_calls(name, false);
	ck_assert_int_eq(res->open, 0);
	for (i = 0; i < 3; i++)
		ck_assert(res->get[i] == -EBADMSG || res->get[i] == -ETIMEDOUT);
	munmap(m.base, m.size);
}
END_TEST

START_TEST(test_queue_scribbled_slots)
{
	struct qmap m;
	char name[TU_NAME_SIZE];
	struct qres *res;

	/* A published message claiming to be longer than max_size. */
	queue_fixture(name, &m);
	qm_slot(&m, 1)->len = UINT32_MAX;
	res = run_calls(name, true);
	ck_assert_int_eq(res->open, 0);
	ck_assert_int_eq(res->get[0], -EBADMSG);
	ck_assert_int_eq(res->blocking_get, -EBADMSG);
	munmap(m.base, m.size);

	/* A sequence word ahead of its position. */
	queue_fixture(name, &m);
	atomic_store(&qm_slot(&m, 1)->seq, 77);
	res = run_calls(name, true);
	ck_assert_int_eq(res->get[0], -EBADMSG);
	ck_assert_int_eq(res->blocking_get, -EBADMSG);
	munmap(m.base, m.size);
}
END_TEST

/* Garbage over everything after the header (admin mutex excluded: a mutex that looks held
 * blocks like a held one, see tests/fuzz_region.c): calls return, whatever they return. */
START_TEST(test_queue_scribbled_garbage)
{
	uint64_t seed = 88172645463325252ULL;
	struct qmap m;
	char name[TU_NAME_SIZE];
	size_t o, start;
	int round;

	for (round = 0; round < 6; round++) {
		queue_fixture(name, &m);
		start = sizeof(struct shmkit__hdr) + sizeof(struct shmkit__lk);
		for (o = start; o + 8 <= m.size; o += 8) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			/* Dense garbage in the ring and participants in some rounds, sparse in
			 * others, so that some calls get past the first check. */
			if (round % 2 == 0 || seed % 16 == 0)
				memcpy(m.base + o, &seed, 8);
		}
		run_calls(name, false);
		munmap(m.base, m.size);
		shmkit_queue_unlink(name);
	}
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Dead participants through the public API: a real process registers, dies, and its entry is
 * then made to claim a slot as if it had died in the middle of a put or a get.               */

static int register_and_die(void *arg)
{
	shmkit_queue *q;
	char buf[QMAX];

	if (shmkit_queue_open(arg, &q))
		return 1;
	shmkit_queue_get_try(q, buf, sizeof(buf)); /* registers; the queue holds one message */
	shmkit_queue_put(q, "msg-one-payload", 15); /* and put it back, as a writer */
	_exit(0); /* no close: the entry stays, naming a dead process */
}

/* The participant entry of pid: the 64-byte entry whose first word is pid. */
static unsigned char *find_part(struct qmap *m, pid_t pid)
{
	size_t o;

	for (o = m->ring + sizeof(struct shmkit__ring_sh); o + 64 <= m->slot0; o += 64)
		if (*(int32_t *)(m->base + o) == pid)
			return m->base + o;
	return NULL;
}

START_TEST(test_queue_dead_producer_mid_put)
{
	struct shmkit_queue_stats st;
	struct qmap m;
	char name[TU_NAME_SIZE], buf[QMAX];
	unsigned char *pt;
	shmkit_queue *q;
	uint64_t p;
	pid_t pid;

	queue_fixture(name, &m);
	pid = tu_fork(register_and_die, name);
	ck_assert_int_eq(tu_wait_child(pid, CHILD_TIMEOUT_S), 0);
	pt = find_part(&m, pid);
	ck_assert_msg(pt != NULL, "participant entry of the dead child not found");
	/* As if it had died after claiming the next position, halfway through its copy. */
	p = atomic_load(&qm_ring(&m)->tail);
	ck_assert_uint_eq(atomic_load(&qm_slot(&m, p)->seq), p);
	*(uint64_t *)(pt + 16) = p; /* put_pos: after pid, role, start */
	atomic_store(&qm_ring(&m)->tail, p + 1);
	qm_slot(&m, p)->len = 5;
	memcpy(qm_slot(&m, p)->data, "PART", 4);

	ck_assert_int_eq(shmkit_queue_open(name, &q), 0);
	ck_assert_int_eq(shmkit_queue_put(q, "after", 5), 0);
	/* The message before, then the one after: the dead producer's slot is skipped once a
	 * waiter notices it is dead (within a slice of 1 s), never delivered half-written. */
	ck_assert_int_eq(shmkit_queue_get_timeout(q, buf, sizeof(buf), 5000 * MS_NS), 15);
	ck_assert_int_eq(shmkit_queue_get_timeout(q, buf, sizeof(buf), 5000 * MS_NS), 5);
	ck_assert(memcmp(buf, "after", 5) == 0);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.slots_reclaimed, 1);
	ck_assert_uint_eq(st.participants_reaped, 1);
	ck_assert_uint_eq(st.depth, 0);
	shmkit_queue_close(q);
	munmap(m.base, m.size);
}
END_TEST

START_TEST(test_queue_dead_consumer_mid_get)
{
	struct shmkit_queue_stats st;
	struct qmap m;
	char name[TU_NAME_SIZE], buf[QMAX];
	unsigned char *pt;
	shmkit_queue *q;
	uint64_t p;
	pid_t pid;
	int i;

	queue_fixture(name, &m);
	pid = tu_fork(register_and_die, name);
	ck_assert_int_eq(tu_wait_child(pid, CHILD_TIMEOUT_S), 0);
	pt = find_part(&m, pid);
	ck_assert_msg(pt != NULL, "participant entry of the dead child not found");
	/* As if it had died after claiming the oldest message, before releasing its slot. */
	p = atomic_load(&qm_ring(&m)->head);
	*(uint64_t *)(pt + 24) = p; /* get_pos */
	atomic_store(&qm_ring(&m)->head, p + 1);

	ck_assert_int_eq(shmkit_queue_open(name, &q), 0);
	/* Fill up: the last put waits for the dead consumer's slot, which recovery releases. */
	for (i = 0; i < QCAP; i++)
		ck_assert_int_eq(shmkit_queue_put_timeout(q, "fill", 4, 5000 * MS_NS), 0);
	ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
	ck_assert_uint_eq(st.lost_dead_consumer, 1);
	for (i = 0; i < QCAP; i++)
		ck_assert_int_eq(shmkit_queue_get_timeout(q, buf, sizeof(buf), 5000 * MS_NS), 4);
	ck_assert_int_eq(shmkit_queue_get_try(q, buf, sizeof(buf)), -EAGAIN);
	shmkit_queue_close(q);
	munmap(m.base, m.size);
}
END_TEST

static Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc;

	tc = tu_tcase(s, "ring", 30);
	tcase_add_test(tc, test_ring_basics);
	tcase_add_test(tc, test_dead_producer_slot_skipped);
	tcase_add_test(tc, test_dead_consumer_slot_released);
	tcase_add_test(tc, test_dead_consumer_of_skipped_slot);
	tcase_add_test(tc, test_resolve_leaves_live_state_alone);
	tcase_add_test(tc, test_ring_threads);
	tc = tu_tcase(s, "corrupt ring", 60);
	tcase_add_test(tc, test_corrupt_head_ahead_of_tail);
	tcase_add_test(tc, test_corrupt_tail_laps_ahead);
	tcase_add_test(tc, test_corrupt_seq_ahead);
	tcase_add_test(tc, test_corrupt_len);
	tcase_add_test(tc, test_corrupt_random);
	tc = tu_tcase(s, "scribbled queue", 120);
	tcase_add_test(tc, test_queue_scribbled_header);
	tcase_add_test(tc, test_queue_scribbled_indices);
	tcase_add_test(tc, test_queue_scribbled_slots);
	tcase_add_test(tc, test_queue_scribbled_garbage);
	tc = tu_tcase(s, "dead participants", 60);
	tcase_add_test(tc, test_queue_dead_producer_mid_put);
	tcase_add_test(tc, test_queue_dead_consumer_mid_get);
	return s;
}

int main(void)
{
	tu_skip_if_no_shm();
	tu_init();
	return tu_run(ring_suite());
}
