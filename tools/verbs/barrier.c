/*
 * `shmkit barrier wait|reset|abort NAME`: a named Barrier from the shell: N scripts meet, each
 * learns its arrival index.
 *
 * A wait keeps the default action of SIGINT/SIGTERM: a party that dies while waiting breaks
 * the barrier for the others (they exit 1 saying so), as an interrupted wait breaks a Python
 * Barrier. A timed-out wait breaks it too, as Python's wait(timeout) does.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "verbs/verbs.h"

enum barrier_op { BR_WAIT, BR_RESET, BR_ABORT };

static const char wait_usage[] =
	"Usage: shmkit barrier wait NAME [--timeout S] [--json]\n"
	"Wait at the Barrier NAME until all its parties wait, then print this process's arrival\n"
	"index (0..parties-1).\n"
	"  -t, --timeout S   give up after S seconds (fractions allowed): the barrier breaks\n"
	"  -j, --json        as {\"index\": I, \"parties\": N}\n"
	"Exits 1 when the barrier is or becomes broken (a party timed out, died while waiting,\n"
	"or reset/abort was called); until a reset, every wait on it then fails at once.\n";
static const char reset_usage[] =
	"Usage: shmkit barrier reset NAME\n"
	"Return the Barrier NAME to its initial state; parties waiting now exit 1 (broken).\n";
static const char abort_usage[] =
	"Usage: shmkit barrier abort NAME\n"
	"Break the Barrier NAME: waiting parties, and later waits until a reset, exit 1.\n";

static int barrier_verb(const char *cmd, int argc, char **argv, enum barrier_op op,
			const char *usage)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "NAME" };
	struct verb_parser p;
	int64_t timeout = -1;
	shmkit_barrier *b;
	bool json = false;
	const char *name;
	int c, rc;

	verb_parser_init(&p, cmd, argc, argv, op == BR_WAIT ? "+:t:jh" : "+:h", opts, names, 1, 1,
			 false);
	while ((c = verb_getopt(&p)) != -1) {
		switch (c) {
		case 't':
			if (!parse_seconds(optarg, &timeout))
				return usage_error(cmd, "bad --timeout '%s'", optarg);
			break;
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
	if ((rc = verb_parser_finish(&p)) || (rc = verb_check_name(cmd, p.pos[0])))
		return rc;
	name = p.pos[0];
	if ((rc = shmkit_barrier_open(name, &b)))
		return verb_open_failed(cmd, name, "barrier", rc);
	switch (op) {
	case BR_WAIT:
		rc = timeout < 0 ? shmkit_barrier_wait(b) : shmkit_barrier_wait_timeout(b, timeout);
		if (rc >= 0) {
			if (json)
				printf("{\"index\": %d, \"parties\": %d}\n", rc,
				       shmkit_barrier_parties(b));
			else
				printf("%d\n", rc);
			rc = 0;
		}
		break;
	case BR_RESET:
		rc = shmkit_barrier_reset(b);
		break;
	case BR_ABORT:
		rc = shmkit_barrier_abort(b);
		break;
	}
	shmkit_barrier_close(b);
	if (rc == -ETIMEDOUT)
		return verb_fail(cmd, name, "timed out after %s; the barrier is now broken",
				 verb_seconds(timeout));
	if (rc == -ECANCELED)
		return verb_fail(cmd, name, "the barrier is broken (a party timed out, died while "
				 "waiting, or it was reset or aborted)");
	return rc < 0 ? verb_error(cmd, name, rc) : 0;
}

static int barrier_wait(const char *cmd, int argc, char **argv)
{
	return barrier_verb(cmd, argc, argv, BR_WAIT, wait_usage);
}

static int barrier_reset(const char *cmd, int argc, char **argv)
{
	return barrier_verb(cmd, argc, argv, BR_RESET, reset_usage);
}

static int barrier_abort(const char *cmd, int argc, char **argv)
{
	return barrier_verb(cmd, argc, argv, BR_ABORT, abort_usage);
}

static const struct verb barrier_verbs[] = {
	{ "wait", barrier_wait, "wait for all parties; print the arrival index" },
	{ "reset", barrier_reset, "back to the initial state (waiters see it broken)" },
	{ "abort", barrier_abort, "break the barrier" },
	{ NULL, NULL, NULL },
};

int cmd_barrier(int argc, char **argv)
{
	return verbs_dispatch(argv[0], "A Barrier (create one with 'shmkit create barrier NAME "
			      "--parties N') from the shell.", barrier_verbs, argc, argv);
}
