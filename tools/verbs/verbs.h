/*
 * `shmkit KIND VERB NAME [ARGS]`: shell verbs for every object, one file per family, and the
 * helpers they share: the family dispatcher, an option parser that tells negative numbers and
 * a trailing command from options, opening by name with a wrong-kind message, signal-aware
 * waits, and running a command as a child while holding something.
 *
 * Signals, decided once for all verbs. A wait that takes something (a lock, a semaphore unit,
 * the Condition's lock) catches SIGINT, SIGTERM and SIGHUP and waits in slices; on a signal it
 * gives back whatever it got and exits 128+signal, so the object is as it was found. A wait
 * that takes nothing (event wait, queue join, pipe recv) keeps the default action: dying
 * there changes nothing. A barrier wait also keeps it: a party that dies while waiting breaks
 * the barrier for the others, as Python breaks it when a wait is interrupted.
 */
#ifndef SHMKIT_TOOLS_VERBS_H
#define SHMKIT_TOOLS_VERBS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

/* One verb of a family: run gets "KIND VERB" as cmd and argv[0] = VERB. */
struct verb {
	const char *name;
	int (*run)(const char *cmd, int argc, char **argv);
	const char *summary;
};

/* `shmkit KIND VERB ...`: --help lists the verbs, an unknown or missing verb is a usage error.
 * argv[0] is KIND. */
int verbs_dispatch(const char *kind, const char *about, const struct verb *verbs, int argc,
		   char **argv);

/* The family entry points registered in tools/shmkit.c. */
int cmd_lock(int argc, char **argv);
int cmd_sem(int argc, char **argv);
int cmd_event(int argc, char **argv);
int cmd_cond(int argc, char **argv);
int cmd_barrier(int argc, char **argv);
int cmd_value(int argc, char **argv);
int cmd_array(int argc, char **argv);
int cmd_pipe(int argc, char **argv);
int cmd_queue(int argc, char **argv);
/* `shmkit consume NAME --exec CMD...`: cmd_consume hands over once it has parsed its options. */
int consume_exec(const char *name, char **command, int64_t timeout_ns, uint64_t count,
		 bool json, bool ack);

/* ------------------------------------------------------------------------------------------- */
/* Parsing: options anywhere, positionals in order, "-5" a positional, and for verbs that run a
 * command, everything after the last positional (or after "--") is the command, untouched. */

#define VERB_MAX_POS 4

struct verb_parser {
	const char *cmd;
	int argc;
	char **argv;
	const char *optstring; /* starts with "+:" */
	const struct option *longopts;
	const char *const *pos_names; /* names of the positionals, for "missing X" */
	int min_pos, max_pos;
	bool command; /* a command follows the positionals */
	/* results */
	int npos;
	char *pos[VERB_MAX_POS];
	char **rest; /* the command (NULL-terminated, argv's tail) */
	const char *extra; /* a positional beyond max_pos */
	bool done;
};

/* Start parsing argv (argv[0] is the verb). */
void verb_parser_init(struct verb_parser *p, const char *cmd, int argc, char **argv,
		      const char *optstring, const struct option *longopts,
		      const char *const *pos_names, int min_pos, int max_pos, bool command);
/* The next option, as getopt_long returns it (optarg set), or -1 at the end. */
int verb_getopt(struct verb_parser *p);
/* After the loop: missing or extra positionals, or a missing command, as a usage error (2);
 * 0 when all is well. */
int verb_parser_finish(struct verb_parser *p);

/* ------------------------------------------------------------------------------------------- */
/* Objects by name. */

/* 0, or the usage error (2) for a bad name. */
int verb_check_name(const char *cmd, const char *name);
/* Report a failed open of `name` as `want`: "NAME is a sem, not a lock" when it is another
 * kind, the library's reason otherwise. Returns 1. */
int verb_open_failed(const char *cmd, const char *name, const char *want, int err);
/* "shmkit: CMD NAME: MESSAGE" on stderr; returns 1. */
int verb_fail(const char *cmd, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* shmkit_strerror(err) as verb_fail; returns 1. */
int verb_error(const char *cmd, const char *name, int err);

/* ------------------------------------------------------------------------------------------- */
/* Signals and waits. */

/* Catch SIGINT, SIGTERM and SIGHUP from now on (a flag, no restart) and ignore SIGPIPE. */
void verb_catch_signals(void);
/* The first signal caught and not yet handled, or 0. */
int verb_signal_caught(void);
/* "signal 2 (SIGINT)"-style name for messages. */
const char *verb_signal_name(int sig);

/* How long one slice of a sliced wait lasts: a caught signal is noticed within it. */
#define VERB_SLICE_NS 100000000LL

/* Call fn(arg, slice) until it returns anything but -ETIMEDOUT, the timeout (negative:
 * none) has passed (-ETIMEDOUT), or a signal was caught (-EINTR). fn must be a timed wait
 * that changes nothing when it times out. */
int verb_wait_sliced(int (*fn)(void *arg, int64_t slice_ns), void *arg, int64_t timeout_ns);

/* Print the timeout as the user gave it: "2.5 s". */
const char *verb_seconds(int64_t ns);

/* ------------------------------------------------------------------------------------------- */
/* Running a command. */

/* Start command[] as a child with default signal handling, stdin from stdin_fd (-1: ours),
 * and, when die_with_us, SIGKILLed should this process die (so a command never outlives the
 * lock or unit that admitted it). Returns the pid, or -errno when fork failed. A command that
 * cannot be executed exits 127 (126 when found but not executable), as the shells do. */
pid_t verb_spawn(const char *cmd, char **command, int stdin_fd, bool die_with_us);
/* Wait for the child, forwarding SIGINT/SIGTERM/SIGHUP sent to this process (by kill, not by
 * the terminal, which signals the child itself). Returns its status as a shell reports it:
 * the exit code, or 128 + the signal that killed it. */
int verb_wait_child(pid_t pid);

#endif
