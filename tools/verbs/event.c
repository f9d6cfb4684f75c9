/*
 * `shmkit event set|clear|wait|is-set NAME`: a named Event from the shell: one script sets the
 * flag, any number of others wait for it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "verbs/verbs.h"

enum event_op { EV_SET, EV_CLEAR, EV_WAIT, EV_IS_SET };

static const char set_usage[] =
	"Usage: shmkit event set NAME\n"
	"Set the Event NAME's flag and wake every process waiting for it.\n";
static const char clear_usage[] =
	"Usage: shmkit event clear NAME\n"
	"Reset the Event NAME's flag; later waits block until it is set again.\n";
static const char wait_usage[] =
	"Usage: shmkit event wait NAME [--timeout S]\n"
	"Block until the Event NAME is set (at once if it already is).\n"
	"  -t, --timeout S   give up after S seconds (fractions allowed) and exit 1\n"
	"A signal while waiting ends the wait and changes nothing.\n";
static const char is_set_usage[] =
	"Usage: shmkit event is-set NAME [--json]\n"
	"Exit 0 when the Event NAME is set, 1 when it is not; prints nothing unless --json.\n"
	"  -j, --json   print {\"set\": true|false} (the exit status stays 0 or 1)\n";

static int event_verb(const char *cmd, int argc, char **argv, enum event_op op,
		      const char *usage)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "NAME" };
	const char *optstring = op == EV_WAIT ? "+:t:h" : op == EV_IS_SET ? "+:jh" : "+:h";
	struct verb_parser p;
	int64_t timeout = -1;
	shmkit_event *e;
	bool json = false;
	const char *name;
	int c, rc;

	verb_parser_init(&p, cmd, argc, argv, optstring, opts, names, 1, 1, false);
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
	if ((rc = shmkit_event_open(name, &e)))
		return verb_open_failed(cmd, name, "event", rc);
	switch (op) {
	case EV_SET:
		rc = shmkit_event_set(e);
		break;
	case EV_CLEAR:
		rc = shmkit_event_clear(e);
		break;
	case EV_WAIT:
		rc = timeout < 0 ? shmkit_event_wait(e) : shmkit_event_wait_timeout(e, timeout);
		break;
	case EV_IS_SET:
		rc = shmkit_event_is_set(e);
		if (rc >= 0 && json)
			printf("{\"set\": %s}\n", rc ? "true" : "false");
		shmkit_event_close(e);
		return rc < 0 ? verb_error(cmd, name, rc) : rc ? 0 : 1;
	}
	shmkit_event_close(e);
	if (rc == -ETIMEDOUT)
		return verb_fail(cmd, name, "timed out after %s: the event was not set",
				 verb_seconds(timeout));
	return rc < 0 ? verb_error(cmd, name, rc) : 0;
}

static int event_set(const char *cmd, int argc, char **argv)
{
	return event_verb(cmd, argc, argv, EV_SET, set_usage);
}

static int event_clear(const char *cmd, int argc, char **argv)
{
	return event_verb(cmd, argc, argv, EV_CLEAR, clear_usage);
}

static int event_wait(const char *cmd, int argc, char **argv)
{
	return event_verb(cmd, argc, argv, EV_WAIT, wait_usage);
}

static int event_is_set(const char *cmd, int argc, char **argv)
{
	return event_verb(cmd, argc, argv, EV_IS_SET, is_set_usage);
}

static const struct verb event_verbs[] = {
	{ "set", event_set, "set the flag, waking every waiter" },
	{ "clear", event_clear, "reset the flag" },
	{ "wait", event_wait, "block until the flag is set" },
	{ "is-set", event_is_set, "exit 0 when set, 1 when not" },
	{ NULL, NULL, NULL },
};

int cmd_event(int argc, char **argv)
{
	return verbs_dispatch(argv[0], "An Event (create one with 'shmkit create event NAME') from "
			      "the shell.", event_verbs, argc, argv);
}
