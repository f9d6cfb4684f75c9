/*
 * `shmkit lock run|holder NAME`: a command run while this process holds a named Lock, as
 * util-linux flock(1) runs one holding a file lock. `rlock` is the same family: from the shell
 * the holder is always this tool process, so recursion never arises.
 *
 * The tool itself holds the lock (locks belong to the thread that took them), runs the command
 * as its child, waits, and releases. Should the tool be SIGKILLed, the robust lock goes to the
 * next holder with SHMKIT_OWNER_DIED, and the command is SIGKILLed too: two commands never run
 * under one lock at once.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "verbs/verbs.h"

/* Set in the command's environment when the previous holder died holding the lock, so the
 * command can repair what it may have left half done. */
#define ENV_OWNER_DIED "SHMKIT_PREVIOUS_HOLDER_DIED"

static int open_lock(const char *cmd, const char *name, shmkit_lock **l)
{
	int rc = verb_check_name(cmd, name);

	if (rc)
		return rc;
	rc = shmkit_lock_open(name, l);
	return rc ? verb_open_failed(cmd, name, "lock", rc) : 0;
}

static int acquire_slice(void *arg, int64_t ns)
{
	return shmkit_lock_acquire_timeout(arg, ns);
}

static const char run_usage[] =
	"Usage: shmkit lock run NAME [--timeout S] [--conflict-exit-code N] [--] CMD [ARG...]\n"
	"Take the Lock (or RLock) NAME, run CMD, release the lock when it exits; like\n"
	"'flock [-w S] [-E N] FILE CMD'. The exit status is CMD's (128+N when signal N killed\n"
	"it).\n"
	"  -t, --timeout S             give up after S seconds (fractions allowed; 0 tries once)\n"
	"  -n, --nonblock              the same as --timeout 0\n"
	"  -E, --conflict-exit-code N  exit N (0..255, default 1) when the lock was not taken\n"
	"                              in time\n"
	"When the previous holder died holding the lock, a line saying so goes to stderr and\n"
	"CMD runs with " ENV_OWNER_DIED "=1: what the lock protects may be half updated.\n"
	"SIGINT/SIGTERM/SIGHUP while waiting: nothing is taken, exit 128+signal. While CMD runs\n"
	"they are passed on to it, and the lock is released once it exits. If this process is\n"
	"SIGKILLed, CMD is killed too and the next holder is told the previous one died.\n";

static int lock_run(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "nonblock", no_argument, NULL, 'n' },
		{ "conflict-exit-code", required_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "NAME" };
	struct verb_parser p;
	int64_t timeout = -1;
	uint64_t conflict = 1;
	shmkit_lock *l;
	const char *name;
	pid_t child, holder;
	int c, rc, status;

	verb_parser_init(&p, cmd, argc, argv, "+:t:nE:h", opts, names, 1, 1, true);
	while ((c = verb_getopt(&p)) != -1) {
		switch (c) {
		case 't':
			if (!parse_seconds(optarg, &timeout))
				return usage_error(cmd, "bad --timeout '%s'", optarg);
			break;
		case 'n':
			timeout = 0;
			break;
		case 'E':
			if (!parse_u64(optarg, 0, 255, &conflict))
				return usage_error(cmd, "bad --conflict-exit-code '%s': want 0..255",
						   optarg);
			break;
		case 'h':
			fputs(run_usage, stdout);
			return 0;
		default:
			return bad_option(cmd, c, argv);
		}
	}
	if ((rc = verb_parser_finish(&p)))
		return rc;
	name = p.pos[0];
	if ((rc = open_lock(cmd, name, &l)))
		return rc;
	verb_catch_signals();
	rc = verb_wait_sliced(acquire_slice, l, timeout);
	if (rc < 0) {
		holder = shmkit_lock_holder(l);
		shmkit_lock_close(l);
		switch (rc) {
		case -ETIMEDOUT:
			verb_fail(cmd, name, "timed out after %s waiting for the lock (held by pid %d)",
				  verb_seconds(timeout), (int)holder);
			return (int)conflict;
		case -EINTR:
			verb_fail(cmd, name, "interrupted by %s while waiting; the lock was not taken",
				  verb_signal_name(verb_signal_caught()));
			return 128 + verb_signal_caught();
		case -EDEADLK:
			return verb_fail(cmd, name, "deadlock detected: waiting for this lock would "
				  "close a cycle of processes each waiting for a lock another holds; "
				  "not taken");
		default:
			return verb_error(cmd, name, rc);
		}
	}
	if (rc == SHMKIT_OWNER_DIED) {
		verb_fail(cmd, name, "the previous holder died holding the lock; it is ours now, "
			  "but what it protects may be half updated");
		setenv(ENV_OWNER_DIED, "1", 1);
	}
	if (verb_signal_caught()) {
		/* Signalled just as the lock came: give it back rather than start the command. */
		shmkit_lock_release(l);
		shmkit_lock_close(l);
		return 128 + verb_signal_caught();
	}
	child = verb_spawn(cmd, p.rest, -1, true);
	status = child < 0 ? 1 : verb_wait_child(child);
	if (child < 0)
		verb_error(cmd, name, (int)child);
	if ((rc = shmkit_lock_release(l)) < 0)
		status = verb_error(cmd, name, rc);
	shmkit_lock_close(l);
	return status;
}

static const char holder_usage[] =
	"Usage: shmkit lock holder NAME [--json]\n"
	"Print the pid holding the Lock NAME, 0 when it is free (a snapshot).\n"
	"  -j, --json   as {\"holder\": PID}\n"
	"A holder that died holding the lock holds nothing: 0, and a line on stderr naming\n"
	"it (with --json, {\"holder\": 0, \"died\": PID}); the next acquire recovers it.\n";

static int lock_holder(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "NAME" };
	struct verb_parser p;
	struct shmkit_info in;
	shmkit_lock *l;
	bool json = false;
	pid_t holder, died = 0;
	int c, rc;

	verb_parser_init(&p, cmd, argc, argv, "+:jh", opts, names, 1, 1, false);
	while ((c = verb_getopt(&p)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(holder_usage, stdout);
			return 0;
		default:
			return bad_option(cmd, c, argv);
		}
	}
	if ((rc = verb_parser_finish(&p)) || (rc = open_lock(cmd, p.pos[0], &l)))
		return rc;
	holder = shmkit_lock_holder(l);
	shmkit_lock_close(l);
	/* A holder that died holds nothing (shmkit_lock_holder says 0); say who it was. */
	if (!holder && shmkit_info(p.pos[0], &in) == 0 && in.holder < 0)
		died = -in.holder;
	if (json && died)
		printf("{\"holder\": 0, \"died\": %d}\n", (int)died);
	else
		printf(json ? "{\"holder\": %d}\n" : "%d\n", (int)holder);
	if (died && !json)
		fprintf(stderr, "shmkit: %s %s: holder %d died holding it (the next acquire "
				"recovers it)\n", cmd, p.pos[0], (int)died);
	return 0;
}

static const struct verb lock_verbs[] = {
	{ "run", lock_run, "run a command holding the lock (like flock(1))" },
	{ "holder", lock_holder, "print the pid holding the lock, 0 when free" },
	{ NULL, NULL, NULL },
};

int cmd_lock(int argc, char **argv)
{
	return verbs_dispatch(argv[0], "A Lock or RLock (create one with 'shmkit create lock NAME')"
			      " from the shell.", lock_verbs, argc, argv);
}
