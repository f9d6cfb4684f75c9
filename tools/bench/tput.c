/*
 * Throughput: P producer processes send messages of one size as fast as they can for a fixed
 * time, C consumer processes receive until EOF; msgs/s is every message received over the time
 * from the gate opening to the last consumer seeing EOF (so draining what was queued counts).
 *
 * Each message carries its producer and sequence number (first 8 bytes, and their complement
 * in the last 8), and each consumer checks, at the cost of a compare or two, that every
 * producer's numbers rise and the ends match: a torn, duplicated or foreign message fails the
 * run, as does any difference between messages sent and received.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "shmkit.h"

#define SEQ_BITS 56
#define SEQ_MASK ((1ULL << SEQ_BITS) - 1)
#define WAIT_S 60 /* generous: only a hung child takes this long */

struct tput_board {
	_Alignas(64) _Atomic int stop;
	struct {
		_Alignas(64) uint64_t sent, got, bad;
		int64_t t_end;
	} proc[BENCH_PROCS_MAX];
};

struct tput_ctx {
	const struct bench_xport *x;
	void *link;
	struct bench_team *team;
	struct tput_board *b;
	unsigned size, producers, consumers;
	unsigned slot; /* bench_link_cfg.slot */
};

static void stamp(unsigned char *buf, unsigned size, unsigned id, uint64_t seq)
{
	uint64_t w = (uint64_t)id << SEQ_BITS | seq, t = ~w;

	memcpy(buf, &w, sizeof(w));
	if (size >= 2 * sizeof(w))
		memcpy(buf + size - sizeof(t), &t, sizeof(t));
}

static int producer(void *arg, unsigned idx)
{
	struct tput_ctx *c = arg;
	unsigned char *buf = calloc(1, c->size);
	uint64_t seq = 0;
	int rc;

	if (!buf)
		return 1;
	if ((rc = c->x->attach(c->link, 0, idx)) < 0) {
		fprintf(stderr, "shmkit: bench: %s: attach: %s\n", c->x->name, shmkit_strerror(rc));
		return 1;
	}
	if (!bench_team_ready(c->team))
		return 1;
	while (!atomic_load_explicit(&c->b->stop, memory_order_relaxed)) {
		stamp(buf, c->size, idx, seq);
		if ((rc = c->x->send(c->link, buf, c->size)) < 0) {
			fprintf(stderr, "shmkit: bench: %s: send: %s\n", c->x->name,
				shmkit_strerror(rc));
			return 1;
		}
		seq++;
	}
	c->b->proc[idx].sent = seq;
	c->x->sender_done(c->link);
	return 0;
}

static int consumer(void *arg, unsigned idx)
{
	struct tput_ctx *c = arg;
	unsigned char *buf = calloc(1, c->size);
	uint64_t last[BENCH_PROCS_MAX] = { 0 }, got = 0, bad = 0, w, t;
	unsigned id;
	int n;

	if (!buf)
		return 1;
	if ((n = c->x->attach(c->link, 1, idx)) < 0) {
		fprintf(stderr, "shmkit: bench: %s: attach: %s\n", c->x->name, shmkit_strerror(n));
		return 1;
	}
	if (!bench_team_ready(c->team))
		return 1;
	for (;;) {
		n = c->x->recv(c->link, buf, c->size);
		if (n == 0)
			break;
		if (n < 0) {
			fprintf(stderr, "shmkit: bench: %s: receive: %s\n", c->x->name,
				shmkit_strerror(n));
			return 1;
		}
		got++;
		if ((unsigned)n != c->size) {
			bad++;
			continue;
		}
		memcpy(&w, buf, sizeof(w));
		id = (unsigned)(w >> SEQ_BITS);
		if (c->size >= 2 * sizeof(w))
			memcpy(&t, buf + c->size - sizeof(t), sizeof(t));
		else
			t = ~w;
		if (id >= c->producers || (w & SEQ_MASK) < last[id] || t != ~w)
			bad++;
		else
			last[id] = (w & SEQ_MASK) + 1;
	}
	c->b->proc[c->producers + idx].t_end = bench_now();
	c->b->proc[c->producers + idx].got = got;
	c->b->proc[c->producers + idx].bad = bad;
	return 0;
}

/* One run: messages per second into *rate, or a negative errno with what went wrong in err. */
static int tput_rep(struct tput_ctx *c, double seconds, double *rate, char *err, size_t errlen)
{
	struct bench_link_cfg cfg = { c->size, c->producers, c->consumers, false, c->slot };
	struct bench_team team;
	uint64_t sent = 0, got = 0, bad = 0;
	int64_t t0 = 0, t_end = 0;
	unsigned i;
	int rc;

	memset(c->b, 0, sizeof(*c->b));
	if ((rc = c->x->open(&cfg, &c->link)) < 0) {
		snprintf(err, errlen, "open: %s", shmkit_strerror(rc));
		return rc;
	}
	if ((rc = bench_team_init(&team)) < 0) {
		snprintf(err, errlen, "pipe: %s", shmkit_strerror(rc));
		c->x->close(c->link);
		return rc;
	}
	c->team = &team;
	for (i = 0; i < c->producers && rc == 0; i++)
		rc = bench_team_spawn(&team, producer, c, i);
	for (i = 0; i < c->consumers && rc == 0; i++)
		rc = bench_team_spawn(&team, consumer, c, i);
	c->x->forked(c->link);
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
	if ((rc = bench_team_wait(&team, 0, c->producers, WAIT_S)) < 0) {
		snprintf(err, errlen, "%s", rc == -ETIMEDOUT ? "producers hung" : "a producer failed");
		goto out;
	}
	if ((rc = c->x->senders_gone(c->link, c->consumers)) < 0) {
		snprintf(err, errlen, "end marker: %s", shmkit_strerror(rc));
		goto out;
	}
	rc = bench_team_wait(&team, c->producers, c->producers + c->consumers, WAIT_S);
	if (rc < 0) {
		snprintf(err, errlen, "%s", rc == -ETIMEDOUT ? "consumers hung" : "a consumer failed");
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
	c->x->close(c->link);
	c->link = NULL;
	return rc;
}

static const unsigned sizes_full[] = { 8, 64, 512, 4096, 65536 };
static const unsigned sizes_quick[] = { 64, 4096 };
static const unsigned shapes_full[] = { 1, 2, 4 };
static const unsigned shapes_quick[] = { 1, 2 };

static const struct bench_xport *const xports[] = {
	&bench_xport_queue, &bench_xport_spipe, &bench_xport_pipe, &bench_xport_unix,
	&bench_xport_mq,
};

static int cell(const struct bench_opts *o, struct tput_ctx *c, enum bench_test t)
{
	struct bench_link_cfg cfg = { c->size, c->producers, c->consumers, false, c->slot };
	struct bench_result r;
	double rates[64], rate = 0;
	unsigned k;
	int rc;

	bench_result_init(&r, c->x->name, t);
	r.size = c->size;
	r.producers = c->producers;
	r.consumers = c->consumers;
	if (!c->x->supported(&cfg, r.unsupported, sizeof(r.unsupported)))
		return bench_add(&r);
	c->x->describe(&cfg, r.note, sizeof(r.note));
	for (k = 0; k <= o->reps; k++) {
		bench_progress(o, "throughput %u B %u->%u %s: %s %u/%u", c->size, c->producers,
			       c->consumers, c->x->name, k ? "run" : "warm-up", k, o->reps);
		/* k == 0 is the warm-up: caches, page tables, CPU frequency. */
		rc = tput_rep(c, k ? o->tput_s : o->warm_s, &rate, r.error, sizeof(r.error));
		if (rc < 0) {
			bench_add(&r);
			return -1;
		}
		if (k)
			rates[k - 1] = rate;
	}
	r.reps = o->reps;
	r.msgs_per_s = bench_median(rates, o->reps); /* sorts them */
	r.lo = rates[0];
	r.hi = rates[o->reps - 1];
	r.mb_per_s = r.msgs_per_s * c->size / 1e6;
	return bench_add(&r) < 0 ? -1 : 0;
}

int bench_throughput(const struct bench_opts *o)
{
	const unsigned *sizes = o->quick ? sizes_quick : sizes_full;
	const unsigned *shapes = o->quick ? shapes_quick : shapes_full;
	unsigned nsizes = o->quick ? 2 : 5, nshapes = o->quick ? 2 : 3, s, h, x;
	struct tput_ctx c = { 0 };
	int failed = 0;

	if (!(c.b = bench_shared(sizeof(*c.b))))
		return -1;
	for (s = 0; s < nsizes; s++) {
		for (h = 0; h < nshapes; h++) {
			for (x = 0; x < sizeof(xports) / sizeof(xports[0]); x++) {
				/* A Pipe has two ends: its rows are 1->1 only. */
				if (xports[x] == &bench_xport_spipe && shapes[h] != 1)
					continue;
				c.x = xports[x];
				c.size = sizes[s];
				c.producers = c.consumers = shapes[h];
				if (cell(o, &c, BENCH_THROUGHPUT) < 0)
					failed = -1;
			}
		}
	}
	bench_unshare(c.b, sizeof(*c.b));
	return failed;
}

static const unsigned large_full[] = { 8192, 65536, 1u << 20, 16u << 20 };
static const unsigned large_quick[] = { 65536, 1u << 20 };

static const struct bench_xport *const large_xports[] = {
	&bench_xport_queue, &bench_xport_spipe, &bench_xport_pipe, &bench_xport_ustream,
};

int bench_large(const struct bench_opts *o)
{
	const unsigned *sizes = o->quick ? large_quick : large_full;
	unsigned nsizes = o->quick ? 2 : 4, s, x;
	struct tput_ctx c = { 0 };
	int failed = 0;

	if (!(c.b = bench_shared(sizeof(*c.b))))
		return -1;
	for (s = 0; s < nsizes; s++) {
		for (x = 0; x < sizeof(large_xports) / sizeof(large_xports[0]); x++) {
			c.x = large_xports[x];
			c.size = sizes[s];
			c.producers = c.consumers = 1;
			c.slot = LARGE_SLOT;
			if (cell(o, &c, BENCH_LARGE) < 0)
				failed = -1;
		}
	}
	bench_unshare(c.b, sizeof(*c.b));
	return failed;
}
