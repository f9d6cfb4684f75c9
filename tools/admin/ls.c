/*
 * `shmkit ls`: the objects in /dev/shm, in the manner of util-linux lsipc.
 *
 * Columns are chosen with -o (lsipc's grammar: a list replaces the defaults, "+LIST" adds to
 * them); output is an aligned table, --raw (one space between columns, nothing padded) or JSON.
 * What is left behind by a crash or a mistake is listed, not hidden: non-regular files, empty
 * files, regions whose creator died while making them, semaphore files whose region is gone.
 *
 * Nothing here may block on what it finds: every file is lstat'ed before anything opens it,
 * and only regular files reach shmkit_info(), which maps them read-only.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/describe.h"
#include "util.h"

enum col {
	C_NAME, C_KIND, C_SIZE, C_OWNER, C_UID, C_PERMS, C_CREATOR, C_ATTACHED, C_PIDS, C_STATE,
	C_VALUE, C_HOLDER, C_DEPTH, C_CAPACITY, C_SLOT, C_MAXMSG, C_WRITERS, C_WAITING, C_EOF,
	C_DEATHS, N_COLS
};

static const struct column {
	const char *name;
	bool right; /* numbers are right-aligned in the table */
	const char *help;
} columns[N_COLS] = {
	[C_NAME] = { "NAME", false, "object name" },
	[C_KIND] = { "KIND", false, "value, array, lock, sem, queue, pipe, event, cond, barrier; "
				    "fifo, dir, ... for leftovers" },
	[C_SIZE] = { "SIZE", true, "bytes mapped (--bytes: exact)" },
	[C_OWNER] = { "OWNER", false, "owner's user name" },
	[C_UID] = { "UID", true, "owner's user id" },
	[C_PERMS] = { "PERMS", false, "permission bits, octal" },
	[C_CREATOR] = { "CREATOR", true, "pid that created it" },
	[C_ATTACHED] = { "ATTACHED", true, "processes mapping it now (that this user can see)" },
	[C_PIDS] = { "PIDS", false, "those processes' pids" },
	[C_STATE] = { "STATE", false, "the state that matters for its kind, or what a leftover is" },
	[C_VALUE] = { "VALUE", true, "value: its value; sem: its count; event: 1 if set" },
	[C_HOLDER] = { "HOLDER", true, "lock, value, array, cond: pid holding the lock, 0 free" },
	[C_DEPTH] = { "DEPTH", true, "queue, pipe: slots in use (messages up to a slot long)" },
	[C_CAPACITY] = { "CAPACITY", true, "queue, pipe: slots it holds; barrier: parties" },
	[C_SLOT] = { "SLOT", true, "queue, pipe: bytes in a slot" },
	[C_MAXMSG] = { "MAXMSG", true, "queue, pipe: the largest message in bytes" },
	[C_WRITERS] = { "WRITERS", true, "queue: writers attached now" },
	[C_WAITING] = { "WAITING", true, "queue, pipe: producers and consumers blocked; "
					 "barrier: parties waiting" },
	[C_EOF] = { "EOF", true, "queue, pipe: 1 once closed for writing" },
	[C_DEATHS] = { "DEATHS", true, "lock: holders that died holding it; queue: dead "
				       "participants reaped" },
};

static const enum col default_cols[] = { C_NAME, C_KIND,     C_SIZE, C_PERMS,
					 C_OWNER, C_ATTACHED, C_STATE };

#define MAX_PIDS 16

/* What one name in /dev/shm is. */
enum what { OBJECT, LEFTOVER, FOREIGN };

struct entry {
	char name[NAME_MAX + 2]; /* "/" + the file name */
	enum what what;
	const char *kind;     /* kind name, or the kind of leftover */
	struct stat st;       /* lstat of the file */
	struct shmkit_info info; /* OBJECT only */
	char state[640];
	size_t attached;
	pid_t pids[MAX_PIDS];
};

struct opts {
	enum col cols[N_COLS * 2];
	size_t ncols;
	bool headings, raw, json, bytes, all, custom_cols;
};

/* ------------------------------------------------------------------------------------------- */
/* Finding and classifying                                                                     */

static const char *file_type(mode_t m)
{
	if (S_ISFIFO(m))
		return "fifo";
	if (S_ISDIR(m))
		return "dir";
	if (S_ISLNK(m))
		return "symlink";
	if (S_ISSOCK(m))
		return "socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "device";
	return "file";
}

/* "sem.NAME.sem" whose region "/NAME" is gone: a semaphore file shmkit left behind. */
static bool orphan_sem(int dirfd, const char *file, char *region, size_t size)
{
	size_t len = strlen(file);
	struct stat st;

	if (len <= 8 || strncmp(file, "sem.", 4) || strcmp(file + len - 4, ".sem"))
		return false;
	snprintf(region, size, "/%.*s", (int)(len - 8), file + 4);
	if (shmkit_name_check(region))
		return false; /* not a name shmkit would have made */
	return fstatat(dirfd, region + 1, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
}

/* ".shmkit-fd-DEV-INO-SEAT": the socket a handle's pollable descriptor listens on (lib/notify.c).
 * Whether a live handle still listens there (a datagram socket refuses a connect only when
 * nobody is bound). */
static bool fd_socket_live(const char *file)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s, rc;

	if ((size_t)snprintf(a.sun_path, sizeof(a.sun_path), SHM_DIR "/%s", file) >=
	    sizeof(a.sun_path))
		return false;
	if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return true;
	rc = connect(s, (struct sockaddr *)&a, sizeof(a));
	close(s);
	return rc == 0 || errno != ECONNREFUSED;
}

/* Fill e for the file `file` in SHM_DIR; false when it is none of ls's business. */
/* Whether a regular file's first 8 bytes (where a region's magic goes last) are zero. */
static bool zero_magic(int dirfd, const char *file)
{
	uint64_t magic = 1;
	int fd = openat(dirfd, file, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (pread(fd, &magic, sizeof(magic), 0) != (ssize_t)sizeof(magic))
		magic = 1;
	close(fd);
	return magic == 0;
}

static bool classify(int dirfd, const char *file, struct entry *e)
{
	char region[NAME_MAX + 2];
	int err;

	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "/%s", file);
	if (fstatat(dirfd, file, &e->st, AT_SYMLINK_NOFOLLOW) < 0)
		return false; /* gone since readdir */
	if (!strncmp(file, ".shmkit-fd-", 11) && S_ISSOCK(e->st.st_mode)) {
		if (fd_socket_live(file))
			return false; /* a live handle's: part of its object */
		e->what = LEFTOVER;
		e->kind = "socket";
		snprintf(e->state, sizeof(e->state), "pollable descriptor of a killed handle (rm "
			 SHM_DIR "/%s)", file);
		return true;
	}
	if (!strncmp(file, "sem.", 4)) {
		if (!orphan_sem(dirfd, file, region, sizeof(region)))
			return false; /* belongs to a live region, or is not shmkit's */
		e->what = LEFTOVER;
		e->kind = "sem";
		snprintf(e->state, sizeof(e->state), "orphan semaphore: no region %s (rm "
			 SHM_DIR "/%s)", region, file);
		return true;
	}
	if (strlen(file) > SHMKIT_NAME_MAX || shmkit_name_check(e->name)) {
		e->what = FOREIGN;
		e->kind = file_type(e->st.st_mode);
		snprintf(e->state, sizeof(e->state), "not a shmkit name");
		return true;
	}
	if (!S_ISREG(e->st.st_mode)) {
		/* Never opened: opening a FIFO for reading would block until a writer came. */
		e->what = LEFTOVER;
		e->kind = file_type(e->st.st_mode);
		snprintf(e->state, sizeof(e->state), "not a regular file: not a shmkit object");
		return true;
	}
	if (e->st.st_size == 0) {
		e->what = LEFTOVER;
		e->kind = "file";
		snprintf(e->state, sizeof(e->state), "empty file (a create that never finished?)");
		return true;
	}
	if (zero_magic(dirfd, file)) {
		/* What a create leaves when killed between reserving the pages and writing the
		 * header (or one still at it): shmkit_info would call it foreign. */
		e->what = LEFTOVER;
		e->kind = "file";
		snprintf(e->state, sizeof(e->state), "no header yet: a create still at work, or "
			 "one that never finished (rm frees it)");
		return true;
	}
	err = shmkit_info(e->name, &e->info);
	if (err == 0) {
		e->what = OBJECT;
		e->kind = shmkit_kind_name(e->info.kind);
		summary(&e->info, e->state, sizeof(e->state));
		return true;
	}
	e->kind = err == -EBADMSG || err == -EACCES ? "file" : "?";
	snprintf(e->state, sizeof(e->state), "%s", shmkit_strerror(err));
	switch (err) {
	case -EBADMSG: /* not a shmkit region (or one scribbled over: indistinguishable) */
	case -EACCES:  /* another user's, unreadable: could be anything */
		e->what = FOREIGN;
		break;
	default: /* ours, but unusable: half created, a newer layout, ... */
		e->what = LEFTOVER;
		break;
	}
	return true;
}

static int compare_entries(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* The entries to show, sorted by name: every file, or the names given. */
static int collect(char **names, int nnames, const struct opts *o, struct entry **out,
		   size_t *count, int *rc)
{
	struct entry *es = NULL, *grown;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir;
	int dfd, i;

	if (!(dir = opendir(SHM_DIR)))
		return -errno;
	dfd = dirfd(dir);
	for (;;) {
		const char *file;

		if (nnames) {
			if (n >= (size_t)nnames)
				break;
			file = names[n] + 1;
		} else {
			if (!(d = readdir(dir)))
				break;
			file = d->d_name;
			if (!strcmp(file, ".") || !strcmp(file, ".."))
				continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if (!(grown = realloc(es, cap * sizeof(*es)))) {
				free(es);
				closedir(dir);
				return -ENOMEM;
			}
			es = grown;
		}
		if (classify(dfd, file, &es[n]) && (o->all || nnames || es[n].what != FOREIGN)) {
			n++;
		} else if (nnames) {
			/* A name asked for and not there: say so, keep going. */
			i = (int)n;
			fprintf(stderr, "shmkit: ls %s: %s\n", names[i], shmkit_strerror(-ENOENT));
			*rc = 1;
			memmove(names + i, names + i + 1, (size_t)(nnames - i - 1) * sizeof(*names));
			nnames--;
		}
	}
	closedir(dir);
	if (n)
		qsort(es, n, sizeof(*es), compare_entries);
	*out = es;
	*count = n;
	return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Cells                                                                                       */

static void human_size(uint64_t b, char *buf, size_t size)
{
	static const char units[] = "BKMGTPE";
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && units[u + 1]) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%lluB", (unsigned long long)b);
	else if (v < 10 && (uint64_t)(v * 10 + 0.5) % 10)
		snprintf(buf, size, "%.1f%c", v, units[u]);
	else
		snprintf(buf, size, "%.0f%c", v, units[u]);
}

static bool is_queue_like(const struct entry *e)
{
	return e->what == OBJECT &&
	       (e->info.kind == SHMKIT_KIND_QUEUE || e->info.kind == SHMKIT_KIND_PIPE);
}

/* A cell as text; *number says whether JSON should print it bare; false from the function when
 * the column does not apply (JSON null, "-" in the table). */
static bool cell(const struct entry *e, enum col c, bool bytes, char *buf, size_t size,
		 bool *number)
{
	const struct shmkit_info *in = &e->info;
	const struct shmkit_queue_stats *q = &in->queue, *q2 = &in->queue2;
	bool obj = e->what == OBJECT;
	int64_t v = 0;
	size_t i, n;

	*number = true;
	switch (c) {
	case C_NAME:
		*number = false;
		snprintf(buf, size, "%s", e->name);
		return true;
	case C_KIND:
		*number = false;
		snprintf(buf, size, "%s", e->kind);
		return true;
	case C_SIZE:
		v = obj ? (int64_t)in->size : (int64_t)e->st.st_size;
		if (!bytes) {
			*number = false;
			human_size((uint64_t)v, buf, size);
			return true;
		}
		break;
	case C_OWNER:
		*number = false;
		owner_name(e->st.st_uid, buf, size);
		return true;
	case C_UID:
		v = e->st.st_uid;
		break;
	case C_PERMS:
		*number = false;
		snprintf(buf, size, "%04o", (unsigned)(e->st.st_mode & 07777));
		return true;
	case C_CREATOR:
		if (!obj)
			return false;
		v = in->creator;
		break;
	case C_ATTACHED:
		v = (int64_t)e->attached;
		break;
	case C_PIDS:
		*number = false;
		buf[0] = '\0';
		n = e->attached < MAX_PIDS ? e->attached : MAX_PIDS;
		for (i = 0; i < n; i++)
			snprintf(buf + strlen(buf), size - strlen(buf), "%s%d", i ? "," : "",
				 (int)e->pids[i]);
		if (e->attached > MAX_PIDS)
			snprintf(buf + strlen(buf), size - strlen(buf), ",...");
		return n > 0;
	case C_STATE:
		*number = false;
		snprintf(buf, size, "%s", e->state);
		return true;
	case C_VALUE:
		if (!obj || (in->kind != SHMKIT_KIND_VALUE && in->kind != SHMKIT_KIND_SEM &&
			     in->kind != SHMKIT_KIND_EVENT))
			return false;
		v = in->value;
		break;
	case C_HOLDER:
		if (!obj || (in->kind != SHMKIT_KIND_LOCK && in->kind != SHMKIT_KIND_VALUE &&
			     in->kind != SHMKIT_KIND_ARRAY && in->kind != SHMKIT_KIND_COND))
			return false;
		v = in->holder;
		break;
	case C_DEPTH:
		if (!is_queue_like(e))
			return false;
		v = (int64_t)q->depth + q2->depth;
		break;
	case C_CAPACITY:
		if (obj && in->kind == SHMKIT_KIND_BARRIER)
			v = (int64_t)in->len;
		else if (is_queue_like(e))
			v = q->capacity;
		else
			return false;
		break;
	case C_SLOT:
		if (!is_queue_like(e))
			return false;
		v = q->slot_size;
		break;
	case C_MAXMSG:
		if (!is_queue_like(e))
			return false;
		v = q->max_size;
		break;
	case C_WRITERS:
		if (!obj || in->kind != SHMKIT_KIND_QUEUE)
			return false;
		v = q->writers_attached;
		break;
	case C_WAITING:
		if (obj && in->kind == SHMKIT_KIND_BARRIER)
			v = in->value;
		else if (is_queue_like(e))
			v = (int64_t)q->producers_waiting + q->consumers_waiting +
			    q2->producers_waiting + q2->consumers_waiting;
		else
			return false;
		break;
	case C_EOF:
		if (!is_queue_like(e))
			return false;
		v = q->eof || q2->eof;
		break;
	case C_DEATHS:
		if (obj && (in->kind == SHMKIT_KIND_LOCK || in->kind == SHMKIT_KIND_VALUE ||
			    in->kind == SHMKIT_KIND_ARRAY || in->kind == SHMKIT_KIND_COND))
			v = (int64_t)in->owner_deaths;
		else if (is_queue_like(e))
			v = (int64_t)(q->participants_reaped + q2->participants_reaped);
		else
			return false;
		break;
	default:
		return false;
	}
	snprintf(buf, size, "%lld", (long long)v);
	return true;
}

/* ------------------------------------------------------------------------------------------- */
/* Output                                                                                      */

/* --raw: lsipc's escaping, so that every line splits on single spaces. */
static void print_raw(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= ' ' || ch == '\\' || ch >= 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

static void lower(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		buf[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	buf[i] = '\0';
}

static void print_table(const struct entry *es, size_t n, const struct opts *o)
{
	size_t width[N_COLS * 2] = { 0 }, i, k;
	char buf[640];
	bool num;

	for (k = 0; k < o->ncols; k++)
		width[k] = strlen(columns[o->cols[k]].name);
	for (i = 0; i < n && !o->raw; i++)
		for (k = 0; k < o->ncols; k++) {
			if (!cell(&es[i], o->cols[k], o->bytes, buf, sizeof(buf), &num))
				snprintf(buf, sizeof(buf), "-");
			if (strlen(buf) > width[k])
				width[k] = strlen(buf);
		}
	for (i = o->headings ? 0 : 1; i <= n; i++) {
		for (k = 0; k < o->ncols; k++) {
			const struct column *c = &columns[o->cols[k]];
			bool last = k + 1 == o->ncols;

			if (i == 0)
				snprintf(buf, sizeof(buf), "%s", c->name);
			else if (!cell(&es[i - 1], o->cols[k], o->bytes, buf, sizeof(buf), &num))
				snprintf(buf, sizeof(buf), "-");
			if (k)
				putchar(' ');
			if (o->raw)
				print_raw(buf);
			else if (c->right)
				printf("%*s", (int)width[k], buf);
			else
				printf("%-*s", last ? 0 : (int)width[k], buf);
		}
		putchar('\n');
	}
}

static void print_json_entries(const struct entry *es, size_t n, const struct opts *o)
{
	struct fields *fs = malloc(sizeof(*fs));
	char buf[640], key[32];
	size_t i, k;
	bool num;

	printf("[");
	for (i = 0; i < n; i++) {
		const struct entry *e = &es[i];

		if (i)
			printf(",");
		if (!o->custom_cols && e->what == OBJECT && fs) {
			/* Every field, as stat --json, then who maps it and the summary. */
			all_fields(e->name, &e->info, fs);
			add_int(fs, "attached", "attached", (int64_t)e->attached);
			cell(e, C_PIDS, true, buf, sizeof(buf), &num);
			add_str(fs, "pids", "pids", "%s", buf);
			add_str(fs, "state", "state", "%s", e->state);
			print_json(fs);
			continue;
		}
		printf("{");
		for (k = 0; k < o->ncols; k++) {
			lower(columns[o->cols[k]].name, key, sizeof(key));
			if (k)
				printf(",");
			json_string(stdout, key);
			printf(":");
			if (!cell(e, o->cols[k], o->bytes || o->json, buf, sizeof(buf), &num))
				printf("null");
			else if (num)
				printf("%s", buf);
			else
				json_string(stdout, buf);
		}
		printf("}");
	}
	printf("]\n");
	free(fs);
}

/* ------------------------------------------------------------------------------------------- */
/* Options                                                                                     */

static void ls_usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: shmkit ls [-o LIST] [--noheadings] [--raw | --json] [--bytes] [--all] "
		   "[NAME...]\n"
		   "List the shmkit objects in " SHM_DIR " (or the NAMEs given) with their state and "
		   "the\nprocesses mapping them, and what crashes left behind (non-regular files, "
		   "empty\nfiles, half-created regions, orphan sem.NAME.sem files).\n\n"
		   "Options:\n"
		   "  -o, --output LIST  columns, comma-separated; +LIST adds to the default\n"
		   "  -n, --noheadings   no header line\n"
		   "  -r, --raw          no alignment; spaces and odd bytes as \\xHH\n"
		   "  -J, -j, --json     a JSON array (without -o: every field, as stat --json)\n"
		   "  -b, --bytes        sizes in bytes, not K/M/G\n"
		   "  -a, --all          also files that are not shmkit objects\n"
		   "  -h, --help         this text\n\nColumns (default");
	for (i = 0; i < sizeof(default_cols) / sizeof(default_cols[0]); i++)
		fprintf(f, "%c%s", i ? ',' : ' ', columns[default_cols[i]].name);
	fprintf(f, "):\n");
	for (i = 0; i < N_COLS; i++)
		fprintf(f, "  %-9s %s\n", columns[i].name, columns[i].help);
	fprintf(f, "ATTACHED and PIDS see the processes of this pid namespace whose maps this user "
		   "may\nread. Exit status: 0; 1 when a NAME given is missing or " SHM_DIR
		   " is unreadable; 2 on a usage error.\n");
}

static int parse_columns(const char *arg, struct opts *o)
{
	const char *p = arg;
	size_t i;

	if (*p == '+')
		p++;
	else
		o->ncols = 0;
	while (*p) {
		size_t len = strcspn(p, ",");

		for (i = 0; i < N_COLS; i++)
			if (strlen(columns[i].name) == len && !strncasecmp(p, columns[i].name, len))
				break;
		if (i == N_COLS || o->ncols == N_COLS * 2)
			return usage_error("ls", "unknown column '%.*s' in '%s'", (int)len, p,
					   arg);
		o->cols[o->ncols++] = (enum col)i;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!o->ncols)
		return usage_error("ls", "no columns in '%s'", arg);
	return 0;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' }, { "noheadings", no_argument, NULL, 'n' },
		{ "raw", no_argument, NULL, 'r' },          { "json", no_argument, NULL, 'J' },
		{ "bytes", no_argument, NULL, 'b' },        { "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	struct opts o = { .headings = true };
	struct mappers *maps;
	struct entry *es = NULL;
	size_t n = 0, i;
	int opt, err, rc = 0;

	for (i = 0; i < sizeof(default_cols) / sizeof(default_cols[0]); i++)
		o.cols[o.ncols++] = default_cols[i];
	while ((opt = getopt_long(argc, argv, ":o:nrJjbah", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			if ((err = parse_columns(optarg, &o)))
				return err;
			o.custom_cols = true;
			break;
		case 'n':
			o.headings = false;
			break;
		case 'r':
			o.raw = true;
			break;
		case 'J':
		case 'j':
			o.json = true;
			break;
		case 'b':
			o.bytes = true;
			break;
		case 'a':
			o.all = true;
			break;
		case 'h':
			ls_usage(stdout);
			return 0;
		default:
			return bad_option("ls", opt, argv);
		}
	}
	if (o.raw && o.json)
		return usage_error("ls", "--raw and --json exclude each other");
	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (shmkit_name_check(argv[i]))
			return usage_error("ls", "bad name '%s': want '/' then 1..%d of A-Z a-z 0-9 "
						 ". _ -", argv[i], SHMKIT_NAME_MAX);
	if ((err = collect(argv + optind, argc - optind, &o, &es, &n, &rc)) < 0)
		return runtime_error("ls " SHM_DIR, err);
	maps = mappers_scan();
	for (i = 0; i < n; i++)
		es[i].attached = mappers_of(maps, es[i].name + 1, es[i].pids, MAX_PIDS);
	mappers_free(maps);
	if (o.json)
		print_json_entries(es, n, &o);
	else
		print_table(es, n, &o);
	free(es);
	if (fflush(stdout) != 0)
		rc = runtime_error("ls", -errno);
	return rc;
}
