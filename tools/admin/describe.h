/*
 * Describing objects for `shmkit stat`, `ls` and `top`: a shmkit_info as a list of fields
 * (printed as text or JSON), a one-line state summary, and which processes map a region.
 */
#ifndef SHMKIT_TOOLS_DESCRIBE_H
#define SHMKIT_TOOLS_DESCRIBE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "shmkit.h"

#define SHM_DIR "/dev/shm"

enum field_type { F_INT, F_STR, F_BOOL, F_RAW }; /* F_RAW: s is JSON already (an array) */

struct field {
	char key[32];   /* JSON key */
	char label[32]; /* text label */
	enum field_type type;
	int64_t i;      /* F_INT, F_BOOL */
	char s[160];    /* F_STR; for F_INT, the text form when it is not just the number */
};

#define MAX_FIELDS 56

struct fields {
	size_t n;
	struct field f[MAX_FIELDS];
};

void add_int(struct fields *fs, const char *key, const char *label, int64_t v);
void add_bool(struct fields *fs, const char *key, const char *label, bool v);
/* A JSON literal (an array of numbers, ...): json in JSON, text as text. */
void add_raw(struct fields *fs, const char *key, const char *label, const char *json);
void add_str(struct fields *fs, const char *key, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Every field of an object: name, kind, size, mode, owner, uid, creator, then its kind's. */
void all_fields(const char *name, const struct shmkit_info *in, struct fields *fs);
void print_text(const struct fields *fs);
/* One JSON object, no newline. */
void print_json(const struct fields *fs);
/* The user name of uid, or the number. */
void owner_name(uid_t uid, char *buf, size_t size);
/* One line of the state that matters for the object's kind ("3/1024 queued, 2 writers"). */
void summary(const struct shmkit_info *in, char *buf, size_t size);

/*
 * Which processes map which /dev/shm files, from /proc/PID/maps: the processes this user may
 * read (all of them for root) in this pid namespace. Read-only, never blocks on a region.
 */
struct mappers;
struct mappers *mappers_scan(void);
/* Pids mapping /dev/shm/<file> (no leading '/'): count, and up to max of them into pids. */
size_t mappers_of(const struct mappers *m, const char *file, pid_t *pids, size_t max);
void mappers_free(struct mappers *m);

#endif
