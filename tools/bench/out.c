/*
 * The results of `shmkit bench`: kept in order, then printed as a table for people or as one
 * JSON object {"machine": {...}, "results": [...]} for programs.
 *
 * The table's ratio column compares each row with the shmkit row of the same test and shape:
 * shmkit ÷ that row, on the row's main figure (msgs/s, p50 ns, ns/op or CPU seconds); on a
 * shmkit-pipe row it is shmkit-pipe ÷ pipe(2).
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "util.h"

static struct bench_result *rows;
static size_t nrows, caprows;

static const char *const test_names[BENCH_NTESTS] = {
	[BENCH_THROUGHPUT] = "throughput", [BENCH_RTT] = "rtt",   [BENCH_COUNTER] = "counter",
	[BENCH_LOCK] = "lock",             [BENCH_SEM] = "sem",   [BENCH_IDLE] = "idle",
	[BENCH_BATCH] = "batch",           [BENCH_LOAN] = "loan", [BENCH_WAKE] = "wake",
	[BENCH_BRIDGE] = "bridge",         [BENCH_LARGE] = "large",
};

const char *bench_test_name(enum bench_test t)
{
	return (unsigned)t < BENCH_NTESTS ? test_names[t] : "?";
}

void bench_result_init(struct bench_result *r, const char *transport, enum bench_test t)
{
	memset(r, 0, sizeof(*r));
	r->transport = transport;
	r->test = t;
	r->msgs_per_s = r->mb_per_s = NAN;
	r->p50_ns = r->p99_ns = r->p999_ns = NAN;
	r->ops_per_s = r->ns_per_op = r->handoffs_per_s = r->lost = NAN;
	r->cpu_s = r->seconds = r->cpu_pct = NAN;
	r->lo = r->hi = NAN;
	r->ratio = r->csw_per_msg = r->wakeups_per_msg = NAN;
}

int bench_add(const struct bench_result *r)
{
	if (nrows == caprows) {
		size_t n = caprows ? 2 * caprows : 64;
		struct bench_result *v = realloc(rows, n * sizeof(*v));

		if (!v)
			return -1;
		rows = v;
		caprows = n;
	}
	rows[nrows++] = *r;
	return 0;
}

unsigned bench_failures(void)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < nrows; i++)
		n += rows[i].error[0] != 0;
	return n;
}

void bench_results_free(void)
{
	free(rows);
	rows = NULL;
	nrows = caprows = 0;
}

void bench_progress(const struct bench_opts *o, const char *fmt, ...)
{
	static double t0;
	va_list ap;

	if (!o->progress)
		return;
	if (!t0)
		t0 = now_seconds();
	fputs("\r\033[K", stderr);
	if (fmt) {
		fprintf(stderr, "shmkit bench [%.0f s]: ", now_seconds() - t0);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fflush(stderr);
}

/* ------------------------------------------------------------------------------------------- */
/* Ratios                                                                                      */

static bool has_figures(const struct bench_result *r)
{
	return !r->unsupported[0] && !r->error[0];
}

static double main_figure(const struct bench_result *r)
{
	switch (r->test) {
	case BENCH_THROUGHPUT:
	case BENCH_LARGE:
		return r->msgs_per_s;
	case BENCH_RTT:
		return r->p50_ns;
	case BENCH_LOCK:
		return r->ns_per_op;
	case BENCH_IDLE:
		return r->cpu_s;
	case BENCH_BRIDGE:
		return r->msgs_per_s;
	default:
		return NAN;
	}
}

static const struct bench_result *find(const struct bench_result *like, const char *transport,
				       const char *mode)
{
	size_t i;

	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		if (r->test == like->test && !strcmp(r->transport, transport) &&
		    r->size == like->size && r->producers == like->producers &&
		    r->consumers == like->consumers &&
		    (!mode || (r->mode && !strcmp(r->mode, mode))) && has_figures(r))
			return r;
	}
	return NULL;
}

/* shmkit ÷ this row (shmkit-pipe ÷ pipe for a shmkit-pipe row); NAN when there is none. */
static double ratio(const struct bench_result *r)
{
	const struct bench_result *ref;
	double a, b;

	if (!has_figures(r) || !strcmp(r->transport, "shmkit"))
		return NAN;
	if (r->test == BENCH_BRIDGE) { /* the bridge against bare ZeroMQ */
		if (strcmp(r->transport, "bridge") || !(ref = find(r, "zmq", NULL)))
			return NAN;
		a = main_figure(r);
		b = main_figure(ref);
	} else if (!strcmp(r->transport, "shmkit-pipe")) {
		if (!(ref = find(r, "pipe", NULL)))
			return NAN;
		a = main_figure(r);
		b = main_figure(ref);
	} else {
		/* Every pthread row is compared with the uncontended Lock. */
		if (!(ref = find(r, "shmkit", r->test == BENCH_LOCK ? "uncontended" : r->mode)))
			return NAN;
		a = main_figure(ref);
		b = main_figure(r);
	}
	return isfinite(a) && isfinite(b) && b > 0 ? a / b : NAN;
}

/* ------------------------------------------------------------------------------------------- */
/* Table                                                                                       */

/* v with thousands separators and `dec` decimals; "-" for NAN. */
static const char *num(char *buf, size_t n, double v, int dec)
{
	char raw[64], *dot, *o = buf;
	size_t len, i, intlen;

	if (!isfinite(v)) {
		snprintf(buf, n, "-");
		return buf;
	}
	snprintf(raw, sizeof(raw), "%.*f", dec, v);
	dot = strchr(raw, '.');
	len = strlen(raw);
	intlen = dot ? (size_t)(dot - raw) : len;
	for (i = 0; i < len && (size_t)(o - buf) + 2 < n; i++) {
		if (i > 0 && i < intlen && raw[i - 1] != '-' && (intlen - i) % 3 == 0)
			*o++ = ',';
		*o++ = raw[i];
	}
	*o = 0;
	return buf;
}

/* fastest run / slowest run, for msgs/s and p50: how much to trust the median. */
static const char *spread_str(char *buf, size_t n, const struct bench_result *r)
{
	double s = r->hi / r->lo;

	if (!isfinite(s) || r->lo <= 0)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.2f", s);
	return buf;
}

static const char *ratio_str(char *buf, size_t n, const struct bench_result *r)
{
	double x = ratio(r);

	if (!isfinite(x))
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, x >= 100 ? "%.0f" : x >= 10 ? "%.1f" : x >= 0.1 ? "%.2f" : "%.4f", x);
	return buf;
}

static bool any(enum bench_test t)
{
	size_t i;

	for (i = 0; i < nrows; i++)
		if (rows[i].test == t)
			return true;
	return false;
}

/* The end of a row that has no figures: why. */
static bool no_figures(const struct bench_result *r)
{
	if (r->unsupported[0])
		printf("unsupported: %s\n", r->unsupported);
	else if (r->error[0])
		printf("FAILED: %s\n", r->error);
	else
		return false;
	return true;
}

static void table_throughput(enum bench_test t)
{
	char a[40], b[40], c[16], s[16], shape[16];
	size_t i;

	if (t == BENCH_LARGE)
		printf("\nLarge messages: 1->1 through a Queue and a Pipe of 1024 slots of 4096 B "
		       "(4 MiB), each message\nlonger than a slot (ratio = shmkit msgs/s / this "
		       "row's, >= 2 is the target against pipe\nand unix)\n");
	else
		printf("\nThroughput: producers->consumers, each sending messages of one size "
		       "(higher is better;\nratio = shmkit msgs/s / this row's, > 1 means shmkit is "
		       "faster; spread = fastest run / slowest)\n");
	printf("%8s  %-5s  %-11s  %13s  %9s  %6s  %7s  %s\n", "size", "shape", "transport",
	       "msgs/s", "MB/s", "spread", "ratio", "how");
	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		if (r->test != t)
			continue;
		snprintf(shape, sizeof(shape), "%u->%u", r->producers, r->consumers);
		printf("%8u  %-5s  %-11s  ", r->size, shape, r->transport);
		if (no_figures(r))
			continue;
		printf("%13s  %9s  %6s  %7s  %s\n", num(a, sizeof(a), r->msgs_per_s, 0),
		       num(b, sizeof(b), r->mb_per_s, 1), spread_str(s, sizeof(s), r),
		       ratio_str(c, sizeof(c), r), r->note);
	}
}

static void table_rtt(void)
{
	char a[40], b[40], d[40], c[16], s[16];
	size_t i;

	printf("\nRound trip (ping-pong), ns (lower is better; ratio = shmkit p50 / this row's, "
	       "< 1 means\nshmkit is faster; spread = slowest run's p50 / fastest's)\n");
	printf("%6s  %-11s  %10s  %10s  %10s  %6s  %7s\n", "size", "transport", "p50", "p99",
	       "p99.9", "spread", "ratio");
	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		if (r->test != BENCH_RTT)
			continue;
		printf("%6u  %-11s  ", r->size, r->transport);
		if (no_figures(r))
			continue;
		printf("%10s  %10s  %10s  %6s  %7s\n", num(a, sizeof(a), r->p50_ns, 0),
		       num(b, sizeof(b), r->p99_ns, 0), num(d, sizeof(d), r->p999_ns, 0),
		       spread_str(s, sizeof(s), r), ratio_str(c, sizeof(c), r));
	}
}

static void table_counter(void)
{
	char a[40], b[40], d[40];
	size_t i;

	printf("\nCounters: shmkit_value_add by 1 or 2 processes at once (ns/op = 1e9 / "
	       "increments/s)\n");
	printf("%-7s  %5s  %13s  %8s  %13s  %s\n", "mode", "procs", "increments/s", "ns/op",
	       "lost", "how");
	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		if (r->test != BENCH_COUNTER)
			continue;
		printf("%-7s  %5u  ", r->mode, r->producers);
		if (no_figures(r))
			continue;
		printf("%13s  %8s  %13s  %s\n", num(a, sizeof(a), r->ops_per_s, 0),
		       num(b, sizeof(b), r->ns_per_op, 1), num(d, sizeof(d), r->lost, 0), r->note);
	}
}

static void table_sync(enum bench_test t, const char *title)
{
	char a[40], b[40], d[40], c[16];
	size_t i;

	printf("\n%s\n", title);
	printf("%-8s  %-11s  %5s  %8s  %13s  %13s  %7s  %s\n", "transport", "mode", "procs",
	       "ns/op", "ops/s", "hand-offs/s", "ratio", "how");
	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		if (r->test != t)
			continue;
		printf("%-8s  %-11s  %5u  ", r->transport, r->mode, r->producers);
		if (no_figures(r))
			continue;
		printf("%8s  %13s  %13s  %7s  %s\n", num(a, sizeof(a), r->ns_per_op, 1),
		       num(b, sizeof(b), r->ops_per_s, 0), num(d, sizeof(d), r->handoffs_per_s, 0),
		       ratio_str(c, sizeof(c), r), r->note);
	}
}

static void table_idle(void)
{
	char a[40], b[40], d[40], c[16];
	size_t i;

	printf("\nIdle consumer: CPU used while blocked on an empty queue (ratio = shmkit CPU / "
	       "this row's;\nmedian of at most 3 runs)\n");
	printf("%-8s  %9s  %11s  %10s  %7s  %s\n", "transport", "blocked s", "CPU s",
	       "% of a CPU", "ratio", "how");
	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		if (r->test != BENCH_IDLE)
			continue;
		printf("%-8s  ", r->transport);
		if (no_figures(r))
			continue;
		printf("%9s  %11s  %10s  %7s  %s\n", num(a, sizeof(a), r->seconds, 2),
		       num(b, sizeof(b), r->cpu_s, 6), num(d, sizeof(d), r->cpu_pct, 3),
		       ratio_str(c, sizeof(c), r), r->note);
	}
}

/* Batch and loan: msgs/s of each way, the new way's ratio to the old one. */
static void table_bulk(enum bench_test t, const char *title)
{
	char a[40], b[40], c[16];
	size_t i;

	printf("\n%s\n", title);
	printf("%6s  %5s  %-8s  %13s  %10s  %7s  %s\n", "size", "shape", "mode", "msgs/s", "MB/s",
	       "ratio", "how");
	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		if (r->test != t)
			continue;
		printf("%6u  %u->%-2u  %-8s  ", r->size, r->producers, r->consumers, r->mode);
		if (no_figures(r))
			continue;
		snprintf(c, sizeof(c), isfinite(r->ratio) ? "%.2f" : "-", r->ratio);
		printf("%13s  %10s  %7s  %s\n", num(a, sizeof(a), r->msgs_per_s, 0),
		       num(b, sizeof(b), r->mb_per_s, 1), c, r->note);
	}
}

static void table_wake(void)
{
	char a[40], b[40], d[40], c[16];
	size_t i;

	printf("\nWake-ups: consumers asleep on an empty queue, one message at a time\n");
	printf("%-8s  %-8s  %5s  %10s  %8s  %8s  %7s  %s\n", "transport", "mode", "shape",
	       "wakes/msg", "csw/msg", "p50 ns", "ratio", "how");
	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		if (r->test != BENCH_WAKE)
			continue;
		printf("%-8s  %-8s  %u->%-2u  ", r->transport, r->mode, r->producers, r->consumers);
		if (no_figures(r))
			continue;
		snprintf(c, sizeof(c), isfinite(r->ratio) ? "%.2f" : "-", r->ratio);
		printf("%10s  %8s  %8s  %7s  %s\n", num(d, sizeof(d), r->wakeups_per_msg, 2),
		       num(a, sizeof(a), r->csw_per_msg, 2), num(b, sizeof(b), r->p50_ns, 0), c,
		       r->note);
	}
}

static void table_bridge(void)
{
	char a[40], c[16];
	size_t i;

	printf("\nBetween hosts: 64 B messages over loopback TCP, one producer, one consumer (ratio = "
	       "bridge msgs/s /\nbare ZeroMQ's, >= 0.5 is the target)\n");
	printf("%-8s  %14s  %7s  %s\n", "transport", "msgs/s", "ratio", "how");
	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		if (r->test != BENCH_BRIDGE)
			continue;
		printf("%-8s  ", r->transport);
		if (no_figures(r))
			continue;
		printf("%14s  %7s  %s\n", num(a, sizeof(a), r->msgs_per_s, 0), ratio_str(c, sizeof(c), r),
		       r->note);
	}
}

void bench_print_table(const struct bench_opts *o)
{
	const struct bench_machine *m = &bench_machine;

	printf("shmkit bench%s: %ld CPUs, %s, %s\n", o->quick ? " --quick" : "", m->nproc, m->cpu,
	       m->kernel);
	if (m->line_rtt_ns > 0)
		printf("A cache line's round trip between CPUs 0 and 1: %.0f ns (the floor under "
		       "every cross-CPU\nhand-off; on a virtual machine it moves with the host).\n",
		       m->line_rtt_ns);
	printf("Peers at the largest buffers the system allows: pipe(2) %ld B (fs/pipe-max-size); "
	       "unix\nSOCK_SEQPACKET SO_SNDBUF %ld (net/core/wmem_max); POSIX mq mq_maxmsg %ld "
	       "(fs/mqueue/msg_max\n%ld), msgsize_max %ld B. shmkit Queue and Pipe: blocking calls, "
	       "capacity 1024 messages\n(fewer above %u bytes of messages). Each figure is the "
	       "median of %u runs after a warm-up.\n",
	       m->pipe_bytes, m->unix_sndbuf, m->mq_maxmsg, m->mq_msg_max, m->mq_msgsize_max,
	       m->shmkit_bytes, o->reps);
	if (m->load1 > 0.5)
		printf("WARNING: load average %.2f when the run started: other work on the machine "
		       "distorts every\n"
		       "figure.\n",
		       m->load1);
	if (any(BENCH_THROUGHPUT))
		table_throughput(BENCH_THROUGHPUT);
	if (any(BENCH_LARGE))
		table_throughput(BENCH_LARGE);
	if (any(BENCH_RTT))
		table_rtt();
	if (any(BENCH_COUNTER))
		table_counter();
	if (any(BENCH_LOCK))
		table_sync(BENCH_LOCK, "Lock: acquire + release (ratio = shmkit ns/op / pthread's, "
				       "< 1.5 is the target)");
	if (any(BENCH_SEM))
		table_sync(BENCH_SEM, "Semaphore: release + acquire in one process");
	if (any(BENCH_IDLE))
		table_idle();
	if (any(BENCH_BATCH))
		table_bulk(BENCH_BATCH, "Batches: put_many/get_many of 32 against single put/get "
					"(ratio = batch32 / single,\n>= 2 is the target)");
	if (any(BENCH_LOAN))
		table_bulk(BENCH_LOAN, "Loans: reserve/commit + peek/release against put/get "
				       "(ratio = loan / copy, >= 1.5\nis the target)");
	if (any(BENCH_WAKE))
		table_wake();
	if (any(BENCH_BRIDGE))
		table_bridge();
}

/* ------------------------------------------------------------------------------------------- */
/* JSON                                                                                        */

static void jnum(const char *key, double v, int dec)
{
	if (isfinite(v))
		printf(",\"%s\":%.*f", key, dec, v);
}

static void jstr(const char *key, const char *s)
{
	if (s && *s) {
		printf(",\"%s\":", key);
		json_string(stdout, s);
	}
}

static void jcount(const char *key, unsigned v)
{
	if (v)
		printf(",\"%s\":%u", key, v);
}

void bench_print_json(const struct bench_opts *o)
{
	const struct bench_machine *m = &bench_machine;
	size_t i;

	printf("{\"machine\":{\"nproc\":%ld,\"cpu\":", m->nproc);
	json_string(stdout, m->cpu);
	printf(",\"kernel\":");
	json_string(stdout, m->kernel);
	printf(",\"mq_maxmsg\":%ld,\"mq_msg_max\":%ld,\"mq_msgsize_max\":%ld,\"pipe_bytes\":%ld,"
	       "\"unix_sndbuf\":%ld,\"shmkit_capacity\":1024,\"shmkit_bytes\":%u,\"quick\":%s,"
	       "\"reps\":%u,\"load1\":%.2f,\"line_rtt_ns\":%.1f},\n\"results\":[",
	       m->mq_maxmsg, m->mq_msg_max, m->mq_msgsize_max, m->pipe_bytes, m->unix_sndbuf,
	       m->shmkit_bytes, o->quick ? "true" : "false", o->reps, m->load1, m->line_rtt_ns);
	for (i = 0; i < nrows; i++) {
		const struct bench_result *r = &rows[i];

		printf("%s\n{\"transport\":", i ? "," : "");
		json_string(stdout, r->transport);
		printf(",\"test\":\"%s\"", bench_test_name(r->test));
		jstr("mode", r->mode);
		jcount("size", r->size);
		jcount("producers", r->producers);
		jcount("consumers", r->consumers);
		jnum("msgs_per_s", r->msgs_per_s, 0);
		jnum("mb_per_s", r->mb_per_s, 3);
		jnum("p50_ns", r->p50_ns, 0);
		jnum("p99_ns", r->p99_ns, 0);
		jnum("p999_ns", r->p999_ns, 0);
		if (r->test == BENCH_THROUGHPUT || r->test == BENCH_LARGE) {
			jnum("msgs_per_s_min", r->lo, 0);
			jnum("msgs_per_s_max", r->hi, 0);
		} else if (r->test == BENCH_RTT) {
			jnum("p50_ns_min", r->lo, 0);
			jnum("p50_ns_max", r->hi, 0);
		}
		jnum("ratio", r->ratio, 3);
		jnum("csw_per_msg", r->csw_per_msg, 3);
		jnum("wakeups_per_msg", r->wakeups_per_msg, 3);
		jcount("round_trips", r->round_trips);
		jnum("ops_per_s", r->ops_per_s, 0);
		jnum("ns_per_op", r->ns_per_op, 3);
		jnum("handoffs_per_s", r->handoffs_per_s, 0);
		jnum("lost", r->lost, 0);
		jnum("cpu_s", r->cpu_s, 6);
		jnum("cpu_pct", r->cpu_pct, 4);
		jnum("seconds", r->seconds, 3);
		jcount("reps", r->reps);
		jstr("note", r->note);
		jstr("unsupported", r->unsupported);
		jstr("error", r->error);
		printf("}");
	}
	printf("\n]}\n");
}
