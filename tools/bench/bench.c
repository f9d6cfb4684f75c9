/*
 * `shmkit bench`: shmkit's Queue, Pipe, Lock, Value and Semaphore against pipe(2), AF_UNIX
 * SOCK_SEQPACKET socketpairs and POSIX message queues, measured in one run between forked
 * processes. See bench.h for the parts.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/bench.h"
#include "util.h"

#define REPS_MAX 50

struct bench_machine bench_machine;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: shmkit bench [--quick] [--json] [--only TEST] [--reps N]\n"
		"Measure shmkit's Queue, Pipe, Lock, Value and Semaphore against pipe(2), a unix\n"
		"SOCK_SEQPACKET socketpair and POSIX mq, between forked processes, on this machine.\n"
		"\nTests:\n"
		"  throughput  messages of 8..65536 B, 1->1, 2->2 and 4->4 processes: msgs/s, MB/s\n"
		"  rtt         ping-pong of 64 and 4096 B: p50, p99, p99.9 ns\n"
		"  counter     increments/s: racy, atomic, locked, semaphore-protected\n"
		"  lock        acquire+release ns (vs pthread_mutex), contended hand-offs/s\n"
		"  sem         release+acquire ns\n"
		"  idle        CPU used by a consumer blocked on an empty queue\n"
		"  batch       64 B put_many/get_many of 32 vs single put/get, 1->1 and 2->2\n"
		"  loan        64 KiB reserve/commit + peek/release vs put/get, 1->1\n"
		"  wake        context switches per message to 16 sleepers; hand-off latency vs futex\n"
		"  bridge      64 B through two shmkit bridges on loopback vs bare ZeroMQ PUSH/PULL\n"
		"  large       8 KiB..16 MiB messages, 1->1, through 4 KiB slots vs pipe and unix\n"
		"\nOptions:\n"
		"  -q, --quick     a short run (under 30 s): 64 and 4096 B, 1->1 and 2->2, fewer runs\n"
		"  -j, --json      print one JSON object {\"machine\": {...}, \"results\": [...]}\n"
		"  -o, --only TEST run only TEST (may be repeated)\n"
		"  -r, --reps N    runs per figure, 1..%d (default 5; --quick 3); the median is shown\n"
		"  -h, --help      this text\n"
		"The full run takes a few minutes. Exit status: 0, 1 when a measurement failed, 2 on\n"
		"a usage error.\n",
		REPS_MAX);
}

static void machine_probe(void)
{
	struct bench_machine *m = &bench_machine;
	struct utsname u;
	char line[512], *p;
	FILE *f;

	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(m->cpu, sizeof(m->cpu), "unknown CPU");
	if ((f = fopen("/proc/cpuinfo", "r"))) {
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "model name", 10) && strncmp(line, "Model", 5) &&
			    strncmp(line, "cpu model", 9))
				continue;
			if (!(p = strchr(line, ':')))
				continue;
			for (p++; *p == ' ' || *p == '\t'; p++)
				;
			p[strcspn(p, "\n")] = 0;
			snprintf(m->cpu, sizeof(m->cpu), "%s", p);
			break;
		}
		fclose(f);
	}
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof(m->kernel), "%s %s %s", u.sysname, u.release, u.machine);
	m->shmkit_bytes = 4u << 20;
	m->load1 = -1;
	if ((f = fopen("/proc/loadavg", "r"))) {
		if (fscanf(f, "%lf", &m->load1) != 1)
			m->load1 = -1;
		fclose(f);
	}
	bench_peers_probe();
	bench_line_probe();
}

static bool parse_test(const char *s, enum bench_test *t)
{
	int i;

	for (i = 0; i < BENCH_NTESTS; i++) {
		if (!strcmp(s, bench_test_name((enum bench_test)i))) {
			*t = (enum bench_test)i;
			return true;
		}
	}
	return false;
}

int cmd_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },    { "json", no_argument, NULL, 'j' },
		{ "only", required_argument, NULL, 'o' }, { "reps", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },     { NULL, 0, NULL, 0 },
	};
	static int (*const run[BENCH_NTESTS])(const struct bench_opts *) = {
		[BENCH_THROUGHPUT] = bench_throughput, [BENCH_RTT] = bench_rtt,
		[BENCH_COUNTER] = bench_counter,       [BENCH_LOCK] = bench_lock,
		[BENCH_SEM] = bench_sem,               [BENCH_IDLE] = bench_idle,
		[BENCH_BATCH] = bench_batch,           [BENCH_LOAN] = bench_loan,
		[BENCH_WAKE] = bench_wake,
		[BENCH_BRIDGE] = bench_bridge,         [BENCH_LARGE] = bench_large,
	};
	struct bench_opts o = { 0 };
	uint64_t reps = 0;
	enum bench_test t;
	unsigned failed;
	int opt, i;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":qjo:r:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			o.quick = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 'o':
			if (!parse_test(optarg, &t))
				return usage_error("bench", "--only: unknown test '%s' (throughput, "
							    "rtt, counter, lock, sem, idle, batch, "
							    "loan, wake, bridge, large)",
						   optarg);
			o.tests |= 1u << t;
			break;
		case 'r':
			if (!parse_u64(optarg, 1, REPS_MAX, &reps))
				return usage_error("bench", "--reps: '%s' is not a number in 1..%d",
						   optarg, REPS_MAX);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option("bench", opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("bench", "unexpected argument '%s'", argv[optind]);
	if (!o.tests)
		o.tests = (1u << BENCH_NTESTS) - 1;
	o.reps = reps ? (unsigned)reps : o.quick ? 3 : 5;
	o.tput_s = o.quick ? 0.15 : 0.3;
	o.warm_s = o.quick ? 0.05 : 0.1;
	o.rtts = o.quick ? 3000 : 20000;
	o.sync_s = o.quick ? 0.1 : 0.2;
	o.idle_s = o.quick ? 1 : 2;
	o.progress = isatty(STDERR_FILENO);

	/* A write to a pipe or socket whose readers died must fail, not kill the writer. */
	signal(SIGPIPE, SIG_IGN);
	machine_probe();
	for (i = 0; i < BENCH_NTESTS; i++)
		if (o.tests & (1u << i))
			run[i](&o);
	bench_progress(&o, NULL);
	if (o.json)
		bench_print_json(&o);
	else
		bench_print_table(&o);
	fflush(stdout);
	failed = bench_failures();
	bench_results_free();
	if (failed) {
		fprintf(stderr, "shmkit: bench: %u measurement%s failed (see above)\n", failed,
			failed == 1 ? "" : "s");
		return 1;
	}
	return 0;
}
