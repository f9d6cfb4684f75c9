/*
 * Idle cost: the CPU time a consumer uses while blocked on an empty shmkit Queue (it wakes now
 * and then to look for dead peers), beside a consumer blocked in read(2) on an empty pipe.
 * Both wait at the same time, so the run takes the idle time once. Each child measures itself
 * with getrusage(RUSAGE_SELF) around the one blocking call.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "shmkit.h"

#define MSG 64
#define WAIT_S 60

struct idle_board {
	struct {
		_Alignas(64) double cpu_s, wall_s;
	} proc[2];
};

struct idle_ctx {
	struct bench_team *team;
	struct idle_board *b;
	shmkit_queue *q;
	int fd[2];
};

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Child 0 waits in shmkit_queue_get, child 1 in read(2). */
static int waiter(void *arg, unsigned idx)
{
	struct idle_ctx *c = arg;
	char buf[MSG];
	double cpu;
	int64_t t;
	int rc;

	if (idx == 0) {
		close(c->fd[0]);
		/* Register before the measured wait, as any long-lived consumer would be. */
		if (shmkit_queue_get_try(c->q, buf, sizeof(buf)) != -EAGAIN)
			return 1;
	}
	close(c->fd[1]);
	if (!bench_team_ready(c->team))
		return 1;
	cpu = cpu_seconds();
	t = bench_now();
	if (idx == 0)
		rc = shmkit_queue_get(c->q, buf, sizeof(buf));
	else
		rc = (int)read(c->fd[0], buf, sizeof(buf));
	c->b->proc[idx].wall_s = (double)(bench_now() - t) / 1e9;
	c->b->proc[idx].cpu_s = cpu_seconds() - cpu;
	return rc == MSG ? 0 : 1;
}

static int idle_rep(struct idle_ctx *c, double seconds, char *err, size_t errlen)
{
	struct shmkit_queue_attr a = { .capacity = 16, .max_size = MSG };
	struct bench_team team;
	char msg[MSG] = { 0 };
	int64_t t0;
	int rc;

	memset(c->b, 0, sizeof(*c->b));
	if ((rc = shmkit_queue_create(NULL, &a, &c->q)) < 0) {
		snprintf(err, errlen, "create: %s", shmkit_strerror(rc));
		return rc;
	}
	if (pipe(c->fd) < 0) {
		rc = -errno;
		shmkit_queue_close(c->q);
		snprintf(err, errlen, "pipe: %s", shmkit_strerror(rc));
		return rc;
	}
	if ((rc = bench_team_init(&team)) == 0) {
		c->team = &team;
		if ((rc = bench_team_spawn(&team, waiter, c, 0)) == 0)
			rc = bench_team_spawn(&team, waiter, c, 1);
	}
	close(c->fd[0]);
	if (rc < 0) {
		snprintf(err, errlen, "fork: %s", shmkit_strerror(rc));
	} else if ((rc = bench_team_go(&team, WAIT_S, &t0)) < 0) {
		snprintf(err, errlen, "a process failed before the start");
	} else {
		bench_sleep(seconds);
		if ((rc = shmkit_queue_put(c->q, msg, sizeof(msg))) < 0 ||
		    write(c->fd[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
			snprintf(err, errlen, "wake-up: %s", shmkit_strerror(rc < 0 ? rc : -EIO));
			rc = rc < 0 ? rc : -EIO;
		} else if ((rc = bench_team_wait(&team, 0, 2, WAIT_S)) < 0) {
			snprintf(err, errlen, "%s", rc == -ETIMEDOUT ? "hung" : "a waiter failed");
		}
	}
	bench_team_end(&team);
	close(c->fd[1]);
	shmkit_queue_close(c->q);
	c->q = NULL;
	return rc;
}

int bench_idle(const struct bench_opts *o)
{
	/* Several seconds each: three runs are enough to see whether it is a fluke. */
	unsigned reps = o->reps < 3 ? o->reps : 3, k, i;
	static const char *const names[2] = { "shmkit", "pipe" };
	static const char *const notes[2] = { "blocked in shmkit_queue_get on an empty Queue",
					      "blocked in read(2) on an empty pipe" };
	struct idle_ctx c = { 0 };
	struct bench_result r[2];
	double cpu[2][64], wall[2][64];
	int failed = 0;

	if (!(c.b = bench_shared(sizeof(*c.b))))
		return -1;
	for (i = 0; i < 2; i++) {
		bench_result_init(&r[i], names[i], BENCH_IDLE);
		r[i].mode = "blocked consumer";
		snprintf(r[i].note, sizeof(r[i].note), "%s", notes[i]);
	}
	for (k = 0; k < reps; k++) {
		bench_progress(o, "idle consumers: run %u/%u (%.0f s)", k + 1, reps, o->idle_s);
		if (idle_rep(&c, o->idle_s, r[0].error, sizeof(r[0].error)) < 0) {
			snprintf(r[1].error, sizeof(r[1].error), "%s", r[0].error);
			failed = -1;
			break;
		}
		for (i = 0; i < 2; i++) {
			cpu[i][k] = c.b->proc[i].cpu_s;
			wall[i][k] = c.b->proc[i].wall_s;
		}
	}
	for (i = 0; i < 2; i++) {
		if (!failed) {
			r[i].reps = reps;
			r[i].cpu_s = bench_median(cpu[i], reps);
			r[i].seconds = bench_median(wall[i], reps);
			r[i].cpu_pct = r[i].seconds > 0 ? 100 * r[i].cpu_s / r[i].seconds : 0;
		}
		if (bench_add(&r[i]) < 0)
			failed = -1;
	}
	bench_unshare(c.b, sizeof(*c.b));
	return failed;
}
