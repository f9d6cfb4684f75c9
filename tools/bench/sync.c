/*
 * Counters, Lock and Semaphore: how many operations a second one or two processes get through.
 *
 *  counter  shmkit_value_add racy / atomic / locked, and a racy add inside a Semaphore(1) (sem),
 *           by 2 processes at once, and by 1 for the uncontended cost; the final value is
 *           checked: only racy may lose updates.
 *  lock     acquire+release of a Lock by 1 process, beside pthread_mutex_lock/unlock of a
 *           default (non-shared, non-robust) mutex; and 2 processes taking turns, counting
 *           hand-offs (acquisitions right after the other process held it). glibc (2.35 on)
 *           skips the atomic instructions of a private mutex while the process has only one
 *           thread, which no lock shared between processes can do; so pthread is measured
 *           both ways, and the ratio is against the multi-threaded (atomic) figure.
 *  sem      release+acquire (post+wait) of a Semaphore by 1 process.
 *
 * Every figure comes from a forked child that runs the operation until told to stop, checking
 * the stop flag once every BATCH operations.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "shmkit.h"

#define BATCH 256
#define WAIT_S 60

enum op {
	OP_RACY,     /* shmkit_value_add(SHMKIT_ADD_RACY) */
	OP_ATOMIC,   /* shmkit_value_add(SHMKIT_ADD_ATOMIC) */
	OP_LOCKED,   /* shmkit_value_add(SHMKIT_ADD_LOCKED) */
	OP_SEM,      /* sem acquire, racy add, sem release */
	OP_LOCK,     /* shmkit_lock_acquire + release, counting hand-offs */
	OP_PTHREAD,  /* pthread_mutex_lock + unlock, process-local, in a multi-threaded process */
	OP_PTHREAD1, /* the same in a single-threaded process */
	OP_POSTWAIT, /* shmkit_sem_release + acquire */
};

struct sync_board {
	_Alignas(64) _Atomic int stop;
	_Alignas(64) int64_t last_holder; /* written only with the Lock held */
	struct {
		_Alignas(64) uint64_t n, handoffs;
		int64_t t_start, t_end;
	} proc[2];
};

struct sync_ctx {
	enum op op;
	struct bench_team *team;
	struct sync_board *b;
	shmkit_value *v;
	shmkit_sem *s;
	shmkit_lock *l;
};

/* Run `body` BATCH times between looks at the stop flag. */
#define LOOP(body)                                                                      \
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {                  \
		for (k = 0; k < BATCH; k++) {                                              \
			body;                                                              \
		}                                                                          \
		n += BATCH;                                                                \
	}

static void *nothing(void *arg)
{
	return arg;
}

/* Start and join one thread: glibc then takes its atomic paths for good. */
static int make_threaded(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, nothing, NULL))
		return -1;
	pthread_join(t, NULL);
	return 0;
}

static int sync_child(void *arg, unsigned idx)
{
	struct sync_ctx *c = arg;
	struct sync_board *b = c->b;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	uint64_t n = 0, h = 0;
	int64_t me = (int64_t)idx + 1;
	unsigned k;

	if (c->op == OP_PTHREAD && make_threaded() < 0)
		return 1;
	if (!bench_team_ready(c->team))
		return 1;
	b->proc[idx].t_start = bench_now();
	switch (c->op) {
	case OP_RACY:
		LOOP(if (shmkit_value_add(c->v, 1, SHMKIT_ADD_RACY, NULL) < 0) goto fail);
		break;
	case OP_ATOMIC:
		LOOP(if (shmkit_value_add(c->v, 1, SHMKIT_ADD_ATOMIC, NULL) < 0) goto fail);
		break;
	case OP_LOCKED:
		LOOP(if (shmkit_value_add(c->v, 1, SHMKIT_ADD_LOCKED, NULL) < 0) goto fail);
		break;
	case OP_SEM:
		LOOP(if (shmkit_sem_acquire(c->s) < 0) goto fail;
		     shmkit_value_add(c->v, 1, SHMKIT_ADD_RACY, NULL);
		     if (shmkit_sem_release(c->s) < 0) goto fail);
		break;
	case OP_LOCK:
		LOOP(if (shmkit_lock_acquire(c->l) < 0) goto fail;
		     if (b->last_holder != me) {
			     b->last_holder = me;
			     h++;
		     }
		     if (shmkit_lock_release(c->l) < 0) goto fail);
		break;
	case OP_PTHREAD:
	case OP_PTHREAD1:
		LOOP(pthread_mutex_lock(&m); pthread_mutex_unlock(&m));
		break;
	case OP_POSTWAIT:
		LOOP(if (shmkit_sem_release(c->s) < 0 || shmkit_sem_acquire(c->s) < 0) goto fail);
		break;
	}
	b->proc[idx].t_end = bench_now();
	b->proc[idx].n = n;
	b->proc[idx].handoffs = h;
	return 0;
fail:
	fprintf(stderr, "shmkit: bench: a lock, semaphore or value operation failed\n");
	return 1;
}

struct sync_out {
	double ops_per_s, handoffs_per_s, lost;
};

static void objs_close(struct sync_ctx *c)
{
	shmkit_value_close(c->v);
	shmkit_sem_close(c->s);
	shmkit_lock_close(c->l);
	c->v = NULL;
	c->s = NULL;
	c->l = NULL;
}

static int objs_create(struct sync_ctx *c)
{
	int rc;

	if ((rc = shmkit_value_create(NULL, 0, 0, &c->v)) < 0)
		c->v = NULL;
	else if ((rc = shmkit_sem_create(NULL, c->op == OP_SEM ? 1 : 0, 0, 0, &c->s)) < 0)
		c->s = NULL;
	else if ((rc = shmkit_lock_create(NULL, 0, 0, &c->l)) < 0)
		c->l = NULL;
	if (rc < 0)
		objs_close(c);
	return rc;
}

static int sync_rep(struct sync_ctx *c, unsigned procs, double seconds, struct sync_out *out,
		    char *err, size_t errlen)
{
	struct bench_team team;
	uint64_t total = 0;
	int64_t t0, final;
	unsigned i;
	int rc;

	memset(c->b, 0, sizeof(*c->b));
	memset(out, 0, sizeof(*out));
	if ((rc = objs_create(c)) < 0) {
		snprintf(err, errlen, "create: %s", shmkit_strerror(rc));
		return rc;
	}
	if ((rc = bench_team_init(&team)) < 0) {
		objs_close(c);
		snprintf(err, errlen, "pipe: %s", shmkit_strerror(rc));
		return rc;
	}
	c->team = &team;
	for (i = 0; i < procs && rc == 0; i++)
		rc = bench_team_spawn(&team, sync_child, c, i);
	if (rc < 0) {
		snprintf(err, errlen, "fork: %s", shmkit_strerror(rc));
	} else if ((rc = bench_team_go(&team, WAIT_S, &t0)) < 0) {
		snprintf(err, errlen, "a process failed before the start");
	} else {
		bench_sleep(seconds);
		atomic_store(&c->b->stop, 1);
		if ((rc = bench_team_wait(&team, 0, procs, WAIT_S)) < 0)
			snprintf(err, errlen, "%s", rc == -ETIMEDOUT ? "hung" : "a process failed");
	}
	bench_team_end(&team);
	if (rc == 0) {
		for (i = 0; i < procs; i++) {
			double dt = (double)(c->b->proc[i].t_end - c->b->proc[i].t_start) / 1e9;

			total += c->b->proc[i].n;
			if (dt > 0) {
				out->ops_per_s += (double)c->b->proc[i].n / dt;
				out->handoffs_per_s += (double)c->b->proc[i].handoffs / dt;
			}
		}
		final = shmkit_value_load(c->v);
		if (c->op <= OP_SEM) {
			out->lost = (double)total - (double)final;
			if (c->op != OP_RACY && final != (int64_t)total) {
				snprintf(err, errlen, "%lld increments, counter at %lld",
					 (long long)total, (long long)final);
				rc = -EBADMSG;
			}
		}
		if (out->ops_per_s <= 0) {
			snprintf(err, errlen, "no operation completed");
			rc = -EIO;
		}
	}
	objs_close(c);
	return rc;
}

/* Warm up, run o->reps times, fill r with the medians; -1 (error in r) on failure. */
static int measure(const struct bench_opts *o, struct sync_ctx *c, unsigned procs,
		   struct bench_result *r)
{
	double ops[64], hand[64], lost[64];
	struct sync_out out;
	unsigned k;

	for (k = 0; k <= o->reps; k++) {
		bench_progress(o, "%s %s %s %u proc: %s %u/%u", bench_test_name(r->test),
			       r->transport, r->mode, procs, k ? "run" : "warm-up", k, o->reps);
		if (sync_rep(c, procs, k ? o->sync_s : o->warm_s, &out, r->error,
			     sizeof(r->error)) < 0) {
			bench_add(r);
			return -1;
		}
		if (k) {
			ops[k - 1] = out.ops_per_s;
			hand[k - 1] = out.handoffs_per_s;
			lost[k - 1] = out.lost;
		}
	}
	r->reps = o->reps;
	r->producers = procs;
	r->ops_per_s = bench_median(ops, o->reps);
	r->ns_per_op = 1e9 / r->ops_per_s;
	if (c->op == OP_RACY)
		r->lost = bench_median(lost, o->reps);
	if (c->op == OP_LOCK && procs > 1)
		r->handoffs_per_s = bench_median(hand, o->reps);
	return bench_add(r) < 0 ? -1 : 0;
}

static int run(const struct bench_opts *o, enum bench_test test, const char *transport,
	       const char *mode, enum op op, unsigned procs, const char *note)
{
	struct sync_ctx c = { 0 };
	struct bench_result r;
	int rc;

	if (!(c.b = bench_shared(sizeof(*c.b))))
		return -1;
	c.op = op;
	bench_result_init(&r, transport, test);
	r.mode = mode;
	if (note)
		snprintf(r.note, sizeof(r.note), "%s", note);
	rc = measure(o, &c, procs, &r);
	bench_unshare(c.b, sizeof(*c.b));
	return rc;
}

int bench_counter(const struct bench_opts *o)
{
	static const struct {
		const char *mode;
		enum op op;
		const char *note;
	} modes[] = {
		{ "racy", OP_RACY, "load, add, store: loses updates" },
		{ "atomic", OP_ATOMIC, "one atomic fetch-and-add" },
		{ "locked", OP_LOCKED, "the Value's Lock around load, add, store" },
		{ "sem", OP_SEM, "a Semaphore(1) around a racy add" },
	};
	static const unsigned procs[] = { 2, 1 };
	unsigned i, p;
	int failed = 0;

	for (p = 0; p < 2; p++)
		for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
			if (run(o, BENCH_COUNTER, "shmkit", modes[i].mode, modes[i].op, procs[p],
				modes[i].note) < 0)
				failed = -1;
	return failed;
}

int bench_lock(const struct bench_opts *o)
{
	int failed = 0;

	if (run(o, BENCH_LOCK, "shmkit", "uncontended", OP_LOCK, 1,
		"shmkit_lock_acquire + release (robust, process-shared)") < 0)
		failed = -1;
	if (run(o, BENCH_LOCK, "pthread", "uncontended", OP_PTHREAD, 1,
		"pthread_mutex_lock + unlock, default mutex, multi-threaded process") < 0)
		failed = -1;
	if (run(o, BENCH_LOCK, "pthread", "1-thread", OP_PTHREAD1, 1,
		"the same, single-threaded: glibc skips the atomics") < 0)
		failed = -1;
	if (run(o, BENCH_LOCK, "shmkit", "contended", OP_LOCK, 2,
		"2 processes acquire + release in a loop") < 0)
		failed = -1;
	return failed;
}

int bench_sem(const struct bench_opts *o)
{
	return run(o, BENCH_SEM, "shmkit", "post+wait", OP_POSTWAIT, 1,
		   "shmkit_sem_release + shmkit_sem_acquire") < 0 ? -1 : 0;
}
