/*
 * `shmkit bench`: shmkit's Queue, Pipe, Lock, Value and Semaphore measured against pipe(2),
 * AF_UNIX SOCK_SEQPACKET socketpairs and POSIX message queues, between forked processes.
 *
 * The parts, one job per file:
 *   bench.c         options, the machine, what runs in which order
 *   proc.c          forking teams of processes, the start gate, waiting with a timeout, stats,
 *                   the cache-line probe
 *   xport.c         the shmkit transports (Queue, Pipe) behind one interface
 *   peers.c         the same interface over pipe(2), a unix socketpair and POSIX mq
 *   tput.c          throughput: producers -> consumers
 *   rtt.c           round-trip latency (ping-pong)
 *   sync.c          counters, Lock, Semaphore
 *   idle.c          CPU used by consumers blocked on an empty queue, and how often they wake
 *   bridge/bench.c  64 B through two bridges over loopback against bare ZeroMQ
 *   out.c           the result list, the table and the JSON
 *   bulk.c          batches, loans and wake-ups (rows batch, loan, wake)
 *   (tput.c also)   large messages through slots smaller than them (rows large)
 */
#ifndef SHMKIT_TOOLS_BENCH_H
#define SHMKIT_TOOLS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_PROCS_MAX 16 /* processes of one team: the 16 sleepers of the wake test */

enum bench_test {
	BENCH_THROUGHPUT,
	BENCH_RTT,
	BENCH_COUNTER,
	BENCH_LOCK,
	BENCH_SEM,
	BENCH_IDLE,
	BENCH_BATCH,
	BENCH_LOAN,
	BENCH_WAKE,
	BENCH_BRIDGE,
	BENCH_LARGE,
	BENCH_NTESTS
};

const char *bench_test_name(enum bench_test t);

struct bench_opts {
	bool quick;
	bool json;
	bool progress;     /* one status line on stderr while running (a terminal only) */
	unsigned tests;    /* bit per enum bench_test */
	unsigned reps;     /* measured repetitions per figure (after one warm-up) */
	double tput_s;     /* seconds producers run per throughput repetition */
	double warm_s;     /* the same for the warm-up */
	unsigned rtts;     /* round trips per latency repetition */
	double sync_s;     /* seconds per counter/lock/semaphore repetition */
	double idle_s;     /* seconds a consumer stays blocked */
};

/* What the machine and the peers were set to; the table's header and JSON "machine". */
struct bench_machine {
	long nproc;
	char cpu[128];
	char kernel[200];
	long mq_msg_max;      /* /proc/sys/fs/mqueue/msg_max */
	long mq_msgsize_max;  /* /proc/sys/fs/mqueue/msgsize_max */
	long mq_maxmsg;       /* mq_maxmsg used: msg_max, or less if mq_open refused it */
	long pipe_bytes;      /* pipe(2) buffer set with F_SETPIPE_SZ (fs/pipe-max-size) */
	long unix_sndbuf;     /* SO_SNDBUF asked for (net/core/wmem_max); the kernel doubles it */
	unsigned shmkit_bytes; /* Queue/Pipe capacity: 1024 messages, fewer above this many bytes */
	double load1;         /* 1-minute load average before the run: other work distorts it all */
	double line_rtt_ns;   /* one cache line bounced between CPUs 0 and 1 and back; 0 if unknown */
};
extern struct bench_machine bench_machine;

/* Messages a shmkit Queue or Pipe holds for messages of `size` bytes. */
unsigned bench_capacity(unsigned size);

/* ------------------------------------------------------------------------------------------- */
/* Results                                                                                     */

/* One row. Figures that do not apply are NAN (omitted from the JSON), counts 0. */
struct bench_result {
	const char *transport; /* shmkit, shmkit-pipe, pipe, unix, mq, pthread */
	enum bench_test test;
	const char *mode;      /* counter/lock/sem/idle: what exactly, or NULL */
	unsigned size, producers, consumers;
	double msgs_per_s, mb_per_s;
	double p50_ns, p99_ns, p999_ns;
	unsigned round_trips;
	double ops_per_s, ns_per_op, handoffs_per_s, lost;
	double cpu_s, seconds, cpu_pct;
	double lo, hi;         /* throughput msgs/s, rtt p50: the slowest and fastest run */
	double ratio;          /* batch, loan, wake: this row against its reference in the run */
	double csw_per_msg;    /* wake: consumers' context switches per message */
	double wakeups_per_msg; /* wake: of them voluntary (sleeps that ended) */
	unsigned reps;
	char note[112];        /* how it was run, when that matters */
	char unsupported[112]; /* why it could not run: then no figures */
	char error[112];       /* why it failed: then no figures */
};

void bench_result_init(struct bench_result *r, const char *transport, enum bench_test t);
/* Keep a copy. -ENOMEM when out of memory. */
int bench_add(const struct bench_result *r);
/* Rows that failed so far. */
unsigned bench_failures(void);
void bench_print_table(const struct bench_opts *o);
void bench_print_json(const struct bench_opts *o);
void bench_results_free(void);
/* Status line on stderr when o->progress; NULL clears it. */
void bench_progress(const struct bench_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------------------------- */
/* Processes                                                                                   */

/* A set of forked children that start together: each sets itself up, says it is ready and
 * waits at the gate; the parent opens the gate once all are ready, which is time zero. */
struct bench_team {
	pid_t pid[BENCH_PROCS_MAX];
	int status[BENCH_PROCS_MAX];
	unsigned n;
	int ready[2]; /* children write one byte each */
	int go[2];    /* children read until EOF: the parent closing go[1] opens the gate */
	bool timed_out;
};

int bench_team_init(struct bench_team *t);
/* Fork child number t->n running fn(arg, idx); its return value is the exit status. fn calls
 * bench_team_ready() once set up. */
int bench_team_spawn(struct bench_team *t, int (*fn)(void *arg, unsigned idx), void *arg,
		     unsigned idx);
/* In a child: report ready and wait for the gate. false when the parent went away. */
bool bench_team_ready(struct bench_team *t);
/* In the parent: wait for every child to be ready (at most timeout_s), then open the gate;
 * *t0 is the CLOCK_MONOTONIC ns it opened at. -ETIMEDOUT/-ECHILD when some never got ready
 * (all are killed then). */
int bench_team_go(struct bench_team *t, unsigned timeout_s, int64_t *t0);
/* Reap children from..to-1, killing them all if it takes more than timeout_s.
 * 0 when each exited with status 0, -ETIMEDOUT, or -ECHILD (a child failed: see status[]). */
int bench_team_wait(struct bench_team *t, unsigned from, unsigned to, unsigned timeout_s);
/* Kill and reap whatever is left and close the gate: the end of every team, failed or not. */
void bench_team_end(struct bench_team *t);

/* Shared anonymous memory that children write their results into; zeroed. NULL on failure. */
void *bench_shared(size_t size);
void bench_unshare(void *p, size_t size);

/* CLOCK_MONOTONIC in ns. */
int64_t bench_now(void);
void bench_sleep(double seconds);
/* Median of n values (sorts v). */
double bench_median(double *v, unsigned n);
/* The q-quantile (0 < q <= 1) of n sorted values: the smallest value at or above a fraction q
 * of them. */
double bench_quantile(const int64_t *sorted, size_t n, double q);
void bench_sort_i64(int64_t *v, size_t n);

/* ------------------------------------------------------------------------------------------- */
/* Transports                                                                                  */

/* A link carries messages of exactly `size` bytes from side 0 to side 1 (direction 0), and
 * from side 1 to side 0 too (direction 1) when duplex. Side 0 has `senders` processes, side 1
 * `receivers`. */
struct bench_link_cfg {
	unsigned size;
	unsigned senders, receivers;
	bool duplex;
	/* shmkit: bytes in a slot, with LARGE_SLOTS of them (0: one slot per message, capacity
	 * bench_capacity(size)); pipe and unix sockets: byte streams (0: their usual framing). */
	unsigned slot;
};
#define LARGE_SLOTS 1024u
#define LARGE_SLOT 4096u

struct bench_xport {
	const char *name;
	/* true when cfg can run; otherwise why not, in why. */
	bool (*supported)(const struct bench_link_cfg *cfg, char *why, size_t n);
	/* How cfg is run when that is worth saying (into note, "" otherwise). */
	void (*describe)(const struct bench_link_cfg *cfg, char *note, size_t n);
	/* In the parent, before forking. */
	int (*open)(const struct bench_link_cfg *cfg, void **link);
	/* In a child, before the gate: become process idx of side `side` (attach, register, close
	 * what this process does not use), so that none of it is timed. */
	int (*attach)(void *link, int side, unsigned idx);
	/* Send on this side's direction; 0 or negative errno. */
	int (*send)(void *link, const void *msg, size_t len);
	/* Receive from the other side's direction: the length, 0 at EOF, or negative errno. */
	int (*recv)(void *link, void *buf, size_t len);
	/* A sender is done; receivers see EOF once every sender is (and senders_gone ran). */
	void (*sender_done)(void *link);
	/* In the parent, once every child is forked: drop the parent's references. */
	void (*forked)(void *link);
	/* In the parent, once every sender has exited: tell receivers that cannot otherwise see
	 * EOF (mq has none). */
	int (*senders_gone)(void *link, unsigned receivers);
	void (*close)(void *link);
};

extern const struct bench_xport bench_xport_queue; /* "shmkit": a shmkit Queue (two for duplex) */
extern const struct bench_xport bench_xport_spipe; /* "shmkit-pipe": a shmkit Pipe */
extern const struct bench_xport bench_xport_pipe;  /* "pipe": pipe(2) */
extern const struct bench_xport bench_xport_unix;  /* "unix": SOCK_SEQPACKET socketpair */
extern const struct bench_xport bench_xport_mq;    /* "mq": POSIX message queues */
extern const struct bench_xport bench_xport_ustream; /* "unix": SOCK_STREAM socketpair (large) */

/* Probe what the peers may be set to (bench_machine fields); call once before running. */
void bench_peers_probe(void);
/* Time a cache line's round trip between two processes on CPUs 0 and 1 (into bench_machine):
 * the floor under every cross-CPU hand-off, and on virtual machines it varies a lot. */
void bench_line_probe(void);

/* ------------------------------------------------------------------------------------------- */
/* The tests: each adds its rows with bench_add(); 0, or -1 when some row failed.               */

int bench_throughput(const struct bench_opts *o);
int bench_rtt(const struct bench_opts *o);
int bench_counter(const struct bench_opts *o);
int bench_lock(const struct bench_opts *o);
int bench_sem(const struct bench_opts *o);
int bench_idle(const struct bench_opts *o);
int bench_batch(const struct bench_opts *o);
int bench_loan(const struct bench_opts *o);
int bench_wake(const struct bench_opts *o);
/* 64 B through two shmkit bridges on loopback vs bare ZeroMQ PUSH/PULL (tools/bridge/bench.c;
 * rows marked unsupported when built without libzmq). */
int bench_bridge(const struct bench_opts *o);
/* Messages of 8 KiB..16 MiB, 1->1, through a Queue of 4 KiB slots (4 MiB in all) against
 * pipe(2) and a unix stream socket (tput.c). */
int bench_large(const struct bench_opts *o);

#endif
