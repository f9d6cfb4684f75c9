/*
 * Round-trip latency: one process sends a message and waits for the echo from another, with
 * the blocking calls of each transport; every round trip is timed on its own, so p99 and p99.9
 * show the wake-up tail, not just the mean. The first tenth of each run is a warm-up and not
 * counted; each percentile is the median over the runs.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "shmkit.h"

#define WAIT_S 120

struct rtt_ctx {
	const struct bench_xport *x;
	void *link;
	struct bench_team *team;
	int64_t *samples; /* shared: the pinger's round trips */
	unsigned size, warm, n;
};

static int pinger(void *arg, unsigned idx)
{
	struct rtt_ctx *c = arg;
	unsigned char *buf = calloc(1, c->size), *back = calloc(1, c->size);
	uint64_t i, w;
	int64_t t;
	int rc;

	if (!buf || !back)
		return 1;
	if ((rc = c->x->attach(c->link, 0, 0)) < 0 || !bench_team_ready(c->team))
		return 1;
	for (i = 0; i < (uint64_t)c->warm + c->n; i++) {
		memcpy(buf, &i, sizeof(i));
		t = bench_now();
		if ((rc = c->x->send(c->link, buf, c->size)) < 0)
			break;
		if ((rc = c->x->recv(c->link, back, c->size)) != (int)c->size) {
			rc = rc < 0 ? rc : -EBADMSG;
			break;
		}
		t = bench_now() - t;
		memcpy(&w, back, sizeof(w));
		if (w != i) {
			rc = -EBADMSG;
			break;
		}
		if (i >= c->warm)
			c->samples[i - c->warm] = t;
	}
	if (rc < 0) {
		fprintf(stderr, "shmkit: bench: %s: round trip: %s\n", c->x->name,
			shmkit_strerror(rc));
		return 1;
	}
	return 0;
}

static int echo(void *arg, unsigned idx)
{
	struct rtt_ctx *c = arg;
	unsigned char *buf = calloc(1, c->size);
	uint64_t i;
	int rc;

	if (!buf)
		return 1;
	if ((rc = c->x->attach(c->link, 1, 0)) < 0 || !bench_team_ready(c->team))
		return 1;
	for (i = 0; i < (uint64_t)c->warm + c->n; i++) {
		if ((rc = c->x->recv(c->link, buf, c->size)) != (int)c->size ||
		    (rc = c->x->send(c->link, buf, c->size)) < 0) {
			fprintf(stderr, "shmkit: bench: %s: echo: %s\n", c->x->name,
				rc < 0 ? shmkit_strerror(rc) : "short message");
			return 1;
		}
	}
	return 0;
}

static int rtt_rep(struct rtt_ctx *c, double q[3], char *err, size_t errlen)
{
	struct bench_link_cfg cfg = { c->size, 1, 1, true, 0 };
	struct bench_team team;
	int64_t t0;
	int rc;

	if ((rc = c->x->open(&cfg, &c->link)) < 0) {
		snprintf(err, errlen, "open: %s", shmkit_strerror(rc));
		return rc;
	}
	if ((rc = bench_team_init(&team)) < 0) {
		c->x->close(c->link);
		snprintf(err, errlen, "pipe: %s", shmkit_strerror(rc));
		return rc;
	}
	c->team = &team;
	if ((rc = bench_team_spawn(&team, pinger, c, 0)) == 0)
		rc = bench_team_spawn(&team, echo, c, 1);
	c->x->forked(c->link);
	if (rc < 0)
		snprintf(err, errlen, "fork: %s", shmkit_strerror(rc));
	else if ((rc = bench_team_go(&team, WAIT_S, &t0)) < 0)
		snprintf(err, errlen, "a process failed before the start");
	else if ((rc = bench_team_wait(&team, 0, 2, WAIT_S)) < 0)
		snprintf(err, errlen, "%s", rc == -ETIMEDOUT ? "hung" : "a process failed");
	bench_team_end(&team);
	c->x->close(c->link);
	c->link = NULL;
	if (rc < 0)
		return rc;
	bench_sort_i64(c->samples, c->n);
	q[0] = bench_quantile(c->samples, c->n, 0.5);
	q[1] = bench_quantile(c->samples, c->n, 0.99);
	q[2] = bench_quantile(c->samples, c->n, 0.999);
	return 0;
}

static const struct bench_xport *const xports[] = {
	&bench_xport_queue, &bench_xport_spipe, &bench_xport_pipe, &bench_xport_unix,
	&bench_xport_mq,
};

int bench_rtt(const struct bench_opts *o)
{
	static const unsigned sizes[] = { 64, 4096 };
	struct rtt_ctx c = { 0 };
	double p[3][64], q[3];
	struct bench_result r;
	unsigned s, x, k;
	int failed = 0;
	size_t bytes = (size_t)o->rtts * sizeof(int64_t);

	if (!(c.samples = bench_shared(bytes)))
		return -1;
	c.n = o->rtts;
	c.warm = o->rtts / 10 > 100 ? o->rtts / 10 : 100;
	for (s = 0; s < 2; s++) {
		for (x = 0; x < sizeof(xports) / sizeof(xports[0]); x++) {
			struct bench_link_cfg cfg = { sizes[s], 1, 1, true, 0 };

			c.x = xports[x];
			c.size = sizes[s];
			bench_result_init(&r, c.x->name, BENCH_RTT);
			r.size = c.size;
			r.producers = r.consumers = 1;
			if (!c.x->supported(&cfg, r.unsupported, sizeof(r.unsupported))) {
				bench_add(&r);
				continue;
			}
			for (k = 0; k < o->reps; k++) {
				bench_progress(o, "round trips %u B %s: run %u/%u", c.size,
					       c.x->name, k + 1, o->reps);
				if (rtt_rep(&c, q, r.error, sizeof(r.error)) < 0)
					break;
				p[0][k] = q[0];
				p[1][k] = q[1];
				p[2][k] = q[2];
			}
			if (k < o->reps) {
				failed = -1;
				bench_add(&r);
				continue;
			}
			r.reps = o->reps;
			r.round_trips = o->rtts;
			r.p50_ns = bench_median(p[0], o->reps); /* sorts them */
			r.lo = p[0][0];
			r.hi = p[0][o->reps - 1];
			r.p99_ns = bench_median(p[1], o->reps);
			r.p999_ns = bench_median(p[2], o->reps);
			if (bench_add(&r) < 0)
				failed = -1;
		}
	}
	bench_unshare(c.samples, bytes);
	return failed;
}
