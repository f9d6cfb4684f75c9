/*
 * check_idle: idle sleepers stay asleep, and still notice deaths (issue 12).
 *  - 64 consumers blocked on an empty queue: each makes at most 3 voluntary context switches
 *    a second (the library's target is one wake-up a second per idle sleeper; this counts
 *    wake-ups from /proc/PID/status, it does not time anything);
 *  - a producer SIGKILLed while putting an 8 MB message (so most kills land mid-claim): the
 *    blocked consumers still get a second producer's messages, within a generous bound, and
 *    every message acknowledged arrives once;
 *  - the last writer killed mid-put while nobody else touches the queue: the sleeping
 *    consumers notice on their own and all reach EOF.
 */
#include "config.h"

#include "testutil.h"

#define CONSUMERS 64
#define BIG (8u << 20)
#define IDLE_SECONDS 4
#define MAX_WAKES_PER_S 3
#define AFTER 10            /* messages the second producer puts after each kill */
#define NOTICE_BOUND_S 15.0 /* generous: the library aims at about a second */
#define KILL_ROUNDS 20 /* at most; it stops after 2 kills landed mid-claim */

struct board {
	_Atomic int ready;                /* consumers started */
	_Atomic uint64_t got;             /* messages received, all consumers */
	_Atomic uint64_t got_by_id[KILL_ROUNDS + 1][AFTER]; /* second producers' messages */
	_Atomic uint64_t acked;           /* the killed producers' acknowledged puts */
	_Atomic int bad;                  /* malformed messages */
	_Atomic int putting;              /* the big producer is about to put */
	_Atomic int attached, go;         /* the last producer is a writer; may put */
};

struct carg {
	struct board *b;
	const char *name;
};

/* A message: 8 bytes of (round << 32 | seq); round 0 is the killed producers'. */
static int consumer(void *p)
{
	struct carg *a = p;
	shmkit_queue *q;
	unsigned char *buf = malloc(BIG);
	uint64_t tag;
	int rc;

	if (!buf || shmkit_queue_open(a->name, &q))
		return 10;
	atomic_fetch_add(&a->b->ready, 1);
	for (;;) {
		rc = shmkit_queue_get(q, buf, BIG);
		if (rc == -EPIPE)
			break;
		if (rc < 8)
			return 11;
		memcpy(&tag, buf, 8);
		if ((tag >> 32) > KILL_ROUNDS || (tag >> 32 && (tag & 0xffffffff) >= AFTER)) {
			atomic_fetch_add(&a->b->bad, 1);
		} else if (tag >> 32) {
			atomic_fetch_add(&a->b->got_by_id[tag >> 32][tag & 0xffffffff], 1);
		}
		atomic_fetch_add(&a->b->got, 1);
	}
	shmkit_queue_close(q);
	free(buf);
	return 0;
}

/* Says it is about to put one 8 MB message into the empty queue (its copy takes a
 * millisecond or more, in which the kill is meant to land), puts it, then waits to be killed. */
static int put_big(struct board *b, shmkit_queue *q)
{
	unsigned char *msg = malloc(BIG);
	uint64_t tag = 0;

	if (!msg)
		return 12;
	memset(msg, 0x5a, BIG);
	memcpy(msg, &tag, 8);
	atomic_store(&b->putting, 1);
	if (shmkit_queue_put(q, msg, BIG))
		return 11;
	atomic_fetch_add(&b->acked, 1);
	for (;;)
		pause();
}

static int big_producer(void *p)
{
	struct carg *a = p;
	shmkit_queue *q;

	if (shmkit_queue_open(a->name, &q))
		return 10;
	return put_big(a->b, q);
}

/* The last writer: attaches, waits for the go, then puts as above through the same handle. */
static int last_producer(void *p)
{
	struct carg *a = p;
	shmkit_queue *q;

	if (shmkit_queue_open(a->name, &q) || shmkit_queue_attach_writer(q))
		return 10;
	atomic_store(&a->b->attached, 1);
	while (!atomic_load(&a->b->go))
		tu_sleep_ms(1);
	return put_big(a->b, q);
}

static long voluntary_switches(pid_t pid)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

START_TEST(idle_and_deaths)
{
	char buf[TU_NAME_SIZE];
	const char *name = tu_name_kind(buf, "idle", shmkit_queue_unlink);
	struct shmkit_queue_attr attr = { .capacity = 4, .max_size = BIG, .mode = 0600,
					  .slot_size = BIG }; /* one slot each: a long copy */
	struct board *b = tu_shared(sizeof(*b));
	struct carg arg = { b, name };
	struct shmkit_queue_stats st;
	static pid_t pids[CONSUMERS];
	long before[CONSUMERS], after, worst = 0;
	int64_t t0, deadline;
	shmkit_queue *q;
	uint64_t want, tag;
	pid_t prod;
	int i, r, k, rounds = 0, reclaimed_rounds = 0;
	double secs;

	ck_assert_int_eq(shmkit_queue_create(name, &attr, &q), 0);
	/* This handle stays a writer: deaths of the producers must not bring EOF. */
	ck_assert_int_eq(shmkit_queue_attach_writer(q), 0);
	for (i = 0; i < CONSUMERS; i++)
		pids[i] = tu_fork(consumer, &arg);

	/* All blocked in get. */
	deadline = tu_now_ns() + 60 * TU_NS_PER_S;
	do {
		tu_sleep_ms(50);
		ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
		ck_assert_msg(tu_now_ns() < deadline, "only %u consumers waiting",
			      st.consumers_waiting);
	} while (st.consumers_waiting < CONSUMERS);
	tu_sleep_ms(1500); /* past any first look a new sleeper makes */

	t0 = tu_now_ns();
	for (i = 0; i < CONSUMERS; i++)
		before[i] = voluntary_switches(pids[i]);
	tu_sleep_ms(IDLE_SECONDS * 1000);
	secs = (double)(tu_now_ns() - t0) / TU_NS_PER_S;
	for (i = 0; i < CONSUMERS; i++) {
		after = voluntary_switches(pids[i]);
		ck_assert_msg(before[i] >= 0 && after >= 0, "no /proc status for consumer %d", i);
		if (after - before[i] > worst)
			worst = after - before[i];
	}
	fprintf(stderr, "idle: worst consumer %ld voluntary switches in %.1f s\n", worst, secs);
	ck_assert_msg(worst <= (long)(MAX_WAKES_PER_S * secs) + 1,
		      "an idle consumer woke %ld times in %.1f s", worst, secs);

	/* Producers killed while putting a big message; another then puts AFTER small ones. */
	for (r = 1; r <= KILL_ROUNDS && reclaimed_rounds < 2; r++) {
		uint64_t reclaimed_before, acked;
		unsigned char small[8];

		ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
		reclaimed_before = st.slots_reclaimed;
		atomic_store(&b->putting, 0);
		prod = tu_fork(big_producer, &arg);
		deadline = tu_now_ns() + 60 * TU_NS_PER_S;
		while (!atomic_load(&b->putting) && tu_now_ns() < deadline)
			;
		/* A little later each round: from the claim into the copy. */
		for (t0 = tu_now_ns(); tu_now_ns() - t0 < (int64_t)r * 50000;)
			;
		kill(prod, SIGKILL);
		ck_assert_int_eq(tu_wait_child(prod, 30), 128 + SIGKILL);
		acked = atomic_load(&b->acked);
		for (k = 0; k < AFTER; k++) {
			tag = (uint64_t)r << 32 | (uint64_t)k;
			memcpy(small, &tag, 8);
			ck_assert_int_eq(shmkit_queue_put_timeout(q, small, 8, 60 * TU_NS_PER_S), 0);
		}
		/* Everything acknowledged so far, and this round's messages, arrive. */
		t0 = tu_now_ns();
		want = acked + (uint64_t)r * AFTER;
		while (atomic_load(&b->got) < want) {
			ck_assert_msg(tu_now_ns() - t0 < (int64_t)(NOTICE_BOUND_S * TU_NS_PER_S),
				      "round %d: consumers got %llu of %llu in %.0f s", r,
				      (unsigned long long)atomic_load(&b->got),
				      (unsigned long long)want, NOTICE_BOUND_S);
			tu_sleep_ms(5);
		}
		for (k = 0; k < AFTER; k++) {
			while (atomic_load(&b->got_by_id[r][k]) == 0 &&
			       tu_now_ns() - t0 < (int64_t)(NOTICE_BOUND_S * TU_NS_PER_S))
				tu_sleep_ms(5);
			ck_assert_msg(atomic_load(&b->got_by_id[r][k]) == 1,
				      "round %d message %d arrived %llu times", r, k,
				      (unsigned long long)atomic_load(&b->got_by_id[r][k]));
		}
		rounds = r;
		ck_assert_int_eq(shmkit_queue_stats(q, &st), 0);
		if (st.slots_reclaimed > reclaimed_before)
			reclaimed_rounds++;
		fprintf(stderr, "round %d: %.2f s until all arrived; slots reclaimed %llu\n", r,
			(double)(tu_now_ns() - t0) / TU_NS_PER_S,
			(unsigned long long)st.slots_reclaimed);
	}
	ck_assert_int_eq(atomic_load(&b->bad), 0);
	/* A put cut short by the kill may or may not have been published: at most one each. */
	ck_assert_msg(atomic_load(&b->got) <= atomic_load(&b->acked) + (uint64_t)rounds * (AFTER + 1),
		      "more messages than were put");
	ck_assert_msg(reclaimed_rounds > 0, "no kill landed mid-claim in %d rounds: inconclusive",
		      rounds);

	/* Last, nobody helps: the only writer left is killed mid-put and nobody else touches the
	 * queue; the sleeping consumers alone must notice, skip its slot and reach EOF. */
	atomic_store(&b->putting, 0);
	atomic_store(&b->attached, 0);
	prod = tu_fork(last_producer, &arg);
	deadline = tu_now_ns() + 60 * TU_NS_PER_S;
	while (!atomic_load(&b->attached) && tu_now_ns() < deadline)
		tu_sleep_ms(1);
	ck_assert_int_eq(shmkit_queue_detach_writer(q), 0);
	atomic_store(&b->go, 1);
	while (!atomic_load(&b->putting) && tu_now_ns() < deadline)
		;
	for (t0 = tu_now_ns(); tu_now_ns() - t0 < 100000;)
		;
	kill(prod, SIGKILL);
	t0 = tu_now_ns();
	ck_assert_int_eq(tu_wait_child(prod, 30), 128 + SIGKILL);
	ck_assert_int_eq(tu_wait_children(pids, CONSUMERS, NOTICE_BOUND_S), 0);
	fprintf(stderr, "EOF reached every consumer %.2f s after the last writer died\n",
		(double)(tu_now_ns() - t0) / TU_NS_PER_S);
	shmkit_queue_close(q);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("idle");
	TCase *tc;

	tu_skip_if_no_shm();
	tu_init();
	tc = tu_tcase(s, "idle", 600);
	tcase_add_test(tc, idle_and_deaths);
	return tu_run(s);
}
