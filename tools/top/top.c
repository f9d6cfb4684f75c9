/*
 * `shmkit top`: a live view of the objects in /dev/shm (or the ones named).
 *
 * Each refresh reads every object through shmkit_info(), which maps the region read-only: the
 * view writes nothing and takes no lock, so it can never block or slow a participant. Rates
 * are the difference of the queues' put/get totals between two refreshes; reclaimed slots and
 * deaths are counted from the first time the view saw the object.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/describe.h"
#include "top/top.h"
#include "util.h"

struct obj {
	char name[SHMKIT_NAME_MAX + 2];
	struct shmkit_info in;
	bool seen; /* found in this refresh */
	bool has_rate;
	uint64_t put0, get0;               /* totals at the previous refresh */
	uint64_t reclaimed0, deaths0;      /* at the first refresh */
	double put_rate, get_rate;
	uint64_t depth, capacity, pwait, cwait, reclaimed, deaths;
	size_t attached;
	char state[200];
};

struct view {
	struct obj *o;
	size_t n, cap;
	char **names; /* restrict to these, or NULL */
	int nnames;
	double last;  /* now_seconds() of the previous refresh */
	int sort;     /* index into sort_keys */
	bool reverse;
};

static const struct sort_key {
	char key;
	const char *label;
} sort_keys[] = {
	{ 'n', "name" }, { 'p', "put/s" },   { 'g', "get/s" },
	{ 'd', "depth" }, { 'w', "waiting" }, { 'x', "deaths" },
};
#define N_SORT (sizeof(sort_keys) / sizeof(sort_keys[0]))

static bool queue_like(const struct shmkit_info *in)
{
	return in->kind == SHMKIT_KIND_QUEUE || in->kind == SHMKIT_KIND_PIPE;
}

static uint64_t deaths_of(const struct shmkit_info *in)
{
	/* A lock holder that died and is not yet recovered is a death already (the kernel says
	 * so); once recovered it is counted in owner_deaths instead. */
	return in->owner_deaths + (in->holder < 0) + in->queue.participants_reaped +
	       in->queue2.participants_reaped;
}

static struct obj *find_or_add(struct view *v, const char *name)
{
	struct obj *grown;
	size_t i;

	for (i = 0; i < v->n; i++)
		if (!strcmp(v->o[i].name, name))
			return &v->o[i];
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 32;

		if (!(grown = realloc(v->o, cap * sizeof(*grown))))
			return NULL;
		v->o = grown;
		v->cap = cap;
	}
	memset(&v->o[v->n], 0, sizeof(v->o[0]));
	snprintf(v->o[v->n].name, sizeof(v->o[0].name), "%s", name);
	return &v->o[v->n++];
}

/* Read one object; a new one gets its baselines. */
static void sample_one(struct view *v, const char *name, double dt)
{
	struct shmkit_info in;
	struct obj *o;
	bool fresh;

	if (shmkit_info(name, &in) < 0)
		return;
	if (!(o = find_or_add(v, name)))
		return;
	fresh = o->in.kind == 0 || o->in.kind != in.kind;
	if (fresh) {
		o->put0 = in.queue.put_total + in.queue2.put_total;
		o->get0 = in.queue.get_total + in.queue2.get_total;
		o->reclaimed0 = in.queue.slots_reclaimed + in.queue2.slots_reclaimed;
		o->deaths0 = deaths_of(&in);
		o->has_rate = false;
	} else if (dt > 0) {
		uint64_t put = in.queue.put_total + in.queue2.put_total;
		uint64_t get = in.queue.get_total + in.queue2.get_total;

		o->put_rate = (double)(put - o->put0) / dt;
		o->get_rate = (double)(get - o->get0) / dt;
		o->put0 = put;
		o->get0 = get;
		o->has_rate = true;
	}
	o->in = in;
	o->seen = true;
	o->depth = (uint64_t)in.queue.depth + in.queue2.depth;
	o->capacity = in.queue.capacity;
	o->pwait = (uint64_t)in.queue.producers_waiting + in.queue2.producers_waiting;
	o->cwait = (uint64_t)in.queue.consumers_waiting + in.queue2.consumers_waiting;
	if (in.kind == SHMKIT_KIND_BARRIER) {
		o->capacity = in.len;
		o->cwait = (uint64_t)in.value;
	}
	o->reclaimed = in.queue.slots_reclaimed + in.queue2.slots_reclaimed - o->reclaimed0;
	o->deaths = deaths_of(&in) - o->deaths0;
	summary(&in, o->state, sizeof(o->state));
}

static int cmp_view_sort;
static bool cmp_view_reverse;

static int compare(const void *pa, const void *pb)
{
	const struct obj *a = pa, *b = pb;
	double x = 0, y = 0;
	int c;

	switch (sort_keys[cmp_view_sort].key) {
	case 'p':
		x = a->put_rate, y = b->put_rate;
		break;
	case 'g':
		x = a->get_rate, y = b->get_rate;
		break;
	case 'd':
		x = (double)a->depth, y = (double)b->depth;
		break;
	case 'w':
		x = (double)(a->pwait + a->cwait), y = (double)(b->pwait + b->cwait);
		break;
	case 'x':
		x = (double)a->deaths, y = (double)b->deaths;
		break;
	default:
		break;
	}
	/* Figures sort largest first, names alphabetically; ties by name. */
	c = x < y ? 1 : x > y ? -1 : 0;
	if (!c)
		c = strcmp(a->name, b->name);
	return cmp_view_reverse ? -c : c;
}

/* One refresh: every object (or the named ones) read again; gone ones dropped. */
static void sample(struct view *v)
{
	double now = now_seconds(), dt = v->last ? now - v->last : 0;
	struct mappers *maps;
	size_t i, kept;

	for (i = 0; i < v->n; i++)
		v->o[i].seen = false;
	if (v->nnames) {
		for (i = 0; i < (size_t)v->nnames; i++)
			sample_one(v, v->names[i], dt);
	} else {
		DIR *dir = opendir(SHM_DIR);
		struct dirent *d;
		char name[SHMKIT_NAME_MAX + 2];
		struct stat st;

		while (dir && (d = readdir(dir))) {
			if (strlen(d->d_name) > SHMKIT_NAME_MAX)
				continue;
			snprintf(name, sizeof(name), "/%s", d->d_name);
			/* Only regular files reach shmkit_info: a FIFO must not block the view. */
			if (shmkit_name_check(name) ||
			    fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode) || st.st_size == 0)
				continue;
			sample_one(v, name, dt);
		}
		if (dir)
			closedir(dir);
	}
	for (i = kept = 0; i < v->n; i++)
		if (v->o[i].seen)
			v->o[kept++] = v->o[i];
	v->n = kept;
	maps = mappers_scan();
	for (i = 0; i < v->n; i++)
		v->o[i].attached = mappers_of(maps, v->o[i].name + 1, NULL, 0);
	mappers_free(maps);
	v->last = now;
	cmp_view_sort = v->sort;
	cmp_view_reverse = v->reverse;
	if (v->n)
		qsort(v->o, v->n, sizeof(v->o[0]), compare);
}

/* ------------------------------------------------------------------------------------------- */
/* Drawing                                                                                     */

static void rate(const struct obj *o, double r, char *buf, size_t size)
{
	if (!queue_like(&o->in))
		snprintf(buf, size, "-");
	else if (!o->has_rate)
		snprintf(buf, size, "..");
	else if (r >= 1e7)
		snprintf(buf, size, "%.0fM", r / 1e6);
	else if (r >= 1e4)
		snprintf(buf, size, "%.0fk", r / 1e3);
	else
		snprintf(buf, size, "%.0f", r);
}

static void number(bool applies, uint64_t x, char *buf, size_t size)
{
	if (applies)
		snprintf(buf, size, "%llu", (unsigned long long)x);
	else
		snprintf(buf, size, "-");
}

/* One line, cut at `cols` characters (0: no limit). */
static void line(FILE *f, int cols, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void line(FILE *f, int cols, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (cols > 0 && strlen(buf) > (size_t)cols)
		buf[cols] = '\0';
	fprintf(f, "%s\n", buf);
}

static void draw(const struct view *v, bool tty, int rows, int cols)
{
	char put[16], get[16], depth[24], cap[24], pw[24], cw[24], rec[24], dead[24];
	size_t i, shown = v->n;
	struct tm tm;
	time_t t = time(NULL);
	char clock[16];
	int width = 4;

	localtime_r(&t, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	for (i = 0; i < v->n; i++)
		if ((int)strlen(v->o[i].name) > width)
			width = (int)strlen(v->o[i].name);
	if (width > 40)
		width = 40;
	if (tty) {
		fputs("\033[H\033[2J", stdout); /* home, clear */
		if (rows > 3 && shown > (size_t)(rows - 3))
			shown = (size_t)(rows - 3);
	}
	line(stdout, cols, "shmkit top - %s, %zu object%s, sorted by %s%s%s", clock, v->n,
	     v->n == 1 ? "" : "s", sort_keys[v->sort].label, v->reverse ? " (reversed)" : "",
	     tty ? "  [n p g d w x: sort, r: reverse, q: quit]" : "");
	line(stdout, cols, "%-*s %-7s %7s %7s %7s %7s %5s %5s %7s %6s %3s %s", width, "NAME",
	     "KIND", "PUT/s", "GET/s", "DEPTH", "CAP", "PWAIT", "CWAIT", "RECLAIM", "DEATHS",
	     "ATT", "STATE");
	for (i = 0; i < shown; i++) {
		const struct obj *o = &v->o[i];
		bool q = queue_like(&o->in), b = o->in.kind == SHMKIT_KIND_BARRIER;

		rate(o, o->put_rate, put, sizeof(put));
		rate(o, o->get_rate, get, sizeof(get));
		number(q, o->depth, depth, sizeof(depth));
		number(q || b, o->capacity, cap, sizeof(cap));
		number(q, o->pwait, pw, sizeof(pw));
		number(q || b, o->cwait, cw, sizeof(cw));
		number(q, o->reclaimed, rec, sizeof(rec));
		snprintf(dead, sizeof(dead), "%llu", (unsigned long long)o->deaths);
		line(stdout, cols, "%-*.*s %-7s %7s %7s %7s %7s %5s %5s %7s %6s %3zu %s", width,
		     width, o->name, shmkit_kind_name(o->in.kind), put, get, depth, cap, pw, cw,
		     rec, dead, o->attached, o->state);
	}
	if (shown < v->n)
		line(stdout, cols, "(%zu more: a taller terminal shows them)", v->n - shown);
	fflush(stdout);
}

static void draw_json(const struct view *v)
{
	struct timespec ts;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &ts);
	printf("{\"time\":%lld.%03ld,\"objects\":[", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	for (i = 0; i < v->n; i++) {
		const struct obj *o = &v->o[i];
		bool q = queue_like(&o->in);

		printf("%s{\"name\":", i ? "," : "");
		json_string(stdout, o->name);
		printf(",\"kind\":\"%s\"", shmkit_kind_name(o->in.kind));
		if (q && o->has_rate)
			printf(",\"put_per_s\":%.1f,\"get_per_s\":%.1f", o->put_rate, o->get_rate);
		else
			printf(",\"put_per_s\":null,\"get_per_s\":null");
		if (q)
			printf(",\"depth\":%llu,\"capacity\":%llu,\"producers_waiting\":%llu,"
			       "\"consumers_waiting\":%llu,\"slots_reclaimed\":%llu",
			       (unsigned long long)o->depth, (unsigned long long)o->capacity,
			       (unsigned long long)o->pwait, (unsigned long long)o->cwait,
			       (unsigned long long)o->reclaimed);
		printf(",\"deaths\":%llu,\"attached\":%zu,\"state\":", (unsigned long long)o->deaths,
		       o->attached);
		json_string(stdout, o->state);
		printf("}");
	}
	printf("]}\n");
	fflush(stdout);
}

/* ------------------------------------------------------------------------------------------- */

static void top_usage(FILE *f)
{
	fprintf(f, "Usage: shmkit top [--interval S] [--iterations N] [--once] [--json] "
		   "[--sort KEY] [NAME...]\n"
		   "A live view of the objects in " SHM_DIR " (or the NAMEs given): per queue and "
		   "pipe\nput/s, get/s, depth, waiting producers (PWAIT) and consumers (CWAIT), "
		   "slots\nreclaimed from dead producers and deaths (dead participants reaped, lock "
		   "holders\nthat died) since the view started; ATT counts the processes mapping "
		   "each object.\nIt only reads the regions: it never blocks or slows a "
		   "participant.\n\n"
		   "Options:\n"
		   "  -d, --interval S    seconds between refreshes (default 1; fractions allowed)\n"
		   "  -n, --iterations N  stop after N refreshes\n"
		   "  -1, --once          one refresh after one interval (so rates mean something), "
		   "no\n                      terminal control: for scripts\n"
		   "  -j, --json          one JSON object per refresh, one per line\n"
		   "  -s, --sort KEY      name, put, get, depth, waiting or deaths (default name)\n"
		   "  -r, --reverse       reverse the order\n"
		   "  -h, --help          this text\n\n"
		   "Keys: n p g d w x sort by name, put/s, get/s, depth, waiting, deaths; r "
		   "reverses;\nq quits. Without a terminal on standard output, tables are printed "
		   "one after\nthe other. Exit status: 0; 1 on a runtime error; 2 on a usage error.\n");
}

static int sort_index(const char *s)
{
	static const char *const words[] = { "name", "put", "get", "depth", "waiting", "deaths" };
	size_t i;

	for (i = 0; i < N_SORT; i++)
		if (!strcmp(s, words[i]) || (s[0] == sort_keys[i].key && !s[1]))
			return (int)i;
	return -1;
}

int cmd_top(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "interval", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "once", no_argument, NULL, '1' },
		{ "json", no_argument, NULL, 'j' },
		{ "sort", required_argument, NULL, 's' },
		{ "reverse", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct view v = { 0 };
	int64_t interval_ns = 1000000000;
	uint64_t iterations = 0, done = 0;
	bool once = false, json = false, tty;
	int opt, i, key, rows, cols;
	double next;

	while ((opt = getopt_long(argc, argv, ":d:n:1js:rh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (!parse_seconds(optarg, &interval_ns) || interval_ns < 10000000 ||
			    interval_ns > 3600 * INT64_C(1000000000))
				return usage_error("top", "bad --interval '%s': want 0.01..3600 "
							  "seconds", optarg);
			break;
		case 'n':
			if (!parse_u64(optarg, 1, UINT32_MAX, &iterations))
				return usage_error("top", "bad --iterations '%s': want 1..%u", optarg,
						   UINT32_MAX);
			break;
		case '1':
			once = true;
			break;
		case 'j':
			json = true;
			break;
		case 's':
			if ((v.sort = sort_index(optarg)) < 0)
				return usage_error("top", "bad --sort '%s': want name, put, get, "
							  "depth, waiting or deaths", optarg);
			break;
		case 'r':
			v.reverse = true;
			break;
		case 'h':
			top_usage(stdout);
			return 0;
		default:
			return bad_option("top", opt, argv);
		}
	}
	for (i = optind; i < argc; i++)
		if (shmkit_name_check(argv[i]))
			return usage_error("top", "bad name '%s': want '/' then 1..%d of A-Z a-z 0-9 "
						  ". _ -", argv[i], SHMKIT_NAME_MAX);
	v.names = argv + optind;
	v.nnames = argc - optind;
	tty = !once && !json && isatty(STDOUT_FILENO);

	sample(&v); /* the baselines */
	if (once) {
		usleep((useconds_t)(interval_ns / 1000));
		sample(&v);
		if (json)
			draw_json(&v);
		else
			draw(&v, false, 0, 0);
		free(v.o);
		return fflush(stdout) == 0 ? 0 : runtime_error("top", -errno);
	}
	if (tty)
		term_enter();
	next = now_seconds() + (double)interval_ns / 1e9;
	for (;;) {
		if (tty)
			term_size(&rows, &cols);
		if (json)
			draw_json(&v);
		else
			draw(&v, tty, rows, tty ? cols : 0);
		if (!tty && !json)
			printf("\n");
		if (iterations && ++done >= iterations)
			break;
		/* Keys redraw at once; the next sample waits for the interval. */
		for (;;) {
			double left = next - now_seconds();

			key = tty ? term_wait_key(left > 0 ? (int)(left * 1000) + 1 : 0)
				  : (left > 0 ? (usleep((useconds_t)(left * 1e6)), KEY_NONE) : KEY_NONE);
			if (key == KEY_STOP || key == 'q' || key == 'Q')
				goto out;
			if (key == 'r') {
				v.reverse = !v.reverse;
			} else if (key >= 0) {
				int k = sort_index((char[]){ (char)key, 0 });

				if (k >= 0)
					v.sort = k;
			}
			if (key == KEY_NONE && now_seconds() >= next)
				break;
			cmp_view_sort = v.sort;
			cmp_view_reverse = v.reverse;
			if (v.n)
				qsort(v.o, v.n, sizeof(v.o[0]), compare);
			term_size(&rows, &cols);
			draw(&v, tty, rows, cols);
		}
		sample(&v);
		next += (double)interval_ns / 1e9;
		if (next < now_seconds())
			next = now_seconds() + (double)interval_ns / 1e9;
	}
out:
	if (tty)
		term_leave();
	free(v.o);
	return 0;
}
