/*
 * `shmkit demo`: the lessons side by side, each a short section that runs real processes and
 * says what the numbers mean. One function per section; sections[] lists them in order.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "demo.h"
#include "race.h"
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

/* The sections in the order they run; more lessons are added here. */
static const struct {
	int (*run)(bool quick);
} sections[] = {
	{ demo_counter },
	{ demo_bank },
	{ demo_queue_bakery },
	{ demo_queue_dishes },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: shmkit demo [--quick]\n"
		   "Run the lessons side by side: processes racing on a shared counter and a shared\n"
		   "bank balance, unprotected and protected; a bakery and its customers around a\n"
		   "bounded queue; the washer -> dryer -> shelf JoinableQueue pipeline.\n\n"
		   "Options:\n"
		   "  -q, --quick     fewer iterations\n"
		   "  -h, --help      this text\n");
}

int cmd_demo(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool quick = false;
	size_t i;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			quick = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option("demo", opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("demo", "unexpected argument '%s'", argv[optind]);
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (i)
			printf("\n");
		if ((rc = sections[i].run(quick)))
			return rc;
	}
	return fflush(stdout) == 0 ? 0 : runtime_error("demo", -errno);
}
