/*
 * `shmkit pipe send|recv NAME --end 0|1`: one end of a named Pipe per process, lines on stdin
 * and stdout as with produce/consume. Each end is attached by one process for its lifetime and
 * is not reused once that process lets go; the other end then sees EOF.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "verbs/verbs.h"

static const char send_usage[] =
	"Usage: shmkit pipe send NAME --end 0|1 [--timeout S]\n"
	"Take end 0 or 1 of the Pipe NAME and send each line of standard input (without its\n"
	"newline) as one message to the other end; at the end of input let go of the end, so\n"
	"the other side sees EOF once it has received everything.\n"
	"  -e, --end E       the end to take (required)\n"
	"  -t, --timeout S   give up when a send waits S seconds for room (exit 1)\n"
	"Exits 1 when the other end has closed or died, or a line is longer than the pipe's\n"
	"maximum message (nothing of that line is sent).\n";
static const char recv_usage[] =
	"Usage: shmkit pipe recv NAME --end 0|1 [--timeout S] [--count N]\n"
	"Take end 0 or 1 of the Pipe NAME and print each message received as a line, until EOF:\n"
	"the other end has let go (or died) and everything it sent was received.\n"
	"  -e, --end E       the end to take (required)\n"
	"  -t, --timeout S   stop after S seconds (fractions allowed) without a message\n"
	"  -n, --count N     stop after N messages\n";

static int pipe_verb(const char *cmd, int argc, char **argv, bool sending)
{
	static const struct option opts[] = {
		{ "end", required_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "NAME" };
	struct verb_parser p;
	int64_t timeout = -1;
	uint64_t end = 2, count = UINT64_MAX, got = 0;
	long lineno = 0;
	shmkit_pipe *pp;
	const char *name;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int c, rc;

	verb_parser_init(&p, cmd, argc, argv, sending ? "+:e:t:h" : "+:e:t:n:h", opts, names, 1,
			 1, false);
	while ((c = verb_getopt(&p)) != -1) {
		switch (c) {
		case 'e':
			if (!parse_u64(optarg, 0, 1, &end))
				return usage_error(cmd, "bad --end '%s': want 0 or 1", optarg);
			break;
		case 't':
			if (!parse_seconds(optarg, &timeout))
				return usage_error(cmd, "bad --timeout '%s'", optarg);
			break;
		case 'n':
			if (!parse_u64(optarg, 1, UINT64_MAX, &count))
				return usage_error(cmd, "bad --count '%s'", optarg);
			break;
		case 'h':
			fputs(sending ? send_usage : recv_usage, stdout);
			return 0;
		default:
			return bad_option(cmd, c, argv);
		}
	}
	if ((rc = verb_parser_finish(&p)) || (rc = verb_check_name(cmd, p.pos[0])))
		return rc;
	if (end > 1)
		return usage_error(cmd, "missing --end 0|1");
	name = p.pos[0];
	if ((rc = shmkit_pipe_open(name, &pp)))
		return verb_open_failed(cmd, name, "pipe", rc);
	rc = shmkit_pipe_attach(pp, (int)end);
	if (rc == -EBUSY)
		rc = verb_fail(cmd, name, "end %d is held by a live process", (int)end);
	else if (rc == -EPIPE)
		rc = verb_fail(cmd, name, "end %d was used and let go before: ends are not reused",
			       (int)end);
	else if (rc < 0)
		rc = verb_error(cmd, name, rc);
	if (rc)
		goto out;
	if (sending) {
		while ((n = getline(&buf, &cap, stdin)) >= 0) {
			lineno++;
			if (n > 0 && buf[n - 1] == '\n')
				n--;
			rc = timeout < 0 ? shmkit_pipe_send(pp, buf, (size_t)n)
					 : shmkit_pipe_send_timeout(pp, buf, (size_t)n, timeout);
			if (rc == -EMSGSIZE) {
				rc = verb_fail(cmd, name, "line %ld is %zd bytes, longer than the pipe's "
					       "maximum message: not sent", lineno, n);
				break;
			}
			if (rc == -EPIPE) {
				rc = verb_fail(cmd, name, "the other end has let go or died: line %ld "
					       "not sent", lineno);
				break;
			}
			if (rc == -ETIMEDOUT) {
				rc = verb_fail(cmd, name, "timed out after %s waiting for room: line %ld "
					       "not sent", verb_seconds(timeout), lineno);
				break;
			}
			if (rc < 0) {
				rc = verb_error(cmd, name, rc);
				break;
			}
		}
	} else {
		void *msg = NULL;

		/* Each message in a buffer of its own size: a pipe's largest may be a GiB. */
		while (got < count) {
			/* Flush before sleeping, so a reader downstream sees each line as it comes. */
			rc = shmkit_pipe_recv_alloc_try(pp, &msg);
			if (rc == -EAGAIN && fflush(stdout) == 0)
				rc = timeout < 0 ? shmkit_pipe_recv_alloc(pp, &msg)
						 : shmkit_pipe_recv_alloc_timeout(pp, &msg, timeout);
			if (rc == -EPIPE || rc == -ETIMEDOUT) {
				rc = 0;
				break;
			}
			if (rc < 0) {
				rc = verb_error(cmd, name, rc);
				break;
			}
			if (fwrite(msg, 1, (size_t)rc, stdout) != (size_t)rc ||
			    putchar('\n') == EOF) {
				free(msg);
				rc = runtime_error("pipe recv: stdout", -errno);
				break;
			}
			free(msg);
			got++;
			rc = 0;
		}
	}
out:
	free(buf);
	shmkit_pipe_close(pp);
	if (rc == 0 && fflush(stdout))
		rc = runtime_error("pipe recv: stdout", -errno);
	return rc;
}

static int pipe_send(const char *cmd, int argc, char **argv)
{
	return pipe_verb(cmd, argc, argv, true);
}

static int pipe_recv(const char *cmd, int argc, char **argv)
{
	return pipe_verb(cmd, argc, argv, false);
}

static const struct verb pipe_verbs[] = {
	{ "send", pipe_send, "send standard input's lines from one end" },
	{ "recv", pipe_recv, "print the messages arriving at one end, until EOF" },
	{ NULL, NULL, NULL },
};

int cmd_pipe(int argc, char **argv)
{
	return verbs_dispatch(argv[0], "A Pipe (create one with 'shmkit create pipe NAME --capacity "
			      "N --max-size B'), one end per process, from the shell.", pipe_verbs,
			      argc, argv);
}
