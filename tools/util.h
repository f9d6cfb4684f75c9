/* Helpers shared by the shmkit subcommands. */
#ifndef SHMKIT_TOOLS_UTIL_H
#define SHMKIT_TOOLS_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "shmkit.h"

#define EXIT_USAGE 2

/* A subcommand: argv[0] is its name. Returns the process exit status. */
struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_race(int argc, char **argv);
int cmd_bank(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_torture(int argc, char **argv);
int cmd_bridge(int argc, char **argv);

/* "shmkit: <cmd>: <message>" on stderr, then the hint to use --help; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "shmkit: <what>: <shmkit_strerror(err)>" on stderr; returns 1. */
int runtime_error(const char *what, int err);
/* Strict decimal parse of s into [min, max]; false on anything else. */
bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* A byte count: digits with an optional K, M or G (KiB, MiB, GiB: 1G is 1073741824). */
bool parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);
bool parse_i64(const char *s, int64_t *out);
/* Octal permission bits 0..07777. */
bool parse_mode(const char *s, unsigned *out);
/* Seconds with an optional fraction ("2", "0.5") into nanoseconds. */
bool parse_seconds(const char *s, int64_t *ns);
/* CLOCK_MONOTONIC seconds. */
double now_seconds(void);
/* Print s as a JSON string literal, quotes included. */
void json_string(FILE *f, const char *s);
/* 0 when name is a valid object name, else the usage error naming it (EXIT_USAGE). */
int check_name(const char *cmd, const char *name);
/* The usual getopt_long epilogue for an unknown option or missing argument: prints the usage
 * error naming it and returns EXIT_USAGE. */
int bad_option(const char *cmd, int opt, char **argv);

#endif
