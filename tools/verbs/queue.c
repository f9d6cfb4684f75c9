/*
 * `shmkit consume NAME --exec CMD...` and `shmkit queue join NAME`: a JoinableQueue's worker
 * pool from the shell. Each consume --exec process runs CMD once per message, the message on
 * its standard input, and marks the message done (task_done) when CMD has finished; join
 * returns once every message put has been marked done.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "verbs/verbs.h"

struct get_arg {
	shmkit_queue *q;
	char *buf;
	size_t size;
	bool ack; /* peek: the message stays in its slot until released */
};

static int get_slice(void *arg, int64_t ns)
{
	struct get_arg *g = arg;
	const void *msg;
	int len;

	if (!g->ack)
		return shmkit_queue_get_timeout(g->q, g->buf, g->size, ns);
	/* Copied out for the newline the command reads after it; the loan stays out. */
	if ((len = shmkit_queue_peek_timeout(g->q, &msg, ns)) >= 0)
		memcpy(g->buf, msg, (size_t)len);
	return len;
}

/* Write all of msg to fd; a command that does not read it is its own business. */
static void feed(int fd, const char *msg, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, msg, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		msg += n;
		len -= (size_t)n;
	}
}

/* Run the command on one message; its exit status as a shell reports it. */
static int run_one(const char *cmd, char **command, char *msg, size_t len)
{
	int fds[2], status;
	pid_t child;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	child = verb_spawn(cmd, command, fds[0], false);
	close(fds[0]);
	if (child < 0) {
		close(fds[1]);
		return (int)child;
	}
	msg[len] = '\n';
	feed(fds[1], msg, len + 1);
	close(fds[1]);
	status = verb_wait_child(child);
	return status;
}

int consume_exec(const char *name, char **command, int64_t timeout_ns, uint64_t count, bool json,
		 bool ack)
{
	const char *cmd = "consume", *stopped = "eof";
	uint64_t done = 0, failed = 0;
	struct get_arg g;
	double t0 = now_seconds();
	int rc, status, td;

	if ((rc = verb_check_name(cmd, name)))
		return rc;
	if ((rc = shmkit_queue_open(name, &g.q)))
		return verb_open_failed(cmd, name, "queue", rc);
	g.size = shmkit_queue_max_size(g.q);
	g.ack = ack;
	g.buf = malloc(g.size + 1);
	if (!g.buf) {
		shmkit_queue_close(g.q);
		return verb_error(cmd, name, -ENOMEM);
	}
	verb_catch_signals();
	rc = 0;
	while (done < count) {
		int len = verb_wait_sliced(get_slice, &g, timeout_ns);

		if (len == -EPIPE)
			break;
		if (len == -ETIMEDOUT) {
			stopped = "timeout";
			break;
		}
		if (len == -EINTR) {
			stopped = "signal";
			break;
		}
		if (len < 0) {
			rc = verb_error(cmd, name, len);
			break;
		}
		status = run_one(cmd, command, g.buf, (size_t)len);
		if (status < 0) {
			rc = verb_error(cmd, name, status);
			break;
		}
		/* The command has finished, well or not: the message is done (with --ack its slot
		 * is given back only now; a queue cannot take a message back, so a failed
		 * command's message is done too, and named below). */
		if (ack && (td = shmkit_queue_release(g.q)) < 0) {
			rc = verb_error(cmd, name, td);
			break;
		}
		td = shmkit_queue_task_done(g.q);
		if (td < 0 && td != -ENOTSUP) {
			rc = verb_error(cmd, name, td);
			break;
		}
		done++;
		if (status) {
			failed++;
			fprintf(stderr, "shmkit: consume %s: message %llu: '%s' exited with status %d\n",
				name, (unsigned long long)done, command[0], status);
		}
		if (verb_signal_caught()) {
			stopped = "signal";
			break;
		}
	}
	if (done == count)
		stopped = "count";
	free(g.buf);
	/* Close also forgives what this handle got and did not mark done, so join never waits
	 * for a consumer that has gone. */
	shmkit_queue_close(g.q);
	if (json)
		fprintf(stderr, "{\"messages\": %llu, \"failed\": %llu, \"seconds\": %.6f, "
			"\"stopped\": \"%s\"}\n",
			(unsigned long long)done, (unsigned long long)failed, now_seconds() - t0,
			stopped);
	if (rc)
		return rc;
	if (verb_signal_caught()) {
		fprintf(stderr, "shmkit: consume %s: stopped by %s\n", name,
			verb_signal_name(verb_signal_caught()));
		return 128 + verb_signal_caught();
	}
	return failed ? 1 : 0;
}

static const char join_usage[] =
	"Usage: shmkit queue join NAME [--timeout S] [--json]\n"
	"Wait until every message put on the JoinableQueue NAME has been marked done\n"
	"(task_done, as 'shmkit consume NAME --exec CMD' does once CMD has finished) or its\n"
	"consumer has died.\n"
	"  -t, --timeout S   give up after S seconds (fractions allowed) and exit 1\n"
	"  -j, --json        print {\"seconds\": T}, the time spent waiting\n"
	"A signal while waiting ends the wait and changes nothing.\n";

static int queue_join(const char *cmd, int argc, char **argv)
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
	shmkit_queue *q;
	bool json = false;
	const char *name;
	double t0;
	int c, rc;

	verb_parser_init(&p, cmd, argc, argv, "+:t:jh", opts, names, 1, 1, false);
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
			fputs(join_usage, stdout);
			return 0;
		default:
			return bad_option(cmd, c, argv);
		}
	}
	if ((rc = verb_parser_finish(&p)) || (rc = verb_check_name(cmd, p.pos[0])))
		return rc;
	name = p.pos[0];
	if ((rc = shmkit_queue_open(name, &q)))
		return verb_open_failed(cmd, name, "queue", rc);
	t0 = now_seconds();
	rc = timeout < 0 ? shmkit_queue_join(q) : shmkit_queue_join_timeout(q, timeout);
	shmkit_queue_close(q);
	if (rc == -ENOTSUP)
		return verb_fail(cmd, name, "not a JoinableQueue (create it with --joinable)");
	if (rc == -ETIMEDOUT)
		return verb_fail(cmd, name, "timed out after %s with messages not yet done",
				 verb_seconds(timeout));
	if (rc < 0)
		return verb_error(cmd, name, rc);
	if (json)
		printf("{\"seconds\": %.6f}\n", now_seconds() - t0);
	return 0;
}

static const struct verb queue_verbs[] = {
	{ "join", queue_join, "wait until every message put has been marked done" },
	{ NULL, NULL, NULL },
};

int cmd_queue(int argc, char **argv)
{
	return verbs_dispatch(argv[0], "A Queue or JoinableQueue (create one with 'shmkit create "
			      "queue NAME ...'; put with 'shmkit produce', get with 'shmkit "
			      "consume') from the shell.", queue_verbs, argc, argv);
}
