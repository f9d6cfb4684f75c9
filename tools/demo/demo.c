/*
 * `shmkit demo`: the lessons side by side, each a short section that runs real processes and
 * says what the numbers mean. One function per section; sections[] lists them in order.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "demo/demo.h"
#include "lessons/race.h"
#include "util.h"

/* Lesson: a shared counter needs each read-modify-write to be indivisible. */
static int demo_counter(bool quick)
{
	static const enum race_mode order[] = { RACE_RACY, RACE_ATOMIC, RACE_LOCK, RACE_SEM,
						RACE_SEM2 };
	struct race_spec spec = { .procs = 2, .iters = quick ? 20000 : 100000 };
	struct race_result res;
	size_t i;
	int err;

	printf("Counter: %u processes each add 1 to one shared Value %llu times.\n", spec.procs,
	       (unsigned long long)spec.iters);
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		spec.mode = order[i];
		fflush(stdout);
		if ((err = race_run(&spec, &res)) < 0)
			return runtime_error(res.what, err);
		printf("  %-6s Expected counter value: %lld, Actual: %lld", race_mode_name(spec.mode),
		       (long long)res.expected, (long long)res.actual);
		if (res.actual != res.expected)
			printf("  (%lld updates lost)", (long long)(res.expected - res.actual));
		printf("\n");
		if (race_why_nothing_lost(&spec, &res))
			printf("         No update was lost this time: %s.\n",
			       race_why_nothing_lost(&spec, &res));
	}
	printf("  'value += 1' is a load and a store; when another process stores in between, one\n"
	       "  update is lost. An atomic add, a Lock or a Semaphore(1) make each update whole.\n"
	       "  A Semaphore(2) lets two processes in at once, so it protects nothing.\n");
	return 0;
}

/* Lesson: the same race makes money appear and disappear. */
static int demo_bank(bool quick)
{
	static const enum race_mode order[] = { RACE_RACY, RACE_LOCK };
	struct race_spec spec = { .procs = 2, .iters = quick ? 20000 : 100000, .bank = true };
	struct race_result res;
	size_t i;
	int err;

	printf("Bank: one process deposits %d, another withdraws %d, %llu times each.\n",
	       BANK_AMOUNT, BANK_AMOUNT, (unsigned long long)spec.iters);
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		spec.mode = order[i];
		fflush(stdout);
		if ((err = race_run(&spec, &res)) < 0)
			return runtime_error(res.what, err);
		printf("  %-6s Final balance: %lld (expected %lld)\n", race_mode_name(spec.mode),
		       (long long)res.actual, (long long)res.expected);
		if (race_why_nothing_lost(&spec, &res))
			printf("         No update was lost this time: %s.\n",
			       race_why_nothing_lost(&spec, &res));
	}
	printf("  Without the Lock, deposits and withdrawals overwrite each other and the\n"
	       "  balance drifts; with it every transaction counts.\n");
	return 0;
}

static int demo_queue_bakery(bool quick)
{
	(void)quick;
	return demo_bakery();
}

static int demo_queue_dishes(bool quick)
{
	(void)quick;
	return demo_dishes();
}

/* The sections in the order they run, each runnable alone by name. */
static const struct section {
	const char *name;
	int (*run)(bool quick);
	const char *summary;
} sections[] = {
	{ "counter", demo_counter, "processes racing on a shared Value: racy, atomic, Lock, "
				   "Semaphore(1), Semaphore(2)" },
	{ "bank", demo_bank, "deposits and withdrawals racing on one balance, without and with a "
			     "Lock" },
	{ "semaphore", demo_semaphore, "Semaphore(3) and ten workers: highest concurrency 3, vs "
				       "Lock 1 and none 10" },
	{ "deadlock", demo_deadlock, "two locks taken in opposite order, then the fix: one global "
				     "order" },
	{ "condition", demo_condition, "notify_all() wakes two waiting consumers, notify(1) wakes "
				       "one" },
	{ "event", demo_event, "an Event tells the consumers the producer has finished" },
	{ "bakery", demo_queue_bakery, "a bakery and five customers around a bounded Queue" },
	{ "dishes", demo_queue_dishes, "washer -> dryer -> shelf: a JoinableQueue pipeline" },
	{ "pipe", demo_pipe, "a parent and a child exchange messages; EOF when the child exits" },
};
#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: shmkit demo [--quick] [SECTION...]\n"
		   "       shmkit demo --list\n"
		   "Run the lessons with real processes, every section or the ones named:\n\n");
	for (i = 0; i < N_SECTIONS; i++)
		fprintf(f, "  %-10s %s\n", sections[i].name, sections[i].summary);
	fprintf(f, "\nOptions:\n"
		   "  -q, --quick     fewer iterations\n"
		   "  -l, --list      list the sections, one name a line with what it shows\n"
		   "  -h, --help      this text\n");
}

static const struct section *find_section(const char *name)
{
	size_t i;

	for (i = 0; i < N_SECTIONS; i++)
		if (!strcmp(sections[i].name, name))
			return &sections[i];
	return NULL;
}

int cmd_demo(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool quick = false, list = false;
	size_t i;
	int opt, rc, k;

	while ((opt = getopt_long(argc, argv, ":qlh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			quick = true;
			break;
		case 'l':
			list = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option("demo", opt, argv);
		}
	}
	for (k = optind; k < argc; k++)
		if (!find_section(argv[k]))
			return usage_error("demo", "unknown section '%s' (see 'shmkit demo --list')",
					   argv[k]);
	if (list) {
		if (optind < argc)
			return usage_error("demo", "unexpected argument '%s' with --list",
					   argv[optind]);
		for (i = 0; i < N_SECTIONS; i++)
			printf("%-10s %s\n", sections[i].name, sections[i].summary);
		return fflush(stdout) == 0 ? 0 : runtime_error("demo", -errno);
	}
	if (optind == argc) {
		for (i = 0; i < N_SECTIONS; i++) {
			if (i)
				printf("\n");
			if ((rc = sections[i].run(quick)))
				return rc;
		}
	} else {
		for (k = optind; k < argc; k++) {
			if (k > optind)
				printf("\n");
			if ((rc = find_section(argv[k])->run(quick)))
				return rc;
		}
	}
	return fflush(stdout) == 0 ? 0 : runtime_error("demo", -errno);
}
