/* The race and bank lessons as a function: `shmkit race`, `shmkit bank` and `shmkit demo`. */
#ifndef SHMKIT_TOOLS_RACE_H
#define SHMKIT_TOOLS_RACE_H

#include <stdbool.h>
#include <stdint.h>

#define RACE_PROCS_MAX 256
#define RACE_ITERS_MAX 1000000000ULL
#define BANK_AMOUNT 100

/* How each child protects its read-modify-write of the shared counter. */
enum race_mode {
	RACE_RACY,   /* shmkit_value_add RACY: separate load and store */
	RACE_ATOMIC, /* shmkit_value_add ATOMIC */
	RACE_LOCK,   /* shmkit_value_add LOCKED: the Value's own Lock */
	RACE_SEM,    /* a racy add inside a Semaphore(1) */
	RACE_SEM2,   /* a racy add inside a Semaphore(2): still loses updates */
};

struct race_spec {
	unsigned procs;      /* 1..RACE_PROCS_MAX; even for a bank */
	uint64_t iters;      /* adds per process, 1..RACE_ITERS_MAX */
	enum race_mode mode;
	bool bank;           /* even children deposit BANK_AMOUNT, odd ones withdraw it */
};

struct race_result {
	int64_t expected; /* the right final value: procs * iters, or 0 for a bank */
	int64_t actual;   /* the final value */
	uint64_t ops;     /* adds done in all: procs * iters */
	double seconds;   /* from the start signal until the last child was reaped */
	int64_t windows;  /* updates that waited between load and store for another process */
	int64_t overlaps; /* of those, the ones in which another process changed the counter */
	char what[96];    /* on failure: what failed, for runtime_error() */
};

/* "racy", "atomic", ... into *out; false for anything else. */
bool race_mode_parse(const char *s, enum race_mode *out);
const char *race_mode_name(enum race_mode m);
/* Why a run of a mode that can lose updates (racy, sem2) lost none (a sentence without its
 * full stop); NULL when it lost some or cannot lose any. */
struct race_spec;
struct race_result;
const char *race_why_nothing_lost(const struct race_spec *s, const struct race_result *r);
/* One line saying what the mode does. */
const char *race_mode_help(enum race_mode m);

/*
 * Run one race with spec->procs forked processes sharing named objects
 * (/shmkit-race-<pid>...), which are removed before it returns. 0, or a negative errno with
 * res->what saying what failed. SIGINT, SIGTERM or SIGHUP during the run kill the children,
 * remove the objects and then raise the signal again under the disposition it had before.
 */
int race_run(const struct race_spec *spec, struct race_result *res);

#endif
