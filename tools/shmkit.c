/* shmkit: one binary, one subcommand per lesson or administrative task. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "util.h"
#include "verbs/verbs.h"

static const struct command commands[] = {
	/* subcommands */
	{ "race", cmd_race, "processes racing to add to one shared counter" },
	{ "bank", cmd_bank, "deposits and withdrawals racing on one shared balance" },
	{ "demo", cmd_demo, "the lessons as processes: races, Semaphore, deadlock, Condition, Event, queues, Pipe" },
	{ "create", cmd_create, "create a named object (value, array, lock, sem, queue, ...)" },
	{ "rm", cmd_rm, "remove named objects of any kind" },
	{ "ls", cmd_ls, "list the objects in /dev/shm" },
	{ "stat", cmd_stat, "show one object's kind, owner, mode and state" },
	{ "top", cmd_top, "a live view of the objects: rates, depths, waiters, deaths" },
	{ "produce", cmd_produce, "put messages (stdin lines or stamped) on a named queue" },
	{ "consume", cmd_consume, "get messages from a named queue until EOF (--exec: run a command "
				  "on each)" },
	/* shell verbs: shmkit KIND VERB NAME [ARGS] */
	{ "lock", cmd_lock, "lock run NAME -- CMD: run a command holding a Lock (like flock)" },
	{ "rlock", cmd_lock, "the same verbs for an RLock" },
	{ "sem", cmd_sem, "sem acquire|release|value|run: a Semaphore (run: like parallel's sem)" },
	{ "event", cmd_event, "event set|clear|wait|is-set: an Event" },
	{ "cond", cmd_cond, "cond notify [--n N|--all] | wait: a Condition" },
	{ "barrier", cmd_barrier, "barrier wait|reset|abort: a Barrier (wait prints the index)" },
	{ "value", cmd_value, "value get|set|add|cas: a shared counter" },
	{ "array", cmd_array, "array get|set|add|cas INDEX: shared counters" },
	{ "pipe", cmd_pipe, "pipe send|recv --end 0|1: one end of a Pipe, lines on stdin/stdout" },
	{ "queue", cmd_queue, "queue join: wait until every message is done (consume --exec)" },
	{ "bench", cmd_bench, "measure queue, pipe, locks against pipe(2), unix sockets, mq" },
	{ "bridge", cmd_bridge, "forward a queue to another host over ZeroMQ, each message once" },
	{ "torture", cmd_torture, "SIGKILL queue, lock and pipe users at random; check nothing is lost" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *f)
{
	const struct command *c;

	fprintf(f, "Usage: shmkit COMMAND [OPTIONS...]\n"
		   "Processes sharing counters, locks, semaphores and queues through POSIX shared "
		   "memory.\n\nCommands:\n");
	for (c = commands; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\n'shmkit COMMAND --help' describes one command.\n"
		   "Options: -h, --help   this text;  -V, --version   the version.\n");
}

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("shmkit %s\n", SHMKIT_VERSION);
		return 0;
	}
	for (c = commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "shmkit: unknown command '%s' (try 'shmkit --help')\n", argv[1]);
	return EXIT_USAGE;
}
