/*
 * Teams of forked processes for `shmkit bench`: the start gate, waiting with a timeout, and the
 * small statistics every test shares.
 *
 * The gate is a pipe nobody writes to: children block reading it and all wake at once when the
 * parent closes the write end. Children die with the parent (PR_SET_PDEATHSIG), so an
 * interrupted bench leaves no process behind; a child that hangs is killed by the SIGALRM the
 * parent arms around every wait, so a bug makes the bench fail rather than hang.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

static struct bench_team *volatile alarm_team;
static volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig)
{
	struct bench_team *t = alarm_team;
	int saved = errno;
	unsigned i;

	(void)sig;
	alarm_fired = 1;
	if (t)
		for (i = 0; i < t->n; i++)
			if (t->pid[i] > 0)
				kill(t->pid[i], SIGKILL);
	errno = saved;
}

static void arm(struct bench_team *t, unsigned seconds)
{
	static bool installed;
	struct sigaction sa;

	if (!installed) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;
		sa.sa_flags = 0; /* no SA_RESTART: the alarm must end a blocked read or wait */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
		installed = true;
	}
	alarm_fired = 0;
	alarm_team = t;
	alarm(seconds);
}

static void disarm(void)
{
	alarm(0);
	alarm_team = NULL;
}

int bench_team_init(struct bench_team *t)
{
	memset(t, 0, sizeof(*t));
	t->ready[0] = t->ready[1] = t->go[0] = t->go[1] = -1;
	if (pipe(t->ready) < 0)
		return -errno;
	if (pipe(t->go) < 0) {
		int err = -errno;
		close(t->ready[0]);
		close(t->ready[1]);
		t->ready[0] = t->ready[1] = -1;
		return err;
	}
	return 0;
}

int bench_team_spawn(struct bench_team *t, int (*fn)(void *arg, unsigned idx), void *arg,
		     unsigned idx)
{
	pid_t parent = getpid(), pid;

	if (t->n >= BENCH_PROCS_MAX)
		return -E2BIG;
	fflush(NULL); /* nothing buffered may be written twice */
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(ESRCH);
		signal(SIGALRM, SIG_DFL);
		close(t->ready[0]);
		close(t->go[1]);
		_exit(fn(arg, idx));
	}
	t->pid[t->n++] = pid;
	return 0;
}

bool bench_team_ready(struct bench_team *t)
{
	char c = 'r';
	ssize_t r;

	while (write(t->ready[1], &c, 1) < 0)
		if (errno != EINTR)
			return false;
	close(t->ready[1]);
	do
		r = read(t->go[0], &c, 1);
	while (r < 0 && errno == EINTR);
	close(t->go[0]);
	return r == 0;
}

int bench_team_go(struct bench_team *t, unsigned timeout_s, int64_t *t0)
{
	unsigned got = 0;
	char buf[BENCH_PROCS_MAX];
	ssize_t r;

	close(t->ready[1]);
	close(t->go[0]);
	t->ready[1] = t->go[0] = -1;
	arm(t, timeout_s);
	while (got < t->n) {
		r = read(t->ready[0], buf, t->n - got);
		if (r > 0)
			got += (unsigned)r;
		else if (r == 0 || errno != EINTR || alarm_fired)
			break; /* EOF: every child closed its end, so one died before getting ready */
	}
	disarm();
	close(t->ready[0]);
	t->ready[0] = -1;
	if (got < t->n) {
		t->timed_out = alarm_fired;
		bench_team_end(t);
		return alarm_fired ? -ETIMEDOUT : -ECHILD;
	}
	*t0 = bench_now();
	close(t->go[1]);
	t->go[1] = -1;
	return 0;
}

int bench_team_wait(struct bench_team *t, unsigned from, unsigned to, unsigned timeout_s)
{
	sigset_t alrm, old;
	siginfo_t si;
	unsigned i;
	int err = 0;

	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	arm(t, timeout_s);
	for (i = from; i < to && i < t->n; i++) {
		if (t->pid[i] <= 0)
			continue;
		/* Wait for the exit without reaping, then reap with the alarm blocked, so its
		 * handler never kills a pid that was reaped and maybe reused. */
		while (waitid(P_PID, (id_t)t->pid[i], &si, WEXITED | WNOWAIT) < 0)
			if (errno != EINTR)
				break;
		sigprocmask(SIG_BLOCK, &alrm, &old);
		if (waitpid(t->pid[i], &t->status[i], 0) < 0)
			t->status[i] = -1;
		t->pid[i] = 0;
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	disarm();
	if (alarm_fired) {
		t->timed_out = true;
		return -ETIMEDOUT;
	}
	for (i = from; i < to && i < t->n; i++)
		if (!WIFEXITED(t->status[i]) || WEXITSTATUS(t->status[i]))
			err = -ECHILD;
	return err;
}

void bench_team_end(struct bench_team *t)
{
	unsigned i;

	for (i = 0; i < t->n; i++)
		if (t->pid[i] > 0)
			kill(t->pid[i], SIGKILL);
	for (i = 0; i < t->n; i++) {
		if (t->pid[i] > 0) {
			while (waitpid(t->pid[i], &t->status[i], 0) < 0 && errno == EINTR)
				;
			t->pid[i] = 0;
		}
	}
	for (i = 0; i < 2; i++) {
		if (t->ready[i] >= 0)
			close(t->ready[i]);
		if (t->go[i] >= 0)
			close(t->go[i]);
		t->ready[i] = t->go[i] = -1;
	}
}

void *bench_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void bench_unshare(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}

int64_t bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void bench_sleep(double seconds)
{
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, unsigned n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_sort_i64(int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_i64);
}

double bench_quantile(const int64_t *sorted, size_t n, double q)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)(q * (double)n + 0.999999);
	k = k ? k - 1 : 0;
	return (double)sorted[k < n ? k : n - 1];
}

/* ------------------------------------------------------------------------------------------- */
/* The cache-line probe                                                                        */

#define LINE_TRIPS 200000 /* in LINE_BATCHES batches; the fastest batch counts */
#define LINE_BATCHES 5

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

void bench_line_probe(void)
{
	_Atomic int64_t *x = bench_shared(4096);
	int64_t i, t0, spins;
	cpu_set_t mine;
	pid_t pid;

	bench_machine.line_rtt_ns = 0;
	if (!x || bench_machine.nproc < 2 || sched_getaffinity(0, sizeof(mine), &mine) < 0 ||
	    !CPU_ISSET(0, &mine) || !CPU_ISSET(1, &mine))
		goto out;
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		/* The echo: wait for each odd value, answer with the next even one. A missing
		 * partner (the parent died) ends it through the spin bound. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (pin(1) < 0)
			_exit(1);
		for (i = 1; i < 2 * LINE_TRIPS; i += 2) {
			for (spins = 0; atomic_load_explicit(x, memory_order_acquire) != i; spins++)
				if (spins > 1000000000)
					_exit(1);
			atomic_store_explicit(x, i + 1, memory_order_release);
		}
		_exit(0);
	}
	if (pin(0) == 0) {
		/* The fastest batch: the hardware's figure, not that of a moment when another
		 * process had one of the CPUs. */
		double best = 0, ns;

		t0 = bench_now();
		for (i = 0; i < 2 * LINE_TRIPS; i += 2) {
			atomic_store_explicit(x, i + 1, memory_order_release);
			for (spins = 0; atomic_load_explicit(x, memory_order_acquire) != i + 2; spins++)
				if (spins > 1000000000)
					break;
			if (spins > 1000000000)
				break;
			if ((i / 2 + 1) % (LINE_TRIPS / LINE_BATCHES) == 0) {
				ns = (double)(bench_now() - t0) / (LINE_TRIPS / LINE_BATCHES);
				if (best == 0 || ns < best)
					best = ns;
				t0 = bench_now();
			}
		}
		if (i >= 2 * LINE_TRIPS)
			bench_machine.line_rtt_ns = best;
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	sched_setaffinity(0, sizeof(mine), &mine); /* the benchmark itself runs unpinned */
out:
	bench_unshare(x, 4096);
}
