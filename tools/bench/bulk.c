/*
 * Batches, loans and wake-ups: the rows whose test is batch, loan and wake.
 *
 *   batch  64 B messages, 1->1 and 2->2: single put/get against put_many/get_many of 32, both
 *          measured in this run; ratio = batch msgs/s / single msgs/s (target >= 2).
 *   loan   64 KiB messages 1->1: put/get (a copy in, a copy out) against reserve/commit and
 *          peek/release (written and read in place; the producer writes only a stamp, the
 *          consumer checks it); ratio = loan msgs/s / copy msgs/s (target >= 1.5).
 *   wake   16 consumers asleep on an empty queue, messages put one at a time once all are
 *          asleep again: the consumers' wake-ups (voluntary context switches: sleeps that
 *          ended) per message (target <= 2), and all their context switches (the involuntary
 *          ones are preemptions and yields, which other load on the machine adds); and the
 *          hand-off latency to one sleeping consumer (put to get returning) against a raw futex
 *          wake-up of a sleeping process (the floor), p50 of each; ratio = shmkit / floor
 *          (target <= 1.5).
 * Every message carries its producer and sequence number; a consumer that sees one out of order
 * or damaged fails the run, as does any difference between messages sent and received.
 */
#include "config.h"

#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench/bench.h"
#include "shmkit.h"

#define BATCH 32
#define WAIT_S 60
#define WAKE_CONSUMERS 16
#define SEQ_BITS 56

enum bulk_mode { M_SINGLE, M_BATCH, M_COPY, M_LOAN };

struct bulk_board {
	_Alignas(64) _Atomic int stop;
	struct {
		_Alignas(64) uint64_t sent, got, bad;
		int64_t t_end;
	} proc[BENCH_PROCS_MAX];
};

struct bulk_ctx {
	shmkit_queue *q;
	struct bench_team *team;
	struct bulk_board *b;
	enum bulk_mode mode;
	unsigned size, producers, consumers;
};

static uint64_t stamp_of(unsigned id, uint64_t seq)
{
	return (uint64_t)id << SEQ_BITS | seq;
}

static int bulk_producer(void *arg, unsigned idx)
{
	struct bulk_ctx *c = arg;
	unsigned char *buf = calloc(BATCH, c->size);
	struct iovec iov[BATCH];
	uint64_t seq = 0, w;
	void *slot;
	int rc = 0, i;

	if (!buf || shmkit_queue_attach_writer(c->q) < 0 || !bench_team_ready(c->team))
		return 1;
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf + (size_t)i * c->size;
		iov[i].iov_len = c->size;
	}
	while (!atomic_load_explicit(&c->b->stop, memory_order_relaxed)) {
		switch (c->mode) {
		case M_SINGLE:
		case M_COPY:
			w = stamp_of(idx, seq);
			memcpy(buf, &w, sizeof(w));
			rc = shmkit_queue_put(c->q, buf, c->size);
			seq += rc == 0;
			break;
		case M_BATCH:
			for (i = 0; i < BATCH; i++) {
				w = stamp_of(idx, seq + (uint64_t)i);
				memcpy(iov[i].iov_base, &w, sizeof(w));
			}
			rc = shmkit_queue_put_many(c->q, iov, BATCH);
			/* Fewer may fit: the rest are stamped again next round. */
			if (rc > 0)
				seq += (uint64_t)rc;
			break;
		case M_LOAN:
			if ((rc = shmkit_queue_reserve(c->q, &slot)) < 0)
				break;
			w = stamp_of(idx, seq);
			memcpy(slot, &w, sizeof(w));
			rc = shmkit_queue_commit(c->q, c->size);
			seq += rc == 0;
			break;
		}
		if (rc < 0) {
			fprintf(stderr, "shmkit: bench: put: %s\n", shmkit_strerror(rc));
			return 1;
		}
	}
	c->b->proc[idx].sent = seq;
	shmkit_queue_detach_writer(c->q);
	return 0;
}

static void check(const void *p, size_t len, unsigned size, unsigned producers, uint64_t *last,
		  uint64_t *bad)
{
	uint64_t w;
	unsigned id;

	if (len != size) {
		(*bad)++;
		return;
	}
	memcpy(&w, p, sizeof(w));
	id = (unsigned)(w >> SEQ_BITS);
	if (id >= producers || (w & ((1ULL << SEQ_BITS) - 1)) < last[id]) {
		(*bad)++;
		return;
	}
	last[id] = (w & ((1ULL << SEQ_BITS) - 1)) + 1;
}

static int bulk_consumer(void *arg, unsigned idx)
{
	struct bulk_ctx *c = arg;
	unsigned char *buf = calloc(BATCH, c->size);
	uint64_t last[BENCH_PROCS_MAX] = { 0 }, got = 0, bad = 0;
	struct iovec iov[BATCH];
	const void *m;
	int n, i;

	if (!buf)
		return 1;
	/* Register before the gate (nothing is queued yet, so this takes nothing). */
	if (shmkit_queue_get_try(c->q, buf, c->size) != -EAGAIN || !bench_team_ready(c->team))
		return 1;
	for (;;) {
		switch (c->mode) {
		case M_SINGLE:
		case M_COPY:
			n = shmkit_queue_get(c->q, buf, c->size);
			if (n >= 0) {
				check(buf, (size_t)n, c->size, c->producers, last, &bad);
				n = 1;
			}
			break;
		case M_BATCH:
			for (i = 0; i < BATCH; i++) {
				iov[i].iov_base = buf + (size_t)i * c->size;
				iov[i].iov_len = c->size;
			}
			n = shmkit_queue_get_many(c->q, iov, BATCH);
			for (i = 0; i < n; i++)
				check(iov[i].iov_base, iov[i].iov_len, c->size, c->producers, last,
				      &bad);
			break;
		default:
			n = shmkit_queue_peek(c->q, &m);
			if (n >= 0) {
				check(m, (size_t)n, c->size, c->producers, last, &bad);
				n = shmkit_queue_release(c->q) < 0 ? -EPROTO : 1;
			}
			break;
		}
		if (n == -EPIPE)
			break;
		if (n < 0) {
			fprintf(stderr, "shmkit: bench: get: %s\n", shmkit_strerror(n));
			return 1;
		}
		got += (uint64_t)n;
	}
	c->b->proc[c->producers + idx].t_end = bench_now();
	c->b->proc[c->producers + idx].got = got;
	c->b->proc[c->producers + idx].bad = bad;
	return 0;
}

static int bulk_rep(struct bulk_ctx *c, double seconds, double *rate, char *err, size_t errlen)
{
	struct shmkit_queue_attr a = { 0 };
	struct bench_team team;
	uint64_t sent = 0, got = 0, bad = 0;
	int64_t t0 = 0, t_end = 0;
	unsigned i;
	int rc;

	memset(c->b, 0, sizeof(*c->b));
	a.capacity = bench_capacity(c->size);
	a.max_size = c->size;
	a.slot_size = c->size; /* loans are one slot: a slot holds the whole message */
	a.writers = c->producers;
	if ((rc = shmkit_queue_create(NULL, &a, &c->q)) < 0) {
		snprintf(err, errlen, "create: %s", shmkit_strerror(rc));
		return rc;
	}
	if ((rc = bench_team_init(&team)) < 0) {
		snprintf(err, errlen, "pipe: %s", shmkit_strerror(rc));
		shmkit_queue_close(c->q);
		return rc;
	}
	c->team = &team;
	for (i = 0; i < c->producers && rc == 0; i++)
		rc = bench_team_spawn(&team, bulk_producer, c, i);
	for (i = 0; i < c->consumers && rc == 0; i++)
		rc = bench_team_spawn(&team, bulk_consumer, c, i);
	if (rc < 0) {
		snprintf(err, errlen, "fork: %s", shmkit_strerror(rc));
		goto out;
	}
	if ((rc = bench_team_go(&team, WAIT_S, &t0)) < 0) {
		snprintf(err, errlen, "a process failed before the start");
		goto out;
	}
	bench_sleep(seconds);
	atomic_store(&c->b->stop, 1);
	rc = bench_team_wait(&team, 0, c->producers + c->consumers, WAIT_S);
	if (rc < 0) {
		snprintf(err, errlen, "%s", rc == -ETIMEDOUT ? "a process hung" : "a process failed");
		goto out;
	}
	for (i = 0; i < c->producers; i++)
		sent += c->b->proc[i].sent;
	for (i = c->producers; i < c->producers + c->consumers; i++) {
		got += c->b->proc[i].got;
		bad += c->b->proc[i].bad;
		if (c->b->proc[i].t_end > t_end)
			t_end = c->b->proc[i].t_end;
	}
	if (sent != got || bad) {
		snprintf(err, errlen, "%llu sent, %llu received, %llu damaged or out of order",
			 (unsigned long long)sent, (unsigned long long)got,
			 (unsigned long long)bad);
		rc = -EBADMSG;
	} else if (got == 0 || t_end <= t0) {
		snprintf(err, errlen, "nothing was received");
		rc = -EIO;
	} else {
		*rate = (double)got / ((double)(t_end - t0) / 1e9);
	}
out:
	bench_team_end(&team);
	shmkit_queue_close(c->q);
	c->q = NULL;
	return rc;
}

static const char *const mode_names[] = { "single", "batch32", "copy", "loan" };

/* Median msgs/s of one mode and shape into *r (added by the caller). -1 on failure. */
static int bulk_cell(const struct bench_opts *o, struct bulk_ctx *c, enum bench_test t,
		     struct bench_result *r)
{
	double rates[64], rate = 0;
	unsigned k;

	bench_result_init(r, "shmkit", t);
	r->mode = mode_names[c->mode];
	r->size = c->size;
	r->producers = c->producers;
	r->consumers = c->consumers;
	snprintf(r->note, sizeof(r->note), "capacity %u", bench_capacity(c->size));
	for (k = 0; k <= o->reps; k++) {
		bench_progress(o, "%s %u B %u->%u %s: %s %u/%u", bench_test_name(t), c->size,
			       c->producers, c->consumers, r->mode, k ? "run" : "warm-up", k,
			       o->reps);
		if (bulk_rep(c, k ? o->tput_s : o->warm_s, &rate, r->error, sizeof(r->error)) < 0)
			return -1;
		if (k)
			rates[k - 1] = rate;
	}
	r->reps = o->reps;
	r->msgs_per_s = bench_median(rates, o->reps);
	r->lo = rates[0];
	r->hi = rates[o->reps - 1];
	r->mb_per_s = r->msgs_per_s * c->size / 1e6;
	return 0;
}

/* The reference row and the new one, measured back to back; the new one carries the ratio. */
static int pair(const struct bench_opts *o, struct bulk_ctx *c, enum bench_test t,
		enum bulk_mode ref, enum bulk_mode new)
{
	struct bench_result a, b;
	int failed = 0;

	c->mode = ref;
	failed |= bulk_cell(o, c, t, &a);
	c->mode = new;
	failed |= bulk_cell(o, c, t, &b);
	if (!failed)
		b.ratio = b.msgs_per_s / a.msgs_per_s;
	bench_add(&a);
	bench_add(&b);
	return failed ? -1 : 0;
}

int bench_batch(const struct bench_opts *o)
{
	struct bulk_ctx c = { 0 };
	unsigned shape;
	int failed = 0;

	if (!(c.b = bench_shared(sizeof(*c.b))))
		return -1;
	c.size = 64;
	for (shape = 1; shape <= 2; shape++) {
		c.producers = c.consumers = shape;
		failed |= pair(o, &c, BENCH_BATCH, M_SINGLE, M_BATCH);
	}
	bench_unshare(c.b, sizeof(*c.b));
	return failed;
}

int bench_loan(const struct bench_opts *o)
{
	struct bulk_ctx c = { 0 };
	int failed;

	if (!(c.b = bench_shared(sizeof(*c.b))))
		return -1;
	c.size = 65536;
	c.producers = c.consumers = 1;
	failed = pair(o, &c, BENCH_LOAN, M_COPY, M_LOAN);
	bench_unshare(c.b, sizeof(*c.b));
	return failed;
}

/* ------------------------------------------------------------------------------------------- */
/* Wake-ups                                                                                    */

struct wake_board {
	_Alignas(64) _Atomic uint32_t futex;   /* the floor's word */
	_Atomic uint32_t asleep;               /* the floor's sleeper is about to sleep */
	_Atomic int64_t sent_at;               /* CLOCK_MONOTONIC ns of the put / the wake */
	_Alignas(64) _Atomic uint64_t got;     /* messages received, all consumers */
	_Atomic uint64_t bad;
	int64_t lat[2][4096];                  /* hand-off latencies: shmkit, floor */
	struct {
		_Alignas(64) long csw;         /* context switches during the run */
		long wakeups;                  /* of them voluntary: sleeps that ended */
	} proc[WAKE_CONSUMERS];
};

struct wake_ctx {
	shmkit_queue *q;
	struct bench_team *team;
	struct wake_board *b;
	unsigned n; /* messages */
};

/* Context switches so far, and of them voluntary ones (each a sleep that ended: a wake-up). */
static long csw_now(long *voluntary)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*voluntary = ru.ru_nvcsw;
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

static int wake_consumer(void *arg, unsigned idx)
{
	struct wake_ctx *c = arg;
	uint64_t v, k;
	long csw0, vol0, vol;
	int rc;

	if (shmkit_queue_get_try(c->q, &v, sizeof(v)) != -EAGAIN || !bench_team_ready(c->team))
		return 1;
	csw0 = csw_now(&vol0);
	while ((rc = shmkit_queue_get(c->q, &v, sizeof(v))) == (int)sizeof(v)) {
		int64_t lat = bench_now() - atomic_load(&c->b->sent_at);

		k = atomic_fetch_add(&c->b->got, 1);
		if (v != k)
			atomic_fetch_add(&c->b->bad, 1);
		if (k < 4096)
			c->b->lat[0][k] = lat;
	}
	c->b->proc[idx].csw = csw_now(&vol) - csw0;
	c->b->proc[idx].wakeups = vol - vol0;
	return rc == -EPIPE ? 0 : 1;
}

/* Wait until `consumers` are asleep on the queue again (and a little more, so that each is in
 * the kernel, not about to be). false past the timeout. */
static bool all_asleep(shmkit_queue *q, unsigned consumers)
{
	struct shmkit_queue_stats st;
	int64_t until = bench_now() + (int64_t)WAIT_S * 1000000000LL;

	do {
		if (shmkit_queue_stats(q, &st) == 0 && st.consumers_waiting >= consumers) {
			bench_sleep(0.0003);
			return true;
		}
		bench_sleep(0.0001);
	} while (bench_now() < until);
	return false;
}

/* One run: n messages to `consumers` sleepers. Context switches per message into *csw, and
 * the latencies into b->lat[0]. */
static int wake_rep(struct wake_ctx *c, unsigned consumers, double *csw, double *wakeups,
		    char *err, size_t errlen)
{
	struct shmkit_queue_attr a = { .capacity = 64, .max_size = 8, .writers = 1 };
	struct bench_team team;
	int64_t t0;
	long total = 0, vol = 0;
	uint64_t k;
	unsigned i;
	int rc;

	memset(c->b, 0, sizeof(*c->b));
	if ((rc = shmkit_queue_create(NULL, &a, &c->q)) < 0) {
		snprintf(err, errlen, "create: %s", shmkit_strerror(rc));
		return rc;
	}
	if ((rc = bench_team_init(&team)) < 0) {
		snprintf(err, errlen, "pipe: %s", shmkit_strerror(rc));
		shmkit_queue_close(c->q);
		return rc;
	}
	c->team = &team;
	for (i = 0; i < consumers && rc == 0; i++)
		rc = bench_team_spawn(&team, wake_consumer, c, i);
	if (rc < 0 || (rc = bench_team_go(&team, WAIT_S, &t0)) < 0) {
		snprintf(err, errlen, "consumers did not start");
		goto out;
	}
	for (k = 0; k < c->n; k++) {
		if (!all_asleep(c->q, consumers)) {
			snprintf(err, errlen, "consumers did not go back to sleep");
			rc = -ETIMEDOUT;
			goto out;
		}
		atomic_store(&c->b->sent_at, bench_now());
		if ((rc = shmkit_queue_put(c->q, &k, sizeof(k))) < 0) {
			snprintf(err, errlen, "put: %s", shmkit_strerror(rc));
			goto out;
		}
		/* One at a time: the next only once this one is taken. */
		while (atomic_load(&c->b->got) <= k)
			bench_sleep(0.00005);
	}
	shmkit_queue_detach_writer(c->q);
	if ((rc = bench_team_wait(&team, 0, consumers, WAIT_S)) < 0) {
		snprintf(err, errlen, "a consumer failed or hung");
		goto out;
	}
	if (atomic_load(&c->b->bad) || atomic_load(&c->b->got) != c->n) {
		snprintf(err, errlen, "messages lost, repeated or out of order");
		rc = -EBADMSG;
		goto out;
	}
	for (i = 0; i < consumers; i++) {
		total += c->b->proc[i].csw;
		vol += c->b->proc[i].wakeups;
	}
	*csw = (double)total / c->n;
	*wakeups = (double)vol / c->n;
out:
	bench_team_end(&team);
	shmkit_queue_close(c->q);
	c->q = NULL;
	return rc;
}

static long futex_op(_Atomic uint32_t *w, int op, uint32_t v)
{
	return syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

/* The floor: one process asleep in FUTEX_WAIT, woken by another, n times. */
static int floor_sleeper(void *arg, unsigned idx)
{
	struct wake_ctx *c = arg;
	uint32_t k;

	(void)idx;
	if (!bench_team_ready(c->team))
		return 1;
	for (k = 0; k < c->n; k++) {
		atomic_store(&c->b->asleep, 1);
		while (atomic_load(&c->b->futex) == k)
			futex_op(&c->b->futex, FUTEX_WAIT, k);
		if (k < 4096)
			c->b->lat[1][k] = bench_now() - atomic_load(&c->b->sent_at);
		atomic_store(&c->b->asleep, 0);
		atomic_fetch_add(&c->b->got, 1);
	}
	return 0;
}

static int floor_rep(struct wake_ctx *c, char *err, size_t errlen)
{
	struct bench_team team;
	int64_t t0, until;
	uint32_t k;
	int rc;

	memset(c->b, 0, sizeof(*c->b));
	if ((rc = bench_team_init(&team)) < 0) {
		snprintf(err, errlen, "pipe: %s", shmkit_strerror(rc));
		return rc;
	}
	c->team = &team;
	if ((rc = bench_team_spawn(&team, floor_sleeper, c, 0)) < 0 ||
	    (rc = bench_team_go(&team, WAIT_S, &t0)) < 0) {
		snprintf(err, errlen, "the sleeper did not start");
		goto out;
	}
	for (k = 0; k < c->n; k++) {
		until = bench_now() + (int64_t)WAIT_S * 1000000000LL;
		while (!atomic_load(&c->b->asleep) || atomic_load(&c->b->got) != k) {
			if (bench_now() > until) {
				snprintf(err, errlen, "the sleeper hung");
				rc = -ETIMEDOUT;
				goto out;
			}
			bench_sleep(0.0001);
		}
		bench_sleep(0.0003); /* as all_asleep: in the kernel by now */
		atomic_store(&c->b->sent_at, bench_now());
		atomic_store(&c->b->futex, k + 1);
		futex_op(&c->b->futex, FUTEX_WAKE, 1);
	}
	rc = bench_team_wait(&team, 0, 1, WAIT_S);
	if (rc < 0)
		snprintf(err, errlen, "the sleeper failed");
out:
	bench_team_end(&team);
	return rc;
}

static double p50(int64_t *v, unsigned n)
{
	bench_sort_i64(v, n);
	return bench_quantile(v, n, 0.5);
}

int bench_wake(const struct bench_opts *o)
{
	struct wake_ctx c = { 0 };
	struct bench_result herd, lat, flr;
	double csw = 0, wk = 0, csws[64], wks[64], lats[64], floors[64];
	unsigned k, nlat = 0;
	int failed = 0;

	if (!(c.b = bench_shared(sizeof(*c.b))))
		return -1;
	c.n = o->quick ? 100 : 300;
	bench_result_init(&herd, "shmkit", BENCH_WAKE);
	herd.mode = "herd";
	herd.size = 8;
	herd.producers = 1;
	herd.consumers = WAKE_CONSUMERS;
	snprintf(herd.note, sizeof(herd.note),
		 "%u consumers asleep; wake-ups/msg target <= 2",
		 WAKE_CONSUMERS);
	bench_result_init(&lat, "shmkit", BENCH_WAKE);
	lat.mode = "handoff";
	lat.size = 8;
	lat.producers = lat.consumers = 1;
	bench_result_init(&flr, "futex", BENCH_WAKE);
	flr.mode = "handoff";
	flr.size = 4;
	flr.producers = flr.consumers = 1;
	snprintf(flr.note, sizeof(flr.note), "FUTEX_WAKE of a process asleep in FUTEX_WAIT");
	for (k = 0; k < o->reps && !failed; k++) {
		bench_progress(o, "wake: %u sleepers %u/%u", WAKE_CONSUMERS, k + 1, o->reps);
		if (wake_rep(&c, WAKE_CONSUMERS, &csw, &wk, herd.error, sizeof(herd.error)) < 0) {
			failed = -1;
			break;
		}
		csws[k] = csw;
		wks[k] = wk;
		bench_progress(o, "wake: hand-off to one sleeper %u/%u", k + 1, o->reps);
		if (wake_rep(&c, 1, &csw, &wk, lat.error, sizeof(lat.error)) < 0) {
			failed = -1;
			break;
		}
		lats[k] = p50(c.b->lat[0], c.n);
		bench_progress(o, "wake: futex floor %u/%u", k + 1, o->reps);
		if (floor_rep(&c, flr.error, sizeof(flr.error)) < 0) {
			failed = -1;
			break;
		}
		floors[k] = p50(c.b->lat[1], c.n);
		nlat++;
	}
	if (!failed) {
		herd.reps = lat.reps = flr.reps = o->reps;
		herd.csw_per_msg = bench_median(csws, nlat);
		herd.wakeups_per_msg = bench_median(wks, nlat);
		lat.p50_ns = bench_median(lats, nlat);
		flr.p50_ns = bench_median(floors, nlat);
		lat.ratio = lat.p50_ns / flr.p50_ns;
		snprintf(lat.note, sizeof(lat.note),
			 "put to a sleeping consumer's get returning; ratio vs futex, target <= 1.5");
	}
	bench_add(&herd);
	bench_add(&lat);
	bench_add(&flr);
	bench_unshare(c.b, sizeof(*c.b));
	return failed;
}
