/*
 * `shmkit value get|set|add|cas NAME ...` and `shmkit array get|set|add|cas NAME INDEX ...`:
 * shared counters from the shell. add is one atomic read-modify-write unless --racy (a load and
 * a store, which loses updates when processes race: the lessons' counter) or --locked (under
 * the object's own Lock, as `with v.get_lock():`).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "verbs/verbs.h"

/* One cell: a Value, or one element of an Array. */
struct cell {
	const char *cmd, *name;
	shmkit_value *v;
	shmkit_array *a;
	size_t i;
};

static int cell_load(struct cell *c, int64_t *x)
{
	if (c->v) {
		*x = shmkit_value_load(c->v);
		return 0;
	}
	return shmkit_array_load(c->a, c->i, x);
}

static int cell_store(struct cell *c, int64_t x)
{
	if (c->v) {
		shmkit_value_store(c->v, x);
		return 0;
	}
	return shmkit_array_store(c->a, c->i, x);
}

static int cell_add(struct cell *c, int64_t d, enum shmkit_add_mode how, int64_t *res)
{
	return c->v ? shmkit_value_add(c->v, d, how, res) : shmkit_array_add(c->a, c->i, d, how, res);
}

static int cell_cas(struct cell *c, int64_t *expected, int64_t desired)
{
	return c->v ? shmkit_value_cas(c->v, expected, desired)
		    : shmkit_array_cas(c->a, c->i, expected, desired);
}

enum cell_op { OP_GET, OP_SET, OP_ADD, OP_CAS };

static void usage(FILE *f, bool array, enum cell_op op)
{
	const char *kind = array ? "array" : "value", *idx = array ? " INDEX" : "";
	const char *what = array ? "element INDEX of the Array NAME" : "the Value NAME";

	switch (op) {
	case OP_GET:
		fprintf(f, "Usage: shmkit %s get NAME%s [--json]\n"
			   "Print %s, the number alone.\n", kind, array ? " [INDEX]" : "", what);
		if (array)
			fprintf(f, "Without INDEX, every element, one a line.\n");
		fprintf(f, "  -j, --json   as {\"value\": X}%s\n", array ? " or {\"values\": [...]}" : "");
		break;
	case OP_SET:
		fprintf(f, "Usage: shmkit %s set NAME%s X\nStore X in %s.\n", kind, idx, what);
		break;
	case OP_ADD:
		fprintf(f, "Usage: shmkit %s add NAME%s DELTA [--racy | --locked] [--repeat N] "
			   "[--json]\n"
			   "Add DELTA to %s and print the value it then held. DELTA may be\n"
			   "negative.\n"
			   "  -r, --racy       a separate load and store: updates get lost when\n"
			   "                   processes race (the lesson's 'value += 1')\n"
			   "  -l, --locked     load and store under the object's own Lock\n"
			   "                   (default: one atomic add, never loses an update)\n"
			   "  -n, --repeat N   add N times (default 1), to race other processes\n"
			   "  -j, --json       as {\"value\": X}\n",
			kind, idx, what);
		break;
	case OP_CAS:
		fprintf(f, "Usage: shmkit %s cas NAME%s EXPECTED DESIRED [--json]\n"
			   "If %s holds EXPECTED, store DESIRED, atomically. Prints the\n"
			   "value it holds afterwards; exits 0 when it was swapped, 1 when not.\n"
			   "  -j, --json   as {\"swapped\": true|false, \"value\": X}\n",
			kind, idx, what);
		break;
	}
}

static int parse_number(const char *cmd, const char *what, const char *s, int64_t *x)
{
	if (!parse_i64(s, x))
		return usage_error(cmd, "bad %s '%s': want a whole number", what, s);
	return 0;
}

static int cell_verb(const char *cmd, int argc, char **argv, bool array, enum cell_op op)
{
	static const struct option opts[] = {
		{ "racy", no_argument, NULL, 'r' },
		{ "locked", no_argument, NULL, 'l' },
		{ "repeat", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const value_pos[4][3] = {
		{ "NAME" }, { "NAME", "X" }, { "NAME", "DELTA" }, { "NAME", "EXPECTED", "DESIRED" },
	};
	static const char *const array_pos[4][4] = {
		{ "NAME", "INDEX" }, { "NAME", "INDEX", "X" }, { "NAME", "INDEX", "DELTA" },
		{ "NAME", "INDEX", "EXPECTED", "DESIRED" },
	};
	static const int npos[4] = { 1, 2, 2, 3 };
	enum shmkit_add_mode how = SHMKIT_ADD_ATOMIC;
	struct cell cell = { .cmd = cmd };
	const char *const *names = array ? array_pos[op] : value_pos[op];
	int want = npos[op] + array, min = want - (array && op == OP_GET);
	int64_t nums[3] = { 0 }, x = 0;
	uint64_t repeat = 1, index = 0, r;
	bool json = false, all = false;
	struct verb_parser p;
	int c, rc, k, died = 0;

	verb_parser_init(&p, cmd, argc, argv, op == OP_ADD ? "+:rln:jh" : op == OP_SET ? "+:h" : "+:jh",
			 opts, names, min, want, false);
	while ((c = verb_getopt(&p)) != -1) {
		switch (c) {
		case 'r':
			how = SHMKIT_ADD_RACY;
			break;
		case 'l':
			how = SHMKIT_ADD_LOCKED;
			break;
		case 'n':
			if (!parse_u64(optarg, 1, UINT64_MAX, &repeat))
				return usage_error(cmd, "bad --repeat '%s': want 1 or more", optarg);
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout, array, op);
			return 0;
		default:
			return bad_option(cmd, c, argv);
		}
	}
	if ((rc = verb_parser_finish(&p)) || (rc = verb_check_name(cmd, p.pos[0])))
		return rc;
	cell.name = p.pos[0];
	k = 1;
	if (array) {
		if (p.npos > 1 && !parse_u64(p.pos[1], 0, SIZE_MAX, &index))
			return usage_error(cmd, "bad INDEX '%s': want 0 or more", p.pos[1]);
		all = p.npos == 1;
		k = 2;
	}
	for (; k < p.npos; k++)
		if ((rc = parse_number(cmd, names[k], p.pos[k], &nums[k - 1 - array])))
			return rc;
	cell.i = (size_t)index;
	rc = array ? shmkit_array_open(cell.name, &cell.a) : shmkit_value_open(cell.name, &cell.v);
	if (rc)
		return verb_open_failed(cmd, cell.name, array ? "array" : "value", rc);
	if (array && !all && index >= shmkit_array_len(cell.a)) {
		rc = verb_fail(cmd, cell.name, "INDEX %llu is past the end (the array has %zu cells)",
			       (unsigned long long)index, shmkit_array_len(cell.a));
		goto out;
	}
	switch (op) {
	case OP_GET:
		if (all) {
			size_t n = shmkit_array_len(cell.a);
			if (json)
				fputs("{\"values\": [", stdout);
			for (cell.i = 0; cell.i < n && (rc = cell_load(&cell, &x)) == 0; cell.i++)
				printf(json ? "%s%lld" : "%s%lld\n", json && cell.i ? ", " : "",
				       (long long)x);
			if (json)
				fputs("]}\n", stdout);
		} else if ((rc = cell_load(&cell, &x)) == 0) {
			printf(json ? "{\"value\": %lld}\n" : "%lld\n", (long long)x);
		}
		break;
	case OP_SET:
		rc = cell_store(&cell, nums[0]);
		break;
	case OP_ADD:
		for (r = 0; r < repeat; r++) {
			rc = cell_add(&cell, nums[0], how, &x);
			if (rc == SHMKIT_OWNER_DIED)
				died++;
			else if (rc < 0)
				break;
			rc = 0;
		}
		if (died)
			verb_fail(cmd, cell.name, "a previous holder of the lock died holding it: the "
				  "value may have lost its update");
		if (rc == 0)
			printf(json ? "{\"value\": %lld}\n" : "%lld\n", (long long)x);
		break;
	case OP_CAS:
		x = nums[0];
		rc = cell_cas(&cell, &x, nums[1]);
		if (rc == 0 || rc == -EAGAIN) {
			int64_t now = rc == 0 ? nums[1] : x;
			if (json)
				printf("{\"swapped\": %s, \"value\": %lld}\n", rc ? "false" : "true",
				       (long long)now);
			else
				printf("%lld\n", (long long)now);
			rc = rc ? 1 : 0;
			goto out;
		}
		break;
	}
	if (rc < 0)
		rc = verb_error(cmd, cell.name, rc);
out:
	if (array)
		shmkit_array_close(cell.a);
	else
		shmkit_value_close(cell.v);
	return rc;
}

/* One entry point per verb. */
#define CELL_VERB(kind, op, isarray)                                              \
	static int kind##_##op(const char *cmd, int argc, char **argv)            \
	{                                                                         \
		return cell_verb(cmd, argc, argv, isarray, OP_##op);              \
	}
CELL_VERB(value, GET, false)
CELL_VERB(value, SET, false)
CELL_VERB(value, ADD, false)
CELL_VERB(value, CAS, false)
CELL_VERB(array, GET, true)
CELL_VERB(array, SET, true)
CELL_VERB(array, ADD, true)
CELL_VERB(array, CAS, true)

static const struct verb value_verbs[] = {
	{ "get", value_GET, "print the value" },
	{ "set", value_SET, "store a value" },
	{ "add", value_ADD, "add (atomic; --racy or --locked for the lesson); print the result" },
	{ "cas", value_CAS, "compare and swap; exit 0 when swapped" },
	{ NULL, NULL, NULL },
};

static const struct verb array_verbs[] = {
	{ "get", array_GET, "print one element, or all of them" },
	{ "set", array_SET, "store an element" },
	{ "add", array_ADD, "add to an element (atomic; --racy or --locked); print the result" },
	{ "cas", array_CAS, "compare and swap an element; exit 0 when swapped" },
	{ NULL, NULL, NULL },
};

int cmd_value(int argc, char **argv)
{
	return verbs_dispatch(argv[0], "A Value, a shared 64-bit integer (create one with 'shmkit "
			      "create value NAME --init X'), from the shell.", value_verbs, argc,
			      argv);
}

int cmd_array(int argc, char **argv)
{
	return verbs_dispatch(argv[0], "An Array of shared 64-bit integers (create one with 'shmkit "
			      "create array NAME --size N'), from the shell.", array_verbs, argc,
			      argv);
}
