/*
 * Idle cost: the CPU time a consumer uses while blocked on an empty shmkit Queue (it wakes now
 * and then to look for dead peers), beside a consumer blocked in read(2) on an empty pipe.
 * Both wait at the same time, so the run takes the idle time once. Each child measures itself
 * with getrusage(RUSAGE_SELF) around the one blocking call.
 *
 * Then many sleepers: SLEEPERS consumers blocked on one empty queue whose only writer is alive
 * and idle. Each counts its voluntary context switches (every wake-up is one) while it waits;
 * then the writer is SIGKILLed and each notes when it saw EOF. Target: at most one wake-up a
 * second per sleeper, and the death seen by all within a second.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
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

#define SLEEPERS 64

struct many_board {
	_Atomic int ready;
	_Atomic int64_t killed_at; /* bench_now() of the writer's SIGKILL */
	struct {
		_Alignas(64) double wakeups_per_s;
		int64_t eof_at;
		int rc;
	} s[SLEEPERS];
};

static int many_sleeper(shmkit_queue *q, struct many_board *b, int i)
{
	char buf[MSG];
	int rc;

	if (shmkit_queue_get_try(q, buf, sizeof(buf)) != -EAGAIN)
		return 1;
	atomic_fetch_add(&b->ready, 1);
	rc = shmkit_queue_get(q, buf, sizeof(buf)); /* until the writer's death makes EOF */
	b->s[i].eof_at = bench_now();
	b->s[i].rc = rc;
	return rc == -EPIPE ? 0 : 1;
}

/* CPU seconds pid used so far (utime + stime from /proc/PID/stat), -1 unknown. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* Fields resume after the command name's last ')': state is field 3, utime 14. */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Voluntary context switches of pid so far (each is one wake-up after a sleep), -1 unknown. */
static long nvcsw(pid_t pid)
{
	char path[64], line[128];
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

/* One run; fills r (wake-ups per sleeper per second as ops_per_s, the slowest sleeper's EOF
 * after the kill as p50_ns). */
static int many_rep(double seconds, struct bench_result *r)
{
	struct shmkit_queue_attr a = { .capacity = 16, .max_size = MSG, .writers = 1 };
	struct many_board *b = bench_shared(sizeof(*b));
	pid_t writer, pid[SLEEPERS];
	long c0[SLEEPERS];
	double cpu0 = 0, cpu1 = 0;
	shmkit_queue *q;
	double w[SLEEPERS], worst = 0;
	int i, n = 0, rc = 0, st;
	int64_t t;

	if (!b)
		return -ENOMEM;
	if ((rc = shmkit_queue_create(NULL, &a, &q)) < 0) {
		snprintf(r->error, sizeof(r->error), "create: %s", shmkit_strerror(rc));
		bench_unshare(b, sizeof(*b));
		return rc;
	}
	writer = fork();
	if (writer == 0) {
		if (shmkit_queue_attach_writer(q) < 0)
			_exit(1);
		atomic_fetch_add(&b->ready, 1);
		for (;;)
			pause();
	}
	for (n = 0; n < SLEEPERS && writer > 0; n++) {
		pid[n] = fork();
		if (pid[n] == 0)
			_exit(many_sleeper(q, b, n));
		if (pid[n] < 0)
			break;
	}
	t = bench_now();
	while (atomic_load(&b->ready) < n + 1 && bench_now() - t < 30 * 1000000000LL)
		bench_sleep(0.01);
	/* Counted from outside over a window in which all are asleep (not their first spin). */
	bench_sleep(0.5);
	for (i = 0; i < n; i++) {
		c0[i] = nvcsw(pid[i]);
		cpu0 += proc_cpu(pid[i]);
	}
	t = bench_now();
	bench_sleep(seconds);
	for (i = 0; i < n; i++)
		cpu1 += proc_cpu(pid[i]);
	r->cpu_s = cpu1 >= cpu0 ? (cpu1 - cpu0) / n : NAN; /* per sleeper */
	r->cpu_pct = 100 * r->cpu_s / seconds;
	for (i = 0; i < n; i++) {
		long c1 = nvcsw(pid[i]);

		b->s[i].wakeups_per_s = c0[i] >= 0 && c1 >= c0[i]
						? (double)(c1 - c0[i]) / ((double)(bench_now() - t) / 1e9)
						: NAN;
	}
	atomic_store(&b->killed_at, bench_now());
	if (writer > 0)
		kill(writer, SIGKILL);
	for (i = 0; i < n; i++) {
		if (waitpid(pid[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			rc = -EIO;
		w[i] = b->s[i].wakeups_per_s;
		if ((double)(b->s[i].eof_at - b->killed_at) > worst)
			worst = (double)(b->s[i].eof_at - b->killed_at);
	}
	if (writer > 0)
		waitpid(writer, &st, 0);
	shmkit_queue_close(q);
	if (n < SLEEPERS || writer < 0)
		rc = -EAGAIN;
	if (rc < 0) {
		snprintf(r->error, sizeof(r->error), "%s", rc == -EAGAIN ? "fork failed"
							: "a sleeper did not see EOF");
	} else {
		r->ops_per_s = bench_median(w, (unsigned)n);
		r->p50_ns = worst;
	}
	bench_unshare(b, sizeof(*b));
	return rc;
}

static int bench_idle_many(const struct bench_opts *o)
{
	struct bench_result r;
	double secs = o->idle_s < 3 ? 3 : o->idle_s;

	bench_result_init(&r, "shmkit", BENCH_IDLE);
	r.mode = "64 sleepers";
	bench_progress(o, "idle: %d consumers asleep for %.0f s, then their writer dies", SLEEPERS,
		       secs);
	if (many_rep(secs, &r) == 0) {
		r.reps = 1;
		r.seconds = secs;
		snprintf(r.note, sizeof(r.note),
			 "%d consumers asleep: %.2f wake-ups/s each (median); writer SIGKILLed: "
			 "EOF seen by all in %.0f ms", SLEEPERS, r.ops_per_s, r.p50_ns / 1e6);
	}
	return bench_add(&r);
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
	if (bench_idle_many(o) < 0)
		failed = -1;
	return failed;
}
