/*
 * `shmkit race` and `shmkit bank`: separate processes updating one shared counter, with and
 * without protection, counting the updates that were lost.
 *
 * The processes are forked and share named objects (/shmkit-race-<pid>), so `shmkit ls` shows
 * them during a run. A start gate makes them really run at the same time.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lessons/race.h"
#include "util.h"

static const struct {
	const char *name;
	const char *help;
} modes[] = {
	[RACE_RACY] = { "racy", "load, add, store: nothing stops two processes interleaving" },
	[RACE_ATOMIC] = { "atomic", "one atomic fetch-and-add" },
	[RACE_LOCK] = { "lock", "the Value's Lock held around load, add, store" },
	[RACE_SEM] = { "sem", "a Semaphore(1) held around load, add, store" },
	[RACE_SEM2] = { "sem2", "a Semaphore(2) around load, add, store: two get in at once" },
};
#define N_MODES (sizeof(modes) / sizeof(modes[0]))

bool race_mode_parse(const char *s, enum race_mode *out)
{
	size_t i;

	for (i = 0; i < N_MODES; i++) {
		if (!strcmp(s, modes[i].name)) {
			*out = (enum race_mode)i;
			return true;
		}
	}
	return false;
}

const char *race_mode_name(enum race_mode m)
{
	return (unsigned)m < N_MODES ? modes[m].name : "?";
}

const char *race_mode_help(enum race_mode m)
{
	return (unsigned)m < N_MODES ? modes[m].help : "?";
}

/* ------------------------------------------------------------------------------------------- */
/* Running one race                                                                            */

static const int fatal_signals[] = { SIGINT, SIGTERM, SIGHUP };
#define N_SIGNALS (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

/* The handler kills the children so the parent's wait ends at once; the parent then removes
 * the objects and re-raises the signal. kids[] is changed only with the signals blocked. */
static volatile sig_atomic_t caught;
static volatile sig_atomic_t nkids;
static pid_t kids[RACE_PROCS_MAX];

static void on_signal(int sig)
{
	int saved = errno;
	sig_atomic_t i;

	caught = sig;
	for (i = 0; i < nkids; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	errno = saved;
}

/* The start gate: each child counts itself in GATE_READY, then waits for GATE_GO, which the
 * parent sets once all are in. Opening it as soon as the last fork returned is not enough: a
 * child not yet scheduled would start milliseconds late, after a short race was over. */
enum { GATE_READY = 0, GATE_GO = 1 };

struct race_objs {
	shmkit_value *counter;
	shmkit_array *gate; /* anonymous, inherited: GATE_READY, GATE_GO */
	shmkit_sem *sem;
	char name[64];
	char semname[64];
};

/* A child's whole life; the result is its exit status (an errno value, 0 when all went well). */
static int child(const struct race_spec *spec, unsigned idx, struct race_objs *o, pid_t parent)
{
	int64_t delta = !spec->bank ? 1 : idx % 2 ? -BANK_AMOUNT : BANK_AMOUNT;
	int64_t go = 0;
	uint64_t n;
	int err = 0;

	shmkit_array_add(o->gate, GATE_READY, 1, SHMKIT_ADD_ATOMIC, NULL);
	for (;;) {
		shmkit_array_load(o->gate, GATE_GO, &go);
		if (go)
			break;
		if (getppid() != parent) /* the parent died before opening the gate */
			return ESRCH;
		sched_yield();
	}
	for (n = 0; n < spec->iters && err >= 0; n++) {
		switch (spec->mode) {
		case RACE_RACY:
			err = shmkit_value_add(o->counter, delta, SHMKIT_ADD_RACY, NULL);
			break;
		case RACE_ATOMIC:
			err = shmkit_value_add(o->counter, delta, SHMKIT_ADD_ATOMIC, NULL);
			break;
		case RACE_LOCK:
			err = shmkit_value_add(o->counter, delta, SHMKIT_ADD_LOCKED, NULL);
			break;
		case RACE_SEM:
		case RACE_SEM2:
			if ((err = shmkit_sem_acquire(o->sem)) < 0)
				break;
			shmkit_value_add(o->counter, delta, SHMKIT_ADD_RACY, NULL);
			err = shmkit_sem_release(o->sem);
			break;
		}
	}
	return err < 0 ? -err : 0;
}

static int create_objs(const struct race_spec *spec, struct race_objs *o, struct race_result *res)
{
	int err;

	if ((err = shmkit_value_create(o->name, 0, 0600, &o->counter)) < 0) {
		o->counter = NULL;
		snprintf(res->what, sizeof(res->what), "create %s", o->name);
		return err;
	}
	if ((err = shmkit_array_create(NULL, 2, 0600, &o->gate)) < 0) {
		o->gate = NULL;
		snprintf(res->what, sizeof(res->what), "create start gate");
		return err;
	}
	if (spec->mode == RACE_SEM || spec->mode == RACE_SEM2) {
		err = shmkit_sem_create(o->semname, spec->mode == RACE_SEM ? 1 : 2, 0, 0600,
					&o->sem);
		if (err < 0) {
			o->sem = NULL;
			snprintf(res->what, sizeof(res->what), "create %s", o->semname);
			return err;
		}
	}
	return 0;
}

/* Close what was created and remove the names that are ours (never one that create found
 * taken: it belongs to someone else). */
static void destroy_objs(struct race_objs *o)
{
	if (o->counter) {
		shmkit_value_close(o->counter);
		shmkit_value_unlink(o->name);
	}
	shmkit_array_close(o->gate);
	if (o->sem) {
		shmkit_sem_close(o->sem);
		shmkit_sem_unlink(o->semname);
	}
}

/* Wait for kids[i] without letting the handler kill a pid that is already reaped (and could
 * be reused): wait for the exit leaving a zombie, then reap it with the signals blocked. */
static int reap(unsigned i, const sigset_t *block, int *status)
{
	siginfo_t si;
	sigset_t old;
	int r;

	while (waitid(P_PID, (id_t)kids[i], &si, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			return -errno;
	sigprocmask(SIG_BLOCK, block, &old);
	r = waitpid(kids[i], status, 0) < 0 ? -errno : 0;
	kids[i] = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* Wait until every child has reached the gate. -ECHILD when one died first, 0 (with caught set)
 * when a signal came: the handler has killed the children. */
static int wait_ready(struct race_objs *o, unsigned procs)
{
	struct timespec nap = { 0, 100000 };
	int64_t ready = 0;
	siginfo_t si;

	for (;;) {
		shmkit_array_load(o->gate, GATE_READY, &ready);
		if (ready >= (int64_t)procs || caught)
			return 0;
		si.si_pid = 0;
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid)
			return -ECHILD;
		nanosleep(&nap, NULL);
	}
}

static bool spec_ok(const struct race_spec *spec)
{
	return spec && spec->procs >= 1 && spec->procs <= RACE_PROCS_MAX && spec->iters >= 1 &&
	       spec->iters <= RACE_ITERS_MAX && (unsigned)spec->mode < N_MODES &&
	       !(spec->bank && spec->procs % 2);
}

int race_run(const struct race_spec *spec, struct race_result *res)
{
	struct sigaction sa, old_sa[N_SIGNALS];
	struct race_objs o = { 0 };
	sigset_t block, old_mask;
	pid_t parent = getpid();
	double start = 0;
	int err, status, child_err = 0;
	unsigned i;

	memset(res, 0, sizeof(*res));
	if (!spec_ok(spec)) {
		snprintf(res->what, sizeof(res->what), "race");
		return -EINVAL;
	}
	res->ops = (uint64_t)spec->procs * spec->iters;
	res->expected = spec->bank ? 0 : (int64_t)res->ops;
	snprintf(o.name, sizeof(o.name), "/shmkit-race-%ld", (long)parent);
	snprintf(o.semname, sizeof(o.semname), "/shmkit-race-%ld-sem", (long)parent);

	/* Signals stay blocked until every child is forked and recorded in kids[]. */
	sigemptyset(&block);
	for (i = 0; i < N_SIGNALS; i++)
		sigaddset(&block, fatal_signals[i]);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	caught = 0;
	nkids = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_mask = block;
	sa.sa_flags = 0; /* no SA_RESTART: a signal must end the parent's wait */
	for (i = 0; i < N_SIGNALS; i++) {
		sigaction(fatal_signals[i], &sa, &old_sa[i]);
		/* A signal ignored by whoever started us (nohup, a background job) stays so. */
		if (!(old_sa[i].sa_flags & SA_SIGINFO) && old_sa[i].sa_handler == SIG_IGN)
			sigaction(fatal_signals[i], &old_sa[i], NULL);
	}

	err = create_objs(spec, &o, res);
	for (i = 0; !err && i < spec->procs; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			err = -errno;
			snprintf(res->what, sizeof(res->what), "fork");
		} else if (pid == 0) {
			unsigned k;

			for (k = 0; k < N_SIGNALS; k++)
				sigaction(fatal_signals[k], &old_sa[k], NULL);
			sigprocmask(SIG_SETMASK, &old_mask, NULL);
			_exit(child(spec, i, &o, parent));
		} else {
			kids[i] = pid;
			nkids = (sig_atomic_t)(i + 1);
		}
	}
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	if (!err && (err = wait_ready(&o, spec->procs)) < 0)
		snprintf(res->what, sizeof(res->what), "%s: a child process died before the start",
			 spec->bank ? "bank" : "race");
	if (err) {
		for (i = 0; i < (unsigned)nkids; i++)
			kill(kids[i], SIGKILL);
	} else {
		start = now_seconds();
		shmkit_array_store(o.gate, GATE_GO, 1);
	}

	for (i = 0; i < (unsigned)nkids; i++) {
		if (reap(i, &block, &status) < 0)
			continue;
		if (child_err)
			continue;
		if (WIFEXITED(status) && WEXITSTATUS(status)) {
			child_err = -WEXITSTATUS(status);
			snprintf(res->what, sizeof(res->what), "%s: child process %d",
				 spec->bank ? "bank" : "race", (int)kids[i]);
		} else if (WIFSIGNALED(status)) {
			child_err = -EINTR;
			snprintf(res->what, sizeof(res->what), "%s: child process killed by signal %d",
				 spec->bank ? "bank" : "race", WTERMSIG(status));
		}
	}
	nkids = 0;
	if (!err && !caught) {
		res->seconds = now_seconds() - start;
		res->actual = shmkit_value_load(o.counter);
		err = child_err;
	}
	destroy_objs(&o);

	for (i = 0; i < N_SIGNALS; i++)
		sigaction(fatal_signals[i], &old_sa[i], NULL);
	if (caught) {
		snprintf(res->what, sizeof(res->what), "%s", spec->bank ? "bank" : "race");
		raise(caught);
		err = -EINTR; /* the caller ignored it, or handled it and came back */
	}
	return err;
}

/* ------------------------------------------------------------------------------------------- */
/* The commands                                                                                */

static void usage(FILE *f, bool bank)
{
	if (bank)
		fprintf(f, "Usage: shmkit bank [--procs N] [--iters M] [--mode MODE] [--json]\n"
			   "Half of N processes deposit %d M times into one shared balance, the other "
			   "half\nwithdraw %d M times. The right final balance is 0.\n",
			BANK_AMOUNT, BANK_AMOUNT);
	else
		fprintf(f, "Usage: shmkit race [--procs N] [--iters M] [--mode MODE] [--json]\n"
			   "N processes each add 1 to one shared counter M times; updates that "
			   "collide are lost.\n");
	fprintf(f, "\nOptions:\n"
		   "  -p, --procs N   processes (%s; default 2)\n"
		   "  -n, --iters M   updates per process (1..%llu; default 100000)\n"
		   "  -m, --mode MODE how each update is protected (default lock):\n",
		bank ? "an even number 2..256" : "1..256", RACE_ITERS_MAX);
	for (size_t i = 0; i < N_MODES; i++)
		if (!(bank && i == RACE_SEM2))
			fprintf(f, "        %-7s %s\n", modes[i].name, modes[i].help);
	fprintf(f, "  -j, --json      print one JSON object\n"
		   "  -h, --help      this text\n"
		   "Exit status: 0 when the run completed (lost updates included), 1 on a runtime "
		   "error,\n2 on a usage error.\n");
}

static double per_second(uint64_t ops, double seconds)
{
	return seconds > 0 ? (double)ops / seconds : 0;
}

static void print_race(const struct race_spec *s, const struct race_result *r, bool json)
{
	int64_t lost = r->expected - r->actual;
	double rate = per_second(r->ops, r->seconds);

	if (json) {
		printf("{\"mode\":\"%s\",\"procs\":%u,\"iters\":%llu,\"expected\":%lld,"
		       "\"actual\":%lld,\"lost\":%lld,\"seconds\":%.6f,\"increments_per_s\":%.0f}\n",
		       race_mode_name(s->mode), s->procs, (unsigned long long)s->iters,
		       (long long)r->expected, (long long)r->actual, (long long)lost, r->seconds,
		       rate);
		return;
	}
	printf("race: %u processes x %llu increments, mode %s (%s)\n", s->procs,
	       (unsigned long long)s->iters, race_mode_name(s->mode), race_mode_help(s->mode));
	printf("Expected counter value: %lld, Actual: %lld\n", (long long)r->expected,
	       (long long)r->actual);
	printf("Lost updates: %lld (%.1f%%)\n", (long long)lost,
	       r->expected ? 100.0 * (double)lost / (double)r->expected : 0.0);
	printf("Time: %.3f s, %.2f M increments/s\n", r->seconds, rate / 1e6);
}

static void print_bank(const struct race_spec *s, const struct race_result *r, bool json)
{
	double rate = per_second(r->ops, r->seconds);

	if (json) {
		printf("{\"mode\":\"%s\",\"procs\":%u,\"iters\":%llu,\"balance\":%lld,"
		       "\"expected\":%lld,\"seconds\":%.6f,\"ops_per_s\":%.0f}\n",
		       race_mode_name(s->mode), s->procs, (unsigned long long)s->iters,
		       (long long)r->actual, (long long)r->expected, r->seconds, rate);
		return;
	}
	printf("bank: %u processes deposit %d and %u withdraw %d, %llu times each, mode %s (%s)\n",
	       s->procs / 2, BANK_AMOUNT, s->procs / 2, BANK_AMOUNT, (unsigned long long)s->iters,
	       race_mode_name(s->mode), race_mode_help(s->mode));
	printf("Final balance: %lld, expected: %lld%s\n", (long long)r->actual,
	       (long long)r->expected, r->actual == r->expected ? "" : " (updates were lost)");
	printf("Time: %.3f s, %.2f M transactions/s\n", r->seconds, rate / 1e6);
}

static int run_command(int argc, char **argv, bool bank)
{
	static const struct option longopts[] = {
		{ "procs", required_argument, NULL, 'p' }, { "iters", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' },  { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	const char *cmd = bank ? "bank" : "race";
	struct race_spec spec = { .procs = 2, .iters = 100000, .mode = RACE_LOCK, .bank = bank };
	struct race_result res;
	bool json = false;
	uint64_t v;
	int opt, err;

	while ((opt = getopt_long(argc, argv, ":p:n:m:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!parse_u64(optarg, bank ? 2 : 1, RACE_PROCS_MAX, &v) || (bank && v % 2))
				return usage_error(cmd, "bad --procs '%s': want %s", optarg,
						   bank ? "an even number 2..256" : "1..256");
			spec.procs = (unsigned)v;
			break;
		case 'n':
			if (!parse_u64(optarg, 1, RACE_ITERS_MAX, &v))
				return usage_error(cmd, "bad --iters '%s': want 1..%llu", optarg,
						   RACE_ITERS_MAX);
			spec.iters = v;
			break;
		case 'm':
			if (!race_mode_parse(optarg, &spec.mode) || (bank && spec.mode == RACE_SEM2))
				return usage_error(cmd, "bad --mode '%s': want %s", optarg,
						   bank ? "racy, atomic, lock or sem"
							: "racy, atomic, lock, sem or sem2");
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout, bank);
			return 0;
		default:
			return bad_option(cmd, opt, argv);
		}
	}
	if (optind < argc)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);

	if ((err = race_run(&spec, &res)) < 0)
		return runtime_error(res.what, err);
	if (bank)
		print_bank(&spec, &res, json);
	else
		print_race(&spec, &res, json);
	return fflush(stdout) == 0 ? 0 : runtime_error(cmd, -errno);
}

int cmd_race(int argc, char **argv)
{
	return run_command(argc, argv, false);
}

int cmd_bank(int argc, char **argv)
{
	return run_command(argc, argv, true);
}
