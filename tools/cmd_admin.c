/*
 * Administration by name: `shmkit create`, `rm`, `ls` and `stat`.
 *
 * create knows each kind through one kinds[] entry (its options and its create call); stat and
 * ls describe each kind through one case of kind_fields() and summary().
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifndef SEM_VALUE_MAX
#define SEM_VALUE_MAX INT_MAX
#endif

#define SHM_DIR "/dev/shm"

static int check_name(const char *cmd, const char *name)
{
	if (shmkit_name_check(name) == 0)
		return 0;
	return usage_error(cmd, "bad name '%s': want '/' then 1..%d of A-Z a-z 0-9 . _ - "
				"(not /sem.*)", name, SHMKIT_NAME_MAX);
}

/* ------------------------------------------------------------------------------------------- */
/* create                                                                                      */

enum {
	OPT_INIT = 0x1,
	OPT_SIZE = 0x2,
	OPT_BOUNDED = 0x4,
	OPT_CAPACITY = 0x8,
	OPT_MAX_SIZE = 0x10,
	OPT_WRITERS = 0x20,
	OPT_JOINABLE = 0x40,
	OPT_SIMPLEX = 0x80,
	OPT_PARTIES = 0x100,
	OPT_LAST = OPT_PARTIES,
};

struct create_args {
	const char *name;
	int64_t init;  /* --init, or the kind's default */
	uint64_t size; /* --size */
	bool bounded;  /* --bounded */
	unsigned mode; /* --mode; 0 means 0600 */
	uint64_t capacity, max_size, writers, parties;
	bool joinable, simplex;
};

static int create_value(const struct create_args *a)
{
	shmkit_value *v;
	int err = shmkit_value_create(a->name, a->init, a->mode, &v);

	return err < 0 ? err : shmkit_value_close(v);
}

static int create_array(const struct create_args *a)
{
	shmkit_array *arr;
	int err = shmkit_array_create(a->name, (size_t)a->size, a->mode, &arr);

	return err < 0 ? err : shmkit_array_close(arr);
}

static int create_lock_flags(const struct create_args *a, unsigned flags)
{
	shmkit_lock *l;
	int err = shmkit_lock_create(a->name, flags, a->mode, &l);

	return err < 0 ? err : shmkit_lock_close(l);
}

static int create_lock(const struct create_args *a)
{
	return create_lock_flags(a, 0);
}

static int create_rlock(const struct create_args *a)
{
	return create_lock_flags(a, SHMKIT_RECURSIVE);
}

static int create_sem(const struct create_args *a)
{
	shmkit_sem *s;
	int err = shmkit_sem_create(a->name, (unsigned)a->init, a->bounded ? SHMKIT_BOUNDED : 0,
				    a->mode, &s);

	return err < 0 ? err : shmkit_sem_close(s);
}

static int create_queue(const struct create_args *a)
{
	struct shmkit_queue_attr attr = {
		.capacity = (uint32_t)a->capacity, .max_size = (uint32_t)a->max_size,
		.writers = (uint32_t)a->writers, .flags = a->joinable ? SHMKIT_JOINABLE : 0,
		.mode = a->mode,
	};
	shmkit_queue *q;
	int err = shmkit_queue_create(a->name, &attr, &q);

	return err < 0 ? err : shmkit_queue_close(q);
}

static int create_pipe(const struct create_args *a)
{
	shmkit_pipe *p;
	int err = shmkit_pipe_create(a->name, (uint32_t)a->capacity, (uint32_t)a->max_size,
				     a->simplex ? SHMKIT_SIMPLEX : 0, a->mode, &p);

	return err < 0 ? err : shmkit_pipe_close(p);
}

static int create_event(const struct create_args *a)
{
	shmkit_event *e;
	int err = shmkit_event_create(a->name, a->mode, &e);

	return err < 0 ? err : shmkit_event_close(e);
}

static int create_cond(const struct create_args *a)
{
	shmkit_cond *c;
	int err = shmkit_cond_create(a->name, a->mode, &c);

	return err < 0 ? err : shmkit_cond_close(c);
}

static int create_barrier(const struct create_args *a)
{
	shmkit_barrier *b;
	int err = shmkit_barrier_create(a->name, (unsigned)a->parties, a->mode, &b);

	return err < 0 ? err : shmkit_barrier_close(b);
}

static int create_block(const struct create_args *a)
{
	shmkit_block *b;
	int err = shmkit_block_create(a->name, (size_t)a->size, a->mode, &b);

	return err < 0 ? err : shmkit_block_close(b);
}

static const struct kind_entry {
	const char *kind;
	unsigned opts;        /* OPT_* it accepts */
	unsigned needs;       /* OPT_* it requires */
	int64_t init_default; /* --init: default and range */
	int64_t init_min, init_max;
	uint64_t size_max;    /* --size: 1..size_max */
	int (*create)(const struct create_args *a);
	const char *help;
} kinds[] = {
	{ "value", OPT_INIT, 0, 0, INT64_MIN, INT64_MAX, 0, create_value,
	  "a Value: one int64 (--init V, default 0)" },
	{ "array", OPT_SIZE, OPT_SIZE, 0, 0, 0, 1u << 24, create_array,
	  "an Array of --size N int64 cells (1..16777216), all 0" },
	{ "lock", 0, 0, 0, 0, 0, 0, create_lock, "a Lock" },
	{ "rlock", 0, 0, 0, 0, 0, 0, create_rlock, "an RLock (recursive Lock)" },
	{ "sem", OPT_INIT | OPT_BOUNDED, 0, 1, 0, SEM_VALUE_MAX, 0, create_sem,
	  "a Semaphore (--init V, default 1; --bounded: a BoundedSemaphore)" },
	{ "queue", OPT_CAPACITY | OPT_MAX_SIZE | OPT_WRITERS | OPT_JOINABLE,
	  OPT_CAPACITY | OPT_MAX_SIZE, 0, 0, 0, 0, create_queue,
	  "a Queue of --capacity N messages of up to --max-size B bytes (--writers N:\n"
	  "          EOF after N writers came and went; --joinable: a JoinableQueue)" },
	{ "pipe", OPT_CAPACITY | OPT_MAX_SIZE | OPT_SIMPLEX, OPT_CAPACITY | OPT_MAX_SIZE, 0, 0, 0,
	  0, create_pipe, "a Pipe, --capacity messages of --max-size bytes each way (--simplex)" },
	{ "event", 0, 0, 0, 0, 0, 0, create_event, "an Event" },
	{ "cond", 0, 0, 0, 0, 0, 0, create_cond, "a Condition with its own RLock" },
	{ "barrier", OPT_PARTIES, OPT_PARTIES, 0, 0, 0, 0, create_barrier,
	  "a Barrier for --parties N processes (1..1024)" },
	{ "block", OPT_SIZE, OPT_SIZE, 0, 0, 0, 1ULL << 40, create_block,
	  "a block of --size N bytes (1..2^40), all 0, with its own RLock\n"
	  "          (what Python's SharedMemory and RawArray are)" },
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static void create_usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: shmkit create KIND NAME [--init V] [--size N] [--bounded] "
		   "[--capacity N --max-size B [--writers N] [--joinable] [--simplex]] "
		   "[--parties N] [--mode OCTAL]\n"
		   "Create a named object, exclusively: an existing NAME is an error.\n\nKinds:\n");
	for (i = 0; i < N_KINDS; i++)
		fprintf(f, "  %-7s %s\n", kinds[i].kind, kinds[i].help);
	fprintf(f, "\nOptions:\n"
		   "  -i, --init V       initial value (value, sem)\n"
		   "  -s, --size N       cells (array), bytes (block)\n"
		   "  -b, --bounded      release beyond the initial value fails (sem)\n"
		   "  -c, --capacity N   messages it holds (queue, pipe: 1..1048576)\n"
		   "  -M, --max-size B   largest message in bytes (queue, pipe: 0..16777216)\n"
		   "  -w, --writers N    EOF once N writers attached and all left (queue)\n"
		   "  -J, --joinable     task_done/join (queue)\n"
		   "  -S, --simplex      one direction only (pipe)\n"
		   "  -p, --parties N    processes that meet (barrier: 1..1024)\n"
		   "  -m, --mode OCTAL   permission bits, applied exactly whatever the umask "
		   "(default 0600)\n"
		   "  -h, --help         this text\n"
		   "NAME is '/' then 1..%d of A-Z a-z 0-9 . _ -\n", SHMKIT_NAME_MAX);
}

static const char *option_name(unsigned opt)
{
	switch (opt) {
	case OPT_INIT:
		return "--init";
	case OPT_SIZE:
		return "--size";
	case OPT_BOUNDED:
		return "--bounded";
	case OPT_CAPACITY:
		return "--capacity";
	case OPT_MAX_SIZE:
		return "--max-size";
	case OPT_WRITERS:
		return "--writers";
	case OPT_JOINABLE:
		return "--joinable";
	case OPT_SIMPLEX:
		return "--simplex";
	default:
		return "--parties";
	}
}

int cmd_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "init", required_argument, NULL, 'i' }, { "size", required_argument, NULL, 's' },
		{ "bounded", no_argument, NULL, 'b' },     { "mode", required_argument, NULL, 'm' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "max-size", required_argument, NULL, 'M' },
		{ "writers", required_argument, NULL, 'w' },
		{ "joinable", no_argument, NULL, 'J' },
		{ "simplex", no_argument, NULL, 'S' },
		{ "parties", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
	};
	const struct kind_entry *k = NULL;
	struct create_args a = { 0 };
	const char *init_arg = NULL, *size_arg = NULL;
	char what[SHMKIT_NAME_MAX + 16];
	unsigned given = 0, opt_bit;
	int opt, err;
	size_t i;

	while ((opt = getopt_long(argc, argv, ":i:s:bm:c:M:w:JSp:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (!parse_u64(optarg, 1, 1u << 20, &a.capacity))
				return usage_error("create", "bad --capacity '%s': want 1..1048576",
						   optarg);
			given |= OPT_CAPACITY;
			break;
		case 'M':
			if (!parse_u64(optarg, 0, 1u << 24, &a.max_size))
				return usage_error("create", "bad --max-size '%s': want 0..16777216",
						   optarg);
			given |= OPT_MAX_SIZE;
			break;
		case 'w':
			if (!parse_u64(optarg, 0, 256, &a.writers))
				return usage_error("create", "bad --writers '%s': want 0..256", optarg);
			given |= OPT_WRITERS;
			break;
		case 'J':
			a.joinable = true;
			given |= OPT_JOINABLE;
			break;
		case 'S':
			a.simplex = true;
			given |= OPT_SIMPLEX;
			break;
		case 'p':
			if (!parse_u64(optarg, 1, 1024, &a.parties))
				return usage_error("create", "bad --parties '%s': want 1..1024", optarg);
			given |= OPT_PARTIES;
			break;
		case 'i':
			init_arg = optarg;
			given |= OPT_INIT;
			break;
		case 's':
			size_arg = optarg;
			given |= OPT_SIZE;
			break;
		case 'b':
			a.bounded = true;
			given |= OPT_BOUNDED;
			break;
		case 'm':
			if (!parse_mode(optarg, &a.mode))
				return usage_error("create", "bad --mode '%s': want octal 0..7777",
						   optarg);
			break;
		case 'h':
			create_usage(stdout);
			return 0;
		default:
			return bad_option("create", opt, argv);
		}
	}
	if (argc - optind < 2)
		return usage_error("create", argc == optind ? "missing KIND and NAME"
							    : "missing NAME");
	if (argc - optind > 2)
		return usage_error("create", "unexpected argument '%s'", argv[optind + 2]);
	for (i = 0; i < N_KINDS && !k; i++)
		if (!strcmp(argv[optind], kinds[i].kind))
			k = &kinds[i];
	if (!k)
		return usage_error("create", "unknown kind '%s': want value, array, lock, rlock, "
					     "sem, queue, pipe, event, cond, barrier or block",
				     argv[optind]);
	a.name = argv[optind + 1];
	if ((err = check_name("create", a.name)))
		return err;
	for (opt_bit = OPT_INIT; opt_bit <= OPT_LAST; opt_bit <<= 1) {
		if ((given & opt_bit) && !(k->opts & opt_bit))
			return usage_error("create", "%s does not apply to kind %s",
					   option_name(opt_bit), k->kind);
		if ((k->needs & opt_bit) && !(given & opt_bit))
			return usage_error("create", "kind %s needs %s", k->kind,
					   option_name(opt_bit));
	}
	a.init = k->init_default;
	if (init_arg && (!parse_i64(init_arg, &a.init) || a.init < k->init_min ||
			 a.init > k->init_max))
		return usage_error("create", "bad --init '%s': want %lld..%lld", init_arg,
				   (long long)k->init_min, (long long)k->init_max);
	if (size_arg && !parse_u64(size_arg, 1, k->size_max, &a.size))
		return usage_error("create", "bad --size '%s': want 1..%llu", size_arg,
				   (unsigned long long)k->size_max);

	if ((err = k->create(&a)) < 0) {
		snprintf(what, sizeof(what), "create %s", a.name);
		return runtime_error(what, err);
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* rm                                                                                          */

int cmd_rm(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char what[SHMKIT_NAME_MAX + 16];
	int opt, err, i, rc = 0;

	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt != 'h')
			return bad_option("rm", opt, argv);
		printf("Usage: shmkit rm NAME...\n"
		       "Remove named shmkit objects of any kind, with what they own (a semaphore's\n"
		       "sem.NAME.sem). Anything that is not a shmkit object is left alone.\n"
		       "Exit status 1 when any NAME could not be removed.\n");
		return 0;
	}
	if (optind == argc)
		return usage_error("rm", "missing NAME");
	/* All names are checked before anything is removed. */
	for (i = optind; i < argc; i++)
		if ((err = check_name("rm", argv[i])))
			return err;
	for (i = optind; i < argc; i++) {
		if ((err = shmkit_remove(argv[i])) < 0) {
			snprintf(what, sizeof(what), "rm %s", argv[i]);
			rc = runtime_error(what, err);
		}
	}
	return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Describing one object: a list of fields printed as text (stat) or JSON (stat, ls).          */

enum field_type { F_INT, F_STR, F_BOOL };

struct field {
	char key[32];   /* JSON key */
	char label[32]; /* text label */
	enum field_type type;
	int64_t i;      /* F_INT, F_BOOL */
	char s[80];     /* F_STR; for F_INT, the text form when it is not just the number */
};

#define MAX_FIELDS 48

struct fields {
	size_t n;
	struct field f[MAX_FIELDS];
};

static struct field *add(struct fields *fs, const char *key, const char *label,
			 enum field_type type)
{
	static struct field spare;
	struct field *f = fs->n < MAX_FIELDS ? &fs->f[fs->n++] : &spare;

	memset(f, 0, sizeof(*f));
	snprintf(f->key, sizeof(f->key), "%s", key);
	snprintf(f->label, sizeof(f->label), "%s", label);
	f->type = type;
	return f;
}

static void add_int(struct fields *fs, const char *key, const char *label, int64_t v)
{
	add(fs, key, label, F_INT)->i = v;
}

static void add_bool(struct fields *fs, const char *key, const char *label, bool v)
{
	add(fs, key, label, F_BOOL)->i = v;
}

static void add_str(struct fields *fs, const char *key, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add_str(struct fields *fs, const char *key, const char *label, const char *fmt, ...)
{
	struct field *f = add(fs, key, label, F_STR);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->s, sizeof(f->s), fmt, ap);
	va_end(ap);
}

/* A pid that is 0 when nobody: the number in JSON, "free" or "pid N" as text. */
static void add_pid(struct fields *fs, const char *key, const char *label, pid_t pid)
{
	struct field *f = add(fs, key, label, F_INT);

	f->i = pid;
	if (pid)
		snprintf(f->s, sizeof(f->s), "pid %d", (int)pid);
	else
		snprintf(f->s, sizeof(f->s), "free");
}

static void owner_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw && pw->pw_name)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned)uid);
}

static void lock_fields(const struct shmkit_info *in, struct fields *fs)
{
	add_pid(fs, "holder", "lock holder", in->holder);
	add_int(fs, "owner_deaths", "owner deaths", (int64_t)in->owner_deaths);
}

static void queue_fields(const struct shmkit_queue_stats *q, const char *p, struct fields *fs)
{
	char key[32], label[32];

#define QF(field, what)                                                                       \
	do {                                                                                  \
		snprintf(key, sizeof(key), "%s%s", p, #field);                                \
		snprintf(label, sizeof(label), "%s%s", p, what);                              \
		add_int(fs, key, label, (int64_t)q->field);                                   \
	} while (0)
	QF(depth, "depth");
	QF(capacity, "capacity");
	QF(max_size, "max message");
	QF(writers_expected, "writers expected");
	QF(writers_attached, "writers attached");
	QF(writers_total, "writers total");
	QF(producers_waiting, "producers waiting");
	QF(consumers_waiting, "consumers waiting");
	QF(participants, "participants");
	QF(eof, "eof");
	QF(put_total, "put total");
	QF(get_total, "get total");
	QF(unfinished, "unfinished");
	QF(slots_reclaimed, "slots reclaimed");
	QF(lost_dead_consumer, "lost to dead consumers");
	QF(participants_reaped, "participants reaped");
#undef QF
}

/* The kind's own fields: one case per kind. */
static void kind_fields(const struct shmkit_info *in, struct fields *fs)
{
	switch (in->kind) {
	case SHMKIT_KIND_VALUE:
		add_int(fs, "value", "value", in->value);
		lock_fields(in, fs);
		break;
	case SHMKIT_KIND_ARRAY:
		add_int(fs, "len", "cells", (int64_t)in->len);
		lock_fields(in, fs);
		break;
	case SHMKIT_KIND_LOCK:
		add_bool(fs, "recursive", "recursive", in->flags & SHMKIT_RECURSIVE);
		lock_fields(in, fs);
		break;
	case SHMKIT_KIND_SEM:
		add_int(fs, "value", "count", in->value);
		add_bool(fs, "bounded", "bounded", in->flags & SHMKIT_BOUNDED);
		break;
	case SHMKIT_KIND_QUEUE:
		add_bool(fs, "joinable", "joinable", in->flags & SHMKIT_JOINABLE);
		queue_fields(&in->queue, "", fs);
		break;
	case SHMKIT_KIND_PIPE:
		add_bool(fs, "simplex", "simplex", in->flags & SHMKIT_SIMPLEX);
		add_pid(fs, "end0", "end 0", in->ends[0]);
		add_pid(fs, "end1", "end 1", in->ends[1]);
		queue_fields(&in->queue, "0to1_", fs);
		if (!(in->flags & SHMKIT_SIMPLEX))
			queue_fields(&in->queue2, "1to0_", fs);
		break;
	case SHMKIT_KIND_EVENT:
		add_bool(fs, "set", "set", in->value != 0);
		break;
	case SHMKIT_KIND_COND:
		lock_fields(in, fs);
		break;
	case SHMKIT_KIND_BARRIER:
		add_int(fs, "parties", "parties", (int64_t)in->len);
		add_int(fs, "waiting", "waiting", in->value);
		break;
	case SHMKIT_KIND_BLOCK:
		add_int(fs, "len", "data bytes", (int64_t)in->len);
		lock_fields(in, fs);
		break;
	default:
		break;
	}
}

static void all_fields(const char *name, const struct shmkit_info *in, struct fields *fs)
{
	char owner[64];

	fs->n = 0;
	owner_name(in->uid, owner, sizeof(owner));
	add_str(fs, "name", "name", "%s", name);
	add_str(fs, "kind", "kind", "%s", shmkit_kind_name(in->kind));
	add_int(fs, "size", "size", (int64_t)in->size);
	add_str(fs, "mode", "mode", "%04o", in->mode);
	add_str(fs, "owner", "owner", "%s", owner);
	add_int(fs, "uid", "uid", (int64_t)in->uid);
	add_int(fs, "creator", "creator pid", in->creator);
	kind_fields(in, fs);
}

static void print_text(const struct fields *fs)
{
	size_t i;

	for (i = 0; i < fs->n; i++) {
		const struct field *f = &fs->f[i];
		char label[40];

		snprintf(label, sizeof(label), "%s:", f->label);
		printf("%-24s ", label);
		if (f->type == F_BOOL)
			printf("%s\n", f->i ? "yes" : "no");
		else if (f->type == F_STR || f->s[0])
			printf("%s\n", f->s);
		else
			printf("%lld\n", (long long)f->i);
	}
}

static void print_json(const struct fields *fs)
{
	size_t i;

	printf("{");
	for (i = 0; i < fs->n; i++) {
		const struct field *f = &fs->f[i];

		if (i)
			printf(",");
		json_string(stdout, f->key);
		printf(":");
		if (f->type == F_BOOL)
			printf("%s", f->i ? "true" : "false");
		else if (f->type == F_STR)
			json_string(stdout, f->s);
		else
			printf("%lld", (long long)f->i);
	}
	printf("}");
}

/* One short line of state for ls: one case per kind. */
static void summary(const struct shmkit_info *in, char *buf, size_t size)
{
	char held[32] = "";

	if (in->holder)
		snprintf(held, sizeof(held), " held by %d", (int)in->holder);
	switch (in->kind) {
	case SHMKIT_KIND_VALUE:
		snprintf(buf, size, "value=%lld%s", (long long)in->value, held);
		break;
	case SHMKIT_KIND_ARRAY:
		snprintf(buf, size, "len=%llu%s", (unsigned long long)in->len, held);
		break;
	case SHMKIT_KIND_LOCK:
		snprintf(buf, size, "%s%s%s", in->holder ? held + 1 : "free",
			 in->flags & SHMKIT_RECURSIVE ? " recursive" : "",
			 in->owner_deaths ? " (a holder died)" : "");
		break;
	case SHMKIT_KIND_SEM:
		snprintf(buf, size, "count=%lld%s", (long long)in->value,
			 in->flags & SHMKIT_BOUNDED ? " bounded" : "");
		break;
	case SHMKIT_KIND_QUEUE:
		snprintf(buf, size, "depth=%u/%u%s", in->queue.depth, in->queue.capacity,
			 in->queue.eof ? " eof" : "");
		break;
	case SHMKIT_KIND_PIPE:
		snprintf(buf, size, "ends=%d,%d", (int)in->ends[0], (int)in->ends[1]);
		break;
	case SHMKIT_KIND_EVENT:
		snprintf(buf, size, "%s", in->value ? "set" : "clear");
		break;
	case SHMKIT_KIND_COND:
		snprintf(buf, size, "%s", in->holder ? held + 1 : "free");
		break;
	case SHMKIT_KIND_BARRIER:
		snprintf(buf, size, "waiting=%lld/%llu", (long long)in->value,
			 (unsigned long long)in->len);
		break;
	case SHMKIT_KIND_BLOCK:
		snprintf(buf, size, "bytes=%llu%s", (unsigned long long)in->len, held);
		break;
	default:
		snprintf(buf, size, "-");
		break;
	}
}

/* ------------------------------------------------------------------------------------------- */
/* stat                                                                                        */

int cmd_stat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char what[SHMKIT_NAME_MAX + 16];
	struct shmkit_info info;
	struct fields *fs;
	bool json = false;
	int opt, err;

	while ((opt = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("Usage: shmkit stat NAME [--json]\n"
			       "Show a named object's kind, owner, mode and state (value, lock "
			       "holder,\nowner deaths, semaphore count, ...) without changing it.\n\n"
			       "Options:\n"
			       "  -j, --json    print one JSON object\n"
			       "  -h, --help    this text\n");
			return 0;
		default:
			return bad_option("stat", opt, argv);
		}
	}
	if (optind == argc)
		return usage_error("stat", "missing NAME");
	if (argc - optind > 1)
		return usage_error("stat", "unexpected argument '%s'", argv[optind + 1]);
	if ((err = check_name("stat", argv[optind])))
		return err;
	snprintf(what, sizeof(what), "stat %s", argv[optind]);
	if ((err = shmkit_info(argv[optind], &info)) < 0)
		return runtime_error(what, err);
	if (!(fs = malloc(sizeof(*fs))))
		return runtime_error(what, -ENOMEM);
	all_fields(argv[optind], &info, fs);
	if (json) {
		print_json(fs);
		printf("\n");
	} else {
		print_text(fs);
	}
	free(fs);
	return fflush(stdout) == 0 ? 0 : runtime_error("stat", -errno);
}

/* ------------------------------------------------------------------------------------------- */
/* ls                                                                                          */

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in SHM_DIR that could be shmkit objects, "/"-prefixed and sorted. */
static int list_names(char ***out, size_t *count)
{
	char **names = NULL, **grown, name[SHMKIT_NAME_MAX + 2];
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir;

	if (!(dir = opendir(SHM_DIR)))
		return -errno;
	while ((d = readdir(dir))) {
		if (strlen(d->d_name) > SHMKIT_NAME_MAX)
			continue;
		snprintf(name, sizeof(name), "/%s", d->d_name);
		if (shmkit_name_check(name)) /* also drops sem.*: semaphores belong to regions */
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if (!(grown = realloc(names, cap * sizeof(*names))))
				goto nomem;
			names = grown;
		}
		if (!(names[n] = strdup(name)))
			goto nomem;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(names, n, sizeof(*names), compare_names);
	*out = names;
	*count = n;
	return 0;
nomem:
	closedir(dir);
	while (n)
		free(names[--n]);
	free(names);
	return -ENOMEM;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct shmkit_info *infos = NULL;
	struct fields *fs = NULL;
	char **names = NULL, owner[64], state[128];
	size_t n = 0, i, shown = 0, width = 4;
	bool json = false;
	int opt, err, rc = 0;

	while ((opt = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("Usage: shmkit ls [--json]\n"
			       "List the shmkit objects in " SHM_DIR " that this user can read, with "
			       "their\nkind, size, mode, owner and state. Other files are skipped.\n\n"
			       "Options:\n"
			       "  -j, --json    print a JSON array of objects (as stat --json)\n"
			       "  -h, --help    this text\n");
			return 0;
		default:
			return bad_option("ls", opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("ls", "unexpected argument '%s'", argv[optind]);
	if ((err = list_names(&names, &n)) < 0)
		return runtime_error("ls " SHM_DIR, err);
	if ((n && !(infos = calloc(n, sizeof(*infos)))) || !(fs = malloc(sizeof(*fs)))) {
		rc = runtime_error("ls", -ENOMEM);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (shmkit_info(names[i], &infos[i]) < 0) {
			infos[i].kind = 0; /* not ours, or unreadable, or gone: skipped */
			continue;
		}
		if (strlen(names[i]) > width)
			width = strlen(names[i]);
	}
	if (json)
		printf("[");
	else
		printf("%-*s %-7s %8s %-5s %-10s %s\n", (int)width, "NAME", "KIND", "SIZE", "MODE",
		       "OWNER", "STATE");
	for (i = 0; i < n; i++) {
		const struct shmkit_info *in = &infos[i];

		if (!in->kind)
			continue;
		if (json) {
			if (shown)
				printf(",");
			all_fields(names[i], in, fs);
			print_json(fs);
		} else {
			owner_name(in->uid, owner, sizeof(owner));
			summary(in, state, sizeof(state));
			printf("%-*s %-7s %8llu %04o  %-10s %s\n", (int)width, names[i],
			       shmkit_kind_name(in->kind), (unsigned long long)in->size, in->mode,
			       owner, state);
		}
		shown++;
	}
	if (json)
		printf("]\n");
	if (fflush(stdout) != 0)
		rc = runtime_error("ls", -errno);
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(infos);
	free(fs);
	return rc;
}
