/*
 * `shmkit sem acquire|release|value|run NAME`: a named Semaphore from the shell. Unlike a lock,
 * a unit may be released by another process, so acquire and release are separate commands;
 * `run` holds one unit while a command runs, as GNU parallel's `sem` does.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "verbs/verbs.h"

static int open_sem(const char *cmd, const char *name, shmkit_sem **s)
{
	int rc = verb_check_name(cmd, name);

	if (rc)
		return rc;
	rc = shmkit_sem_open(name, s);
	return rc ? verb_open_failed(cmd, name, "sem", rc) : 0;
}

static int acquire_slice(void *arg, int64_t ns)
{
	return shmkit_sem_acquire_timeout(arg, ns);
}

/* Options shared by acquire and run. */
struct take_opts {
	int64_t timeout;
	uint64_t conflict;
};

static const struct option take_longopts[] = {
	{ "timeout", required_argument, NULL, 't' },
	{ "nonblock", no_argument, NULL, 'n' },
	{ "conflict-exit-code", required_argument, NULL, 'E' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Parse acquire's or run's arguments; -1 when all is well, else the exit status. */
static int parse_take(struct verb_parser *p, const char *usage, struct take_opts *o)
{
	int c, rc;

	o->timeout = -1;
	o->conflict = 1;
	while ((c = verb_getopt(p)) != -1) {
		switch (c) {
		case 't':
			if (!parse_seconds(optarg, &o->timeout))
				return usage_error(p->cmd, "bad --timeout '%s'", optarg);
			break;
		case 'n':
			o->timeout = 0;
			break;
		case 'E':
			if (!parse_u64(optarg, 0, 255, &o->conflict))
				return usage_error(p->cmd, "bad --conflict-exit-code '%s': want 0..255",
						   optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return bad_option(p->cmd, c, p->argv);
		}
	}
	rc = verb_parser_finish(p);
	return rc ? rc : -1;
}

/* Take one unit, signal-aware; 0 when taken, else the exit status (message printed). */
static int take(const char *cmd, const char *name, shmkit_sem *s, const struct take_opts *o)
{
	int rc;

	verb_catch_signals();
	rc = verb_wait_sliced(acquire_slice, s, o->timeout);
	if (rc == 0 && verb_signal_caught()) {
		/* The unit came with the signal: put it back, so the semaphore is as found. */
		shmkit_sem_release(s);
		rc = -EINTR;
	}
	switch (rc) {
	case 0:
		return 0;
	case -ETIMEDOUT:
		verb_fail(cmd, name, "timed out after %s waiting for a unit (value %d)",
			  verb_seconds(o->timeout), shmkit_sem_value(s));
		return (int)o->conflict;
	case -EINTR:
		verb_fail(cmd, name, "interrupted by %s while waiting; no unit was taken",
			  verb_signal_name(verb_signal_caught()));
		return 128 + verb_signal_caught();
	default:
		return verb_error(cmd, name, rc);
	}
}

static int release(const char *cmd, const char *name, shmkit_sem *s)
{
	int rc = shmkit_sem_release(s);

	if (rc == -EOVERFLOW)
		return verb_fail(cmd, name, "a bounded semaphore already at its initial value: "
				 "not released (more releases than acquires)");
	return rc < 0 ? verb_error(cmd, name, rc) : 0;
}

static const char acquire_usage[] =
	"Usage: shmkit sem acquire NAME [--timeout S] [--conflict-exit-code N]\n"
	"Take one unit of the Semaphore NAME and keep it after exiting: any process may give it\n"
	"back with 'shmkit sem release NAME'.\n"
	"  -t, --timeout S             give up after S seconds (fractions allowed; 0 tries once)\n"
	"  -n, --nonblock              the same as --timeout 0\n"
	"  -E, --conflict-exit-code N  exit N (0..255, default 1) when no unit came in time\n"
	"SIGINT/SIGTERM/SIGHUP while waiting: no unit is taken, exit 128+signal.\n";

static int sem_acquire(const char *cmd, int argc, char **argv)
{
	static const char *const names[] = { "NAME" };
	struct verb_parser p;
	struct take_opts o;
	shmkit_sem *s;
	int rc;

	verb_parser_init(&p, cmd, argc, argv, "+:t:nE:h", take_longopts, names, 1, 1, false);
	if ((rc = parse_take(&p, acquire_usage, &o)) >= 0)
		return rc;
	if ((rc = open_sem(cmd, p.pos[0], &s)))
		return rc;
	rc = take(cmd, p.pos[0], s, &o);
	shmkit_sem_close(s);
	return rc;
}

static const char run_usage[] =
	"Usage: shmkit sem run NAME [--timeout S] [--conflict-exit-code N] [--] CMD [ARG...]\n"
	"Take one unit of the Semaphore NAME, run CMD, give the unit back when it exits (GNU\n"
	"parallel's 'sem'): with a Semaphore(3),\n"
	"  for f in *; do shmkit sem run /three -- convert \"$f\" \"$f.png\" & done; wait\n"
	"runs at most three at once. The exit status is CMD's (128+N when signal N killed it).\n"
	"  -t, --timeout S             give up after S seconds (fractions allowed; 0 tries once)\n"
	"  -n, --nonblock              the same as --timeout 0\n"
	"  -E, --conflict-exit-code N  exit N (0..255, default 1) when no unit came in time\n"
	"SIGINT/SIGTERM/SIGHUP while waiting: no unit is taken, exit 128+signal. While CMD runs\n"
	"they are passed on to it and the unit is given back once it exits. If this process is\n"
	"SIGKILLed, CMD is killed too, and the unit is lost (a POSIX semaphore does not know\n"
	"who holds its units).\n";

static int sem_run(const char *cmd, int argc, char **argv)
{
	static const char *const names[] = { "NAME" };
	struct verb_parser p;
	struct take_opts o;
	shmkit_sem *s;
	pid_t child;
	int rc, status;

	verb_parser_init(&p, cmd, argc, argv, "+:t:nE:h", take_longopts, names, 1, 1, true);
	if ((rc = parse_take(&p, run_usage, &o)) >= 0)
		return rc;
	if ((rc = open_sem(cmd, p.pos[0], &s)))
		return rc;
	if ((rc = take(cmd, p.pos[0], s, &o))) {
		shmkit_sem_close(s);
		return rc;
	}
	child = verb_spawn(cmd, p.rest, -1, true);
	status = child < 0 ? verb_error(cmd, p.pos[0], (int)child) : verb_wait_child(child);
	if (release(cmd, p.pos[0], s))
		status = 1;
	shmkit_sem_close(s);
	return status;
}

static const char release_usage[] =
	"Usage: shmkit sem release NAME\n"
	"Give one unit back to the Semaphore NAME (any process may). A bounded semaphore\n"
	"already at its initial value refuses, and this exits 1.\n";

static const char value_usage[] =
	"Usage: shmkit sem value NAME [--json]\n"
	"Print the Semaphore's current value (a snapshot).\n"
	"  -j, --json   as {\"value\": N}\n";

/* release and value: a NAME and at most --json. */
static int sem_simple(const char *cmd, int argc, char **argv, const char *usage, bool is_value)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "NAME" };
	struct verb_parser p;
	shmkit_sem *s;
	bool json = false;
	int c, rc;

	verb_parser_init(&p, cmd, argc, argv, is_value ? "+:jh" : "+:h", opts, names, 1, 1,
			 false);
	while ((c = verb_getopt(&p)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return bad_option(cmd, c, argv);
		}
	}
	if ((rc = verb_parser_finish(&p)) || (rc = open_sem(cmd, p.pos[0], &s)))
		return rc;
	if (is_value) {
		int v = shmkit_sem_value(s);
		if (v < 0)
			rc = verb_error(cmd, p.pos[0], v);
		else
			printf(json ? "{\"value\": %d}\n" : "%d\n", v);
	} else {
		rc = release(cmd, p.pos[0], s);
	}
	shmkit_sem_close(s);
	return rc;
}

static int sem_release(const char *cmd, int argc, char **argv)
{
	return sem_simple(cmd, argc, argv, release_usage, false);
}

static int sem_value(const char *cmd, int argc, char **argv)
{
	return sem_simple(cmd, argc, argv, value_usage, true);
}

static const struct verb sem_verbs[] = {
	{ "acquire", sem_acquire, "take one unit and keep it (another process may release it)" },
	{ "release", sem_release, "give one unit back" },
	{ "value", sem_value, "print the current value" },
	{ "run", sem_run, "run a command holding one unit (like GNU parallel's sem)" },
	{ NULL, NULL, NULL },
};

int cmd_sem(int argc, char **argv)
{
	return verbs_dispatch(argv[0], "A Semaphore or BoundedSemaphore (create one with 'shmkit "
			      "create sem NAME --init N [--bounded]') from the shell.", sem_verbs,
			      argc, argv);
}
