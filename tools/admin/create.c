/*
 * `shmkit create KIND NAME`: each kind through one kinds[] entry (its options, their ranges
 * and its create call).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "admin/describe.h"
#include "util.h"

#ifndef SEM_VALUE_MAX
#define SEM_VALUE_MAX INT_MAX
#endif
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
	OPT_SLOT_SIZE = 0x200,
	OPT_LAST = OPT_SLOT_SIZE,
};

struct create_args {
	const char *name;
	int64_t init;  /* --init, or the kind's default */
	uint64_t size; /* --size */
	bool bounded;  /* --bounded */
	unsigned mode; /* --mode; 0 means 0600 */
	uint64_t capacity, max_size, writers, parties, slot_size;
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
		.mode = a->mode, .slot_size = (uint32_t)a->slot_size,
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
	{ "array", OPT_SIZE, OPT_SIZE, 0, 0, 0, SHMKIT_ARRAY_LEN_MAX, create_array,
	  "an Array of --size N int64 cells (1..16777216), all 0" },
	{ "lock", 0, 0, 0, 0, 0, 0, create_lock, "a Lock" },
	{ "rlock", 0, 0, 0, 0, 0, 0, create_rlock, "an RLock (recursive Lock)" },
	{ "sem", OPT_INIT | OPT_BOUNDED, 0, 1, 0, SEM_VALUE_MAX, 0, create_sem,
	  "a Semaphore (--init V, default 1; --bounded: a BoundedSemaphore)" },
	{ "queue", OPT_CAPACITY | OPT_MAX_SIZE | OPT_WRITERS | OPT_JOINABLE | OPT_SLOT_SIZE,
	  OPT_CAPACITY | OPT_MAX_SIZE, 0, 0, 0, 0, create_queue,
	  "a Queue of --capacity N slots for messages of up to --max-size B bytes\n"
	  "          (--slot-size B; --writers N: EOF after N writers came and went;\n"
	  "          --joinable: a JoinableQueue)" },
	{ "pipe", OPT_CAPACITY | OPT_MAX_SIZE | OPT_SIMPLEX, OPT_CAPACITY | OPT_MAX_SIZE, 0, 0, 0,
	  0, create_pipe, "a Pipe, --capacity slots each way for messages of up to --max-size\n"
	  "          bytes (--simplex)" },
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
		   "[--capacity N --max-size B [--slot-size B] [--writers N] [--joinable] "
		   "[--simplex]] "
		   "[--parties N] [--mode OCTAL]\n"
		   "Create a named object, exclusively: an existing NAME is an error.\n\nKinds:\n");
	for (i = 0; i < N_KINDS; i++)
		fprintf(f, "  %-7s %s\n", kinds[i].kind, kinds[i].help);
	fprintf(f, "\nOptions:\n"
		   "  -i, --init V       initial value (value, sem)\n"
		   "  -s, --size N       cells (array), bytes (block)\n"
		   "  -b, --bounded      release beyond the initial value fails (sem)\n"
		   "  -c, --capacity N   slots it holds (queue, pipe: 1..1048576); a message takes\n"
		   "                     one, or several when longer than a slot\n"
		   "  -M, --max-size B   largest message in bytes, K/M/G suffixes (queue, pipe:\n"
		   "                     1..2G-1; 0: 1G); larger than all the slots is fine\n"
		   "  -Z, --slot-size B  bytes in a slot (queue: 1..16M, at most --max-size; default\n"
		   "                     --max-size up to 4096, else 4096; a pipe's are that)\n"
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
	case OPT_SLOT_SIZE:
		return "--slot-size";
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
		{ "slot-size", required_argument, NULL, 'Z' },
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

	while ((opt = getopt_long(argc, argv, ":i:s:bm:c:M:Z:w:JSp:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (!parse_u64(optarg, 1, SHMKIT_QUEUE_CAPACITY_MAX, &a.capacity))
				return usage_error("create", "bad --capacity '%s': want 1..1048576",
						   optarg);
			given |= OPT_CAPACITY;
			break;
		case 'M':
			if (!parse_size(optarg, 0, SHMKIT_MESSAGE_MAX, &a.max_size))
				return usage_error("create", "bad --max-size '%s': want 0..%u (K, M, "
						   "G suffixes)", optarg, SHMKIT_MESSAGE_MAX);
			given |= OPT_MAX_SIZE;
			break;
		case 'Z':
			if (!parse_size(optarg, 1, SHMKIT_SLOT_MAX, &a.slot_size))
				return usage_error("create", "bad --slot-size '%s': want 1..%u (K, M "
						   "suffixes)", optarg, SHMKIT_SLOT_MAX);
			given |= OPT_SLOT_SIZE;
			break;
		case 'w':
			if (!parse_u64(optarg, 0, SHMKIT_QUEUE_WRITERS_MAX, &a.writers))
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
			if (!parse_u64(optarg, 1, SHMKIT_BARRIER_PARTIES_MAX, &a.parties))
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
			if (a.mode & 07000)
				return usage_error("create", "bad --mode '%s': set-user-ID, "
						   "set-group-ID and sticky bits mean nothing on "
						   "shared memory: want permission bits 0..0777",
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
	if (a.mode & 022)
		fprintf(stderr, "shmkit: warning: %s: mode %04o lets other users write it; shmkit "
				"run by any other user will refuse to open it (it could be rewritten "
				"under them). Use 0644 to share it read-only, or share one user id.\n",
			a.name, a.mode);
	return 0;
}

