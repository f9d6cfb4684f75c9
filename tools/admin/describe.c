/* Describing one object for stat, ls and top: fields, JSON, a one-line summary. */
#include "config.h"

#include <pwd.h>
#include <stdarg.h>
#include <string.h>

#include "admin/describe.h"
#include "util.h"

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

void add_int(struct fields *fs, const char *key, const char *label, int64_t v)
{
	add(fs, key, label, F_INT)->i = v;
}

void add_bool(struct fields *fs, const char *key, const char *label, bool v)
{
	add(fs, key, label, F_BOOL)->i = v;
}

void add_str(struct fields *fs, const char *key, const char *label, const char *fmt, ...)
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

void owner_name(uid_t uid, char *buf, size_t size)
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
	add_int(fs, "waiters", "waiting for it", (int64_t)in->lock_waiters);
	/* The holder's own wait: with the holder, this is how a deadlock reads ("held by pid A,
	 * which waits for /b"; stat /b: "held by pid B, which waits for /a"). */
	add_str(fs, "holder_waits_for", "holder waits for", "%s",
		in->holder_waits_for[0] ? in->holder_waits_for : in->holder ? "nothing" : "-");
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
	QF(slot_size, "slot size");
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

void all_fields(const char *name, const struct shmkit_info *in, struct fields *fs)
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

void print_text(const struct fields *fs)
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

void print_json(const struct fields *fs)
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

/* A queue direction's state: depth, writers, who waits, EOF. */
static void queue_summary(const struct shmkit_queue_stats *q, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%u/%u queued, %u writer%s, %u participant%s", q->depth,
			 q->capacity, q->writers_attached, q->writers_attached == 1 ? "" : "s",
			 q->participants, q->participants == 1 ? "" : "s");

	if (n > 0 && (size_t)n < size && (q->producers_waiting || q->consumers_waiting))
		n += snprintf(buf + n, size - (size_t)n, ", waiting %u put %u get",
			      q->producers_waiting, q->consumers_waiting);
	if (n > 0 && (size_t)n < size && q->joinable && q->unfinished)
		n += snprintf(buf + n, size - (size_t)n, ", %llu unfinished",
			      (unsigned long long)q->unfinished);
	if (n > 0 && (size_t)n < size && q->eof)
		snprintf(buf + n, size - (size_t)n, ", eof");
}

/* One line of state for ls: one case per kind. */
void summary(const struct shmkit_info *in, char *buf, size_t size)
{
	char held[48] = "free", deaths[48] = "";

	if (in->holder)
		snprintf(held, sizeof(held), "held by %d%s", (int)in->holder,
			 in->holder_waits_for[0] ? " (waiting)" : "");
	if (in->owner_deaths)
		snprintf(deaths, sizeof(deaths), ", %llu owner death%s",
			 (unsigned long long)in->owner_deaths, in->owner_deaths == 1 ? "" : "s");
	switch (in->kind) {
	case SHMKIT_KIND_VALUE:
		snprintf(buf, size, "value %lld, %s%s", (long long)in->value, held, deaths);
		break;
	case SHMKIT_KIND_ARRAY:
		snprintf(buf, size, "%llu cells, %s%s", (unsigned long long)in->len, held, deaths);
		break;
	case SHMKIT_KIND_LOCK:
		snprintf(buf, size, "%s%s%s", held, in->flags & SHMKIT_RECURSIVE ? ", recursive" : "",
			 deaths);
		break;
	case SHMKIT_KIND_SEM:
		snprintf(buf, size, "value %lld%s", (long long)in->value,
			 in->flags & SHMKIT_BOUNDED ? ", bounded" : "");
		break;
	case SHMKIT_KIND_QUEUE:
		queue_summary(&in->queue, buf, size);
		break;
	case SHMKIT_KIND_PIPE:
		if (in->flags & SHMKIT_SIMPLEX)
			snprintf(buf, size, "ends %d,%d, %u queued, simplex%s", (int)in->ends[0],
				 (int)in->ends[1], in->queue.depth, in->queue.eof ? ", eof" : "");
		else
			snprintf(buf, size, "ends %d,%d, %u queued 0->1, %u queued 1->0%s",
				 (int)in->ends[0], (int)in->ends[1], in->queue.depth,
				 in->queue2.depth, in->queue.eof || in->queue2.eof ? ", eof" : "");
		break;
	case SHMKIT_KIND_EVENT:
		snprintf(buf, size, "%s", in->value ? "set" : "clear");
		break;
	case SHMKIT_KIND_COND:
		snprintf(buf, size, "lock %s%s", held, deaths);
		break;
	case SHMKIT_KIND_BARRIER:
		snprintf(buf, size, "%lld/%llu waiting", (long long)in->value,
			 (unsigned long long)in->len);
		break;
	case SHMKIT_KIND_BLOCK:
		snprintf(buf, size, "%llu bytes, %s%s", (unsigned long long)in->len, held, deaths);
		break;
	default:
		snprintf(buf, size, "-");
		break;
	}
}
