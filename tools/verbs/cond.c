/*
 * `shmkit cond notify|wait NAME`: a named Condition from the shell. Each verb takes the
 * Condition's own lock around its call, as `with cond:` does in Python.
 *
 * As with any condition variable, a notify reaches only processes already waiting: pair it with
 * state the waiters can check (a Value, an Event) when the order of the scripts is not known.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include "verbs/verbs.h"

static int lock_slice(void *arg, int64_t ns)
{
	return shmkit_lock_acquire_timeout(arg, ns);
}

static int wait_slice(void *arg, int64_t ns)
{
	return shmkit_cond_wait_timeout(arg, ns);
}

/* Take the Condition's lock, signal-aware: 0 (or SHMKIT_OWNER_DIED), else the exit status. */
static int take_lock(const char *cmd, const char *name, shmkit_cond *c)
{
	int rc = verb_wait_sliced(lock_slice, shmkit_cond_lock(c), -1);

	if (rc == -EINTR) {
		verb_fail(cmd, name, "interrupted by %s while waiting for the condition's lock",
			  verb_signal_name(verb_signal_caught()));
		return 128 + verb_signal_caught();
	}
	if (rc == SHMKIT_OWNER_DIED)
		verb_fail(cmd, name, "the previous holder of the condition's lock died holding it");
	return rc < 0 ? verb_error(cmd, name, rc) : 0;
}

static const char notify_usage[] =
	"Usage: shmkit cond notify NAME [--n N | --all]\n"
	"Wake processes waiting on the Condition NAME ('shmkit cond wait'): one by default.\n"
	"  -n, --n N    wake up to N waiters (notify(n))\n"
	"  -a, --all    wake every waiter (notify_all())\n"
	"Only processes already waiting are woken; a notify with none waiting is lost, as in\n"
	"Python.\n";

static int cond_notify(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "n", required_argument, NULL, 'n' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "NAME" };
	struct verb_parser p;
	uint64_t n = 1;
	bool all = false, have_n = false;
	shmkit_cond *cv;
	int c, rc, rc2;

	verb_parser_init(&p, cmd, argc, argv, "+:n:ah", opts, names, 1, 1, false);
	while ((c = verb_getopt(&p)) != -1) {
		switch (c) {
		case 'n':
			if (!parse_u64(optarg, 0, INT_MAX, &n))
				return usage_error(cmd, "bad --n '%s': want 0..%d", optarg, INT_MAX);
			have_n = true;
			break;
		case 'a':
			all = true;
			break;
		case 'h':
			fputs(notify_usage, stdout);
			return 0;
		default:
			return bad_option(cmd, c, argv);
		}
	}
	if (all && have_n)
		return usage_error(cmd, "--n and --all exclude each other");
	if ((rc = verb_parser_finish(&p)) || (rc = verb_check_name(cmd, p.pos[0])))
		return rc;
	if ((rc = shmkit_cond_open(p.pos[0], &cv)))
		return verb_open_failed(cmd, p.pos[0], "cond", rc);
	verb_catch_signals();
	if ((rc = take_lock(cmd, p.pos[0], cv)) == 0) {
		rc = all ? shmkit_cond_notify_all(cv) : shmkit_cond_notify(cv, (int)n);
		rc = rc < 0 ? verb_error(cmd, p.pos[0], rc) : 0;
		if ((rc2 = shmkit_lock_release(shmkit_cond_lock(cv))) < 0)
			rc = verb_error(cmd, p.pos[0], rc2);
	}
	shmkit_cond_close(cv);
	return rc;
}

static const char wait_usage[] =
	"Usage: shmkit cond wait NAME [--timeout S]\n"
	"Wait on the Condition NAME until 'shmkit cond notify' wakes this process.\n"
	"  -t, --timeout S   give up after S seconds (fractions allowed) and exit 1\n"
	"A wake-up may come from a notify meant for another waiter (as with any Condition):\n"
	"check the state the notify announces. SIGINT/SIGTERM/SIGHUP end the wait and leave\n"
	"the Condition as found (this waiter removed, its lock released); exit 128+signal.\n";

static int cond_wait(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "NAME" };
	struct verb_parser p;
	int64_t timeout = -1;
	shmkit_cond *cv;
	const char *name;
	int c, rc, rc2;

	verb_parser_init(&p, cmd, argc, argv, "+:t:h", opts, names, 1, 1, false);
	while ((c = verb_getopt(&p)) != -1) {
		switch (c) {
		case 't':
			if (!parse_seconds(optarg, &timeout))
				return usage_error(cmd, "bad --timeout '%s'", optarg);
			break;
		case 'h':
			fputs(wait_usage, stdout);
			return 0;
		default:
			return bad_option(cmd, c, argv);
		}
	}
	if ((rc = verb_parser_finish(&p)) || (rc = verb_check_name(cmd, p.pos[0])))
		return rc;
	name = p.pos[0];
	if ((rc = shmkit_cond_open(name, &cv)))
		return verb_open_failed(cmd, name, "cond", rc);
	verb_catch_signals();
	if ((rc = take_lock(cmd, name, cv))) {
		shmkit_cond_close(cv);
		return rc;
	}
	/* Each slice that times out returns with the lock held and waits again; a notify needs
	 * the lock, so none can slip in between slices. */
	rc = verb_wait_sliced(wait_slice, cv, timeout);
	switch (rc) {
	case 0:
		break;
	case SHMKIT_OWNER_DIED:
		verb_fail(cmd, name, "woken; the condition's lock came back from a holder that died "
			  "holding it");
		rc = 0;
		break;
	case -ETIMEDOUT:
		rc = verb_fail(cmd, name, "timed out after %s without a notify",
			       verb_seconds(timeout));
		break;
	case -EINTR:
		verb_fail(cmd, name, "interrupted by %s while waiting",
			  verb_signal_name(verb_signal_caught()));
		rc = 128 + verb_signal_caught();
		break;
	default:
		rc = verb_error(cmd, name, rc);
	}
	if ((rc2 = shmkit_lock_release(shmkit_cond_lock(cv))) < 0)
		rc = verb_error(cmd, name, rc2);
	shmkit_cond_close(cv);
	return rc;
}

static const struct verb cond_verbs[] = {
	{ "notify", cond_notify, "wake one, N (--n N) or all (--all) waiters" },
	{ "wait", cond_wait, "wait until notified" },
	{ NULL, NULL, NULL },
};

int cmd_cond(int argc, char **argv)
{
	return verbs_dispatch(argv[0], "A Condition (create one with 'shmkit create cond NAME') from "
			      "the shell.", cond_verbs, argc, argv);
}
