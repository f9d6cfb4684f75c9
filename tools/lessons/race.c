/*
 * `shmkit race` and `shmkit bank`: separate processes updating one shared counter, with and
 * without protection, counting the updates that were lost.
 *
 * The processes are forked and share named objects (/shmkit-race-<pid>), so `shmkit ls` shows
 * them during a run. A start gate makes them start together, and interleaving windows make them
 * overlap even on a busy 2-CPU machine, where they would otherwise often run one after the
 * other and lose nothing (see window()).
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
enum { GATE_READY = 0, GATE_GO = 1, GATE_OVERLAPS = 2, GATE_WINDOWS = 3, GATE_CELLS = 4 };

/*
 * Interleaving. Every window_every()-th update (and the first) opens a window between its load
 * and its store -- inside the protection, if the mode has one -- and waits there until another
 * process has changed the counter, or a bound has passed. A racy update that sees a change
 * overwrites it: that update is lost, in every run in which a sibling runs at all during the
 * WINDOW_RACY_NS a window may last. Under a Lock or a Semaphore(1) no sibling can change the
 * counter inside the window, so the wait always ends at its bound, kept short there
 * (WINDOW_GUARDED_NS: waiting longer for what cannot happen shows nothing more) and nothing is
 * lost; an atomic add has no window (one instruction), so it waits after the add. Windows in
 * which another process did change the counter are counted, so a run that lost nothing can
 * say whether the processes overlapped at all.
 */
#define WINDOW_EVERY 16384 /* at most; at least 16 windows a process (window_every) */
#define WINDOW_RACY_NS 20000000LL
#define WINDOW_GUARDED_NS 1000000LL
#define WINDOW_NAP_NS 50000L

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t window_every(uint64_t iters)
{
	uint64_t every = iters / 16;

	return every < 1 ? 1 : every > WINDOW_EVERY ? WINDOW_EVERY : every;
}

/* Wait in the window until the counter differs from seen, at most bound_ns; whether it did. */
static bool window(shmkit_value *counter, int64_t seen, int64_t bound_ns)
{
	struct timespec nap = { 0, WINDOW_NAP_NS };
	int64_t deadline = mono_ns() + bound_ns;

	do {
		if (shmkit_value_load(counter) != seen)
			return true;
		nanosleep(&nap, NULL);
	} while (mono_ns() < deadline);
	return shmkit_value_load(counter) != seen;
}

struct race_objs {
	shmkit_value *counter;
	shmkit_array *gate; /* anonymous, inherited: GATE_READY, GATE_GO, the window counts */
	shmkit_sem *sem;
	char name[64];
	char semname[64];
};

/* One update with a window between its load and its store (see window()), protected as the
 * mode says. */
static int windowed_add(enum race_mode mode, struct race_objs *o, int64_t delta)
{
	shmkit_lock *lock = shmkit_value_lock(o->counter);
	bool changed;
	int64_t x;
	int err = 0;

	if (mode == RACE_ATOMIC) {
		x = 0;
		shmkit_value_add(o->counter, delta, SHMKIT_ADD_ATOMIC, &x);
		changed = window(o->counter, x, WINDOW_RACY_NS);
		goto count;
	}
	if (mode == RACE_LOCK)
		err = shmkit_lock_acquire(lock);
	else if (mode == RACE_SEM || mode == RACE_SEM2)
		err = shmkit_sem_acquire(o->sem);
	if (err < 0)
		return err;
	x = shmkit_value_load(o->counter);
	changed = window(o->counter, x,
			 mode == RACE_RACY || mode == RACE_SEM2 ? WINDOW_RACY_NS : WINDOW_GUARDED_NS);
	shmkit_value_store(o->counter, x + delta);
	if (mode == RACE_LOCK)
		err = shmkit_lock_release(lock);
	else if (mode == RACE_SEM || mode == RACE_SEM2)
		err = shmkit_sem_release(o->sem);
count:
	shmkit_array_add(o->gate, GATE_WINDOWS, 1, SHMKIT_ADD_ATOMIC, NULL);
	if (changed)
		shmkit_array_add(o->gate, GATE_OVERLAPS, 1, SHMKIT_ADD_ATOMIC, NULL);
	return err < 0 ? err : 0;
}

/* A child's whole life; the result is its exit status (an errno value, 0 when all went well). */
static int child(const struct race_spec *spec, unsigned idx, struct race_objs *o, pid_t parent)
{
	int64_t delta = !spec->bank ? 1 : idx % 2 ? -BANK_AMOUNT : BANK_AMOUNT;
	int64_t go = 0;
	uint64_t n, every = window_every(spec->iters);
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
		if (n % every == 0) {
			err = windowed_add(spec->mode, o, delta);
			continue;
		}
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
	if ((err = shmkit_array_create(NULL, GATE_CELLS, 0600, &o->gate)) < 0) {
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
		shmkit_array_load(o.gate, GATE_WINDOWS, &res->windows);
		shmkit_array_load(o.gate, GATE_OVERLAPS, &res->overlaps);
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

/* Why a run of a mode that can lose updates lost none; NULL when it lost some, or cannot. */
const char *race_why_nothing_lost(const struct race_spec *s, const struct race_result *r)
{
	static char buf[320];

	if ((s->mode != RACE_RACY && s->mode != RACE_SEM2) || r->actual != r->expected)
		return NULL;
	if (s->procs == 1)
		return "one process cannot race itself: give --procs 2 or more";
	if (r->overlaps == 0) {
		snprintf(buf, sizeof(buf), "the processes never overlapped: in all %lld windows in "
			 "which one waited between its load and its store, no other process ran "
			 "(a busy machine ran them one after the other). Code that loses nothing "
			 "in one run is not safe: run it again", (long long)r->windows);
		return buf;
	}
	snprintf(buf, sizeof(buf), "the processes overlapped in %lld of %lld windows, but the "
		 "updates lost happened to cancel out: run it again", (long long)r->overlaps,
		 (long long)r->windows);
	return buf;
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
	fprintf(f, "Some updates (16 a process, or every %dth in long runs) wait between load and\nstore until"
		   " another process has changed the value (at most %lld ms; %lld ms under a\n"
		   "lock or a Semaphore(1), where nobody can), so the processes overlap even on a\n"
		   "busy machine; a run that loses nothing says why.\n",
		WINDOW_EVERY, WINDOW_RACY_NS / 1000000, WINDOW_GUARDED_NS / 1000000);
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
		       "\"actual\":%lld,\"lost\":%lld,\"seconds\":%.6f,\"increments_per_s\":%.0f,"
		       "\"windows\":%lld,\"overlaps\":%lld}\n",
		       race_mode_name(s->mode), s->procs, (unsigned long long)s->iters,
		       (long long)r->expected, (long long)r->actual, (long long)lost, r->seconds,
		       rate, (long long)r->windows, (long long)r->overlaps);
		return;
	}
	printf("race: %u processes x %llu increments, mode %s (%s)\n", s->procs,
	       (unsigned long long)s->iters, race_mode_name(s->mode), race_mode_help(s->mode));
	printf("Expected counter value: %lld, Actual: %lld\n", (long long)r->expected,
	       (long long)r->actual);
	printf("Lost updates: %lld (%.1f%%)\n", (long long)lost,
	       r->expected ? 100.0 * (double)lost / (double)r->expected : 0.0);
	if (race_why_nothing_lost(s, r))
		printf("No update was lost this time: %s.\n", race_why_nothing_lost(s, r));
	printf("Time: %.3f s, %.2f M increments/s\n", r->seconds, rate / 1e6);
}

static void print_bank(const struct race_spec *s, const struct race_result *r, bool json)
{
	double rate = per_second(r->ops, r->seconds);

	if (json) {
		printf("{\"mode\":\"%s\",\"procs\":%u,\"iters\":%llu,\"balance\":%lld,"
		       "\"expected\":%lld,\"seconds\":%.6f,\"ops_per_s\":%.0f,\"windows\":%lld,"
		       "\"overlaps\":%lld}\n",
		       race_mode_name(s->mode), s->procs, (unsigned long long)s->iters,
		       (long long)r->actual, (long long)r->expected, r->seconds, rate,
		       (long long)r->windows, (long long)r->overlaps);
		return;
	}
	printf("bank: %u processes deposit %d and %u withdraw %d, %llu times each, mode %s (%s)\n",
	       s->procs / 2, BANK_AMOUNT, s->procs / 2, BANK_AMOUNT, (unsigned long long)s->iters,
	       race_mode_name(s->mode), race_mode_help(s->mode));
	printf("Final balance: %lld, expected: %lld%s\n", (long long)r->actual,
	       (long long)r->expected, r->actual == r->expected ? "" : " (updates were lost)");
	if (race_why_nothing_lost(s, r))
		printf("No update was lost this time: %s.\n", race_why_nothing_lost(s, r));
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
