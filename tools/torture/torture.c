/*
 * `shmkit torture`: SIGKILL random participants of a Queue, a Lock, a Value and a Pipe at
 * random moments, restart them, and check that nothing was lost, duplicated, torn or wedged.
 *
 * The supervisor (this file) forks producers and consumers over one named queue, lock workers
 * over a Lock-protected Array invariant and a Value's own Lock, and a pipe pair; then it kills
 * one of them every few tens of milliseconds, restarting each at once (a restarted producer is
 * a new producer, with a fresh id). Now and then it pauses one (SIGSTOP) instead: a paused
 * process is not dead and nothing of it may be reclaimed. At the end the producers are killed,
 * the supervisor lets go of the queue, and the consumers must drain it to EOF.
 *
 * What participants record on the board (torture.h) before each step a kill could cut in two
 * lets the supervisor bound what the library may have done, and every bound is checked:
 *  - every message a consumer took is whole, stamped by a real producer, in that producer's
 *    order, and taken once;
 *  - every message whose put returned was delivered, except at most the messages the queue
 *    counts as lost with a dead consumer (lost_dead_consumer); no message appears whose put
 *    neither returned nor was cut short by a kill;
 *  - the Lock's owner deaths, as the library counts them, match the holders killed; every
 *    acquisition after one returned SHMKIT_OWNER_DIED, and the invariant was never seen broken
 *    except as the half-done update of a dead holder, which was repaired;
 *  - the Value counted every locked add that returned, and at most the ones cut short;
 *  - a pipe end whose peer was killed saw EOF within the stall limit;
 *  - no wait anywhere lasted longer than the stall limit, and the queue reached EOF with every
 *    dead participant reaped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "torture/supervisor.h"
#include "torture/torture.h"
#include "util.h"

const char *const role_name[T_NROLES] = { "producer", "consumer", "lock worker", "pipe end 0",
					  "pipe end 1" };
const char *const role_key[T_NROLES] = { "producers", "consumers", "lock_workers", "pipe_end0",
					 "pipe_end1" };

volatile sig_atomic_t caught;

void on_signal(int sig)
{
	caught = sig;
}

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

void failure(struct sup *S, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shmkit: torture: FAILED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	S->failures++;
}

/* ------------------------------------------------------------------------------------------ */
/* Set-up and command line                                                                    */

static int setup(struct sup *S)
{
	struct shmkit_queue_attr qa = { .capacity = T_QUEUE_CAP, .max_size = T_MAX_MSG,
					.mode = 0600 };
	int rc;

	S->b = mmap(NULL, sizeof(*S->b), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		    0);
	if (S->b == MAP_FAILED) {
		S->b = NULL;
		return runtime_error("board", -errno);
	}
	S->ctx.b = S->b;
	snprintf(S->ctx.qname, sizeof(S->ctx.qname), "/shmkit-torture-%d-queue", (int)S->self);
	snprintf(S->ctx.lname, sizeof(S->ctx.lname), "/shmkit-torture-%d-lock", (int)S->self);
	snprintf(S->ctx.aname, sizeof(S->ctx.aname), "/shmkit-torture-%d-cells", (int)S->self);
	snprintf(S->ctx.vname, sizeof(S->ctx.vname), "/shmkit-torture-%d-value", (int)S->self);
	if ((rc = shmkit_queue_create(S->ctx.qname, &qa, &S->q)))
		return runtime_error(S->ctx.qname, rc);
	if ((rc = shmkit_lock_create(S->ctx.lname, 0, 0600, &S->l)))
		return runtime_error(S->ctx.lname, rc);
	if ((rc = shmkit_array_create(S->ctx.aname, 2, 0600, &S->a)))
		return runtime_error(S->ctx.aname, rc);
	if ((rc = shmkit_value_create(S->ctx.vname, 0, 0600, &S->v)))
		return runtime_error(S->ctx.vname, rc);
	/* The supervisor stays a writer until the end, so the queue reaches EOF only when it
	 * lets go, however many producers are dead at a given moment. */
	if ((rc = shmkit_queue_attach_writer(S->q)))
		return runtime_error("attach writer", rc);
	return 0;
}

static void teardown(struct sup *S)
{
	torture_kill_all(S);
	if (S->ctx.pipe)
		torture_pipe_finish(S);
	shmkit_queue_close(S->q);
	shmkit_lock_close(S->l);
	shmkit_array_close(S->a);
	shmkit_value_close(S->v);
	if (S->ctx.qname[0]) {
		shmkit_queue_unlink(S->ctx.qname);
		shmkit_lock_unlink(S->ctx.lname);
		shmkit_array_unlink(S->ctx.aname);
		shmkit_value_unlink(S->ctx.vname);
	}
	if (S->b)
		munmap(S->b, sizeof(*S->b));
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: shmkit torture [--seconds S] [--kills N] [--long] [--seed N] [--json]\n"
		"SIGKILL random producers, consumers, lock holders and pipe ends at random "
		"moments,\nrestart them, and check that nothing was lost, duplicated, torn or "
		"wedged.\n\n"
		"  -s, --seconds S   run for S seconds (default %d; %d with --long)\n"
		"  -k, --kills N     kill N participants (default %d a second of the run, %d "
		"with --long)\n"
		"  -l, --long        the long run: %d s, thousands of kills\n"
		"      --seed N      seed the choice of victims and moments (default: from the "
		"clock)\n"
		"      --stall S     any wait longer than S seconds fails the run (default %d)\n"
		"  -j, --json        print the figures as one JSON object\n"
		"  -h, --help        this text\n\n"
		"Exit status: 0 when every check passed, 1 when one failed, 2 on a usage error.\n",
		QUICK_SECONDS, LONG_SECONDS, QUICK_RATE, LONG_RATE, LONG_SECONDS, STALL_SECONDS);
}

int cmd_torture(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "kills", required_argument, NULL, 'k' },
		{ "long", no_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 'S' },
		{ "stall", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct opts o = { .seconds_ns = -1, .stall_ns = STALL_SECONDS * NS };
	bool have_kills = false, have_seed = false;
	static struct sup sup;
	struct sup *S = &sup;
	struct sigaction sa;
	int opt, i, status;
	int64_t stall;

	optind = 1;
	while ((opt = getopt_long(argc, argv, ":s:k:ljh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (!parse_seconds(optarg, &o.seconds_ns) || o.seconds_ns < MS ||
			    o.seconds_ns > 100000 * NS)
				return usage_error("torture", "bad --seconds '%s'", optarg);
			break;
		case 'k':
			if (!parse_u64(optarg, 0, 500000, &o.kills))
				return usage_error("torture", "bad --kills '%s' (0..500000)",
						   optarg);
			have_kills = true;
			break;
		case 'l':
			o.lng = true;
			break;
		case 'S':
			if (!parse_u64(optarg, 0, UINT64_MAX, &o.seed))
				return usage_error("torture", "bad --seed '%s'", optarg);
			have_seed = true;
			break;
		case 'T':
			if (!parse_seconds(optarg, &stall) || stall < NS / 10)
				return usage_error("torture", "bad --stall '%s'", optarg);
			o.stall_ns = stall;
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option("torture", opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("torture", "unexpected argument '%s'", argv[optind]);
	if (o.seconds_ns < 0)
		o.seconds_ns = (int64_t)(o.lng ? LONG_SECONDS : QUICK_SECONDS) * NS;
	if (!have_kills)
		o.kills = (uint64_t)((double)o.seconds_ns / NS * (o.lng ? LONG_RATE : QUICK_RATE));
	if (!have_seed)
		o.seed = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);

	memset(S, 0, sizeof(*S));
	S->self = getpid();
	S->rng = o.seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
	if (!S->rng)
		S->rng = 1;
	S->ctx.stall_ns = o.stall_ns;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, NULL);

	if (setup(S)) {
		teardown(S);
		return 1;
	}
	for (i = 0; i < N_PRODUCERS; i++)
		S->part[S->nparts++] = (struct part){ .role = T_PRODUCER };
	for (i = 0; i < N_CONSUMERS; i++)
		S->part[S->nparts++] = (struct part){ .role = T_CONSUMER };
	for (i = 0; i < N_LOCKERS; i++)
		S->part[S->nparts++] = (struct part){ .role = T_LOCKER };
	S->part[S->nparts++] = (struct part){ .role = T_PINGER };
	S->part[S->nparts++] = (struct part){ .role = T_ECHOER };
	for (i = 0; i < S->nparts; i++) {
		struct part *p = &S->part[i];
		p->slot = i;
		if (p->role != T_PINGER && p->role != T_ECHOER && torture_spawn(S, p))
			break;
	}
	if (!S->failures)
		torture_pipe_start(S);

	o.progress = isatty(STDERR_FILENO);
	if (!S->failures)
		torture_run(S, &o);
	torture_finish(S, &o);
	S->f.pipe_trips = atomic_load(&S->b->pipe_trips);
	if (!caught) {
		torture_check_queue(S);
		torture_check_lock(S, o.stall_ns);
	}
	teardown(S);
	if (caught) {
		fprintf(stderr, "shmkit: torture: interrupted by signal %d\n", (int)caught);
		signal(caught, SIG_DFL);
		raise(caught);
		return 128 + caught;
	}
	while (waitpid(-1, &status, WNOHANG) > 0)
		;
	if (o.json)
		torture_report_json(S, &o);
	else
		torture_report_text(S, &o);
	return S->failures ? 1 : 0;
}

