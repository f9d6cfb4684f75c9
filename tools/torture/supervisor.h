/*
 * `shmkit torture`, the supervisor's side: what its files share (torture.h is what the
 * supervisor shares with the participants it forks). supervise.c forks, kills and restarts;
 * check.c bounds what the library may have done; report.c prints the figures; torture.c is the
 * command (options, setup, teardown).
 */
#ifndef SHMKIT_TOOLS_TORTURE_SUPERVISOR_H
#define SHMKIT_TOOLS_TORTURE_SUPERVISOR_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmkit.h"
#include "torture/torture.h"

#define NS 1000000000LL
#define MS 1000000LL

#define N_PRODUCERS 3
#define N_CONSUMERS 3
#define N_LOCKERS 3

#define QUICK_SECONDS 20
#define LONG_SECONDS 300
#define QUICK_RATE 15 /* kills per second by default */
#define LONG_RATE 20
#define STALL_SECONDS 15

extern const char *const role_name[T_NROLES];
extern const char *const role_key[T_NROLES];

struct part {
	enum t_role role;
	int slot;
	pid_t pid;      /* 0: not running */
	uint32_t id;    /* incarnation */
	bool killed;    /* we sent SIGKILL */
	int64_t paused_until; /* 0: running freely */
};

struct figures {
	uint64_t kills, kills_by_role[T_NROLES], restarts, pauses;
	/* queue */
	uint64_t prod_kills_attempting, cons_kills_getting, salvaged;
	uint64_t gids, acked, delivered, delivered_unacked, maybe_undelivered, never_put;
	uint64_t missing, phantom;
	struct shmkit_queue_stats st;
	/* Lock and Value */
	uint64_t lk_definite, lk_maybe, lk_maybe_acq, lk_owner_deaths, lk_od_seen, lk_repaired;
	int64_t cells;
	uint64_t lk_confirmed, val_maybe, val_owner_deaths, val_od_seen, val_confirmed;
	int64_t value;
	/* Pipe */
	uint64_t pipe_gens, pipe_eofs, pipe_trips;
	int64_t pipe_eof_max_ns;
	double elapsed;
};

struct sup {
	struct t_ctx ctx;
	struct t_board *b;
	struct part part[T_SLOTS];
	int nparts;
	shmkit_queue *q;
	shmkit_lock *l;
	shmkit_array *a;
	shmkit_value *v;
	char pname[64];
	unsigned pipe_gen;
	bool pipe_closing;
	int64_t pipe_closing_since;
	bool ending;
	pid_t self;
	uint32_t next_id;
	uint64_t rng;
	struct figures f;
	int failures;
};

struct opts {
	int64_t seconds_ns;
	uint64_t kills;
	uint64_t seed;
	int64_t stall_ns;
	bool json, lng;
	bool progress; /* a status line on stderr, which is a terminal */
};

/* The supervisor's signal flag (SIGINT/SIGTERM end the run early). */
extern volatile sig_atomic_t caught;
void on_signal(int sig);
int64_t now_ns(void);
void nap_ms(long ms);
/* One failed check: said on stderr and counted. */
void failure(struct sup *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* supervise.c: fork, kill, pause, restart and reap the participants. */
int torture_spawn(struct sup *S, struct part *p);
int torture_pipe_start(struct sup *S);
void torture_pipe_finish(struct sup *S);
void torture_kill_all(struct sup *S);
/* The run itself (kills at the chosen rate until the time or kill count is reached, stalls
 * watched), then the ending: producers stopped, consumers drained to EOF. */
void torture_run(struct sup *S, const struct opts *o);
void torture_finish(struct sup *S, const struct opts *o);
/* check.c: the bounds on what the library may have done, each checked. */
void torture_check_queue(struct sup *S);
void torture_check_lock(struct sup *S, int64_t stall_ns);
/* report.c */
void torture_report_text(const struct sup *S, const struct opts *o);
void torture_report_json(const struct sup *S, const struct opts *o);

#endif
