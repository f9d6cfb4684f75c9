/*
 * Which processes map which /dev/shm files, read from /proc/PID/maps.
 *
 * A region in use is mapped by every process that has it open, whatever its kind, so this is
 * the one answer to "is anybody using this object?" that needs nothing from the region itself
 * (lsipc's NATTCH for POSIX shared memory). It sees the processes whose maps this user may read
 * (all for root), in this pid namespace only.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/describe.h"

struct mapping {
	char *file; /* name under /dev/shm */
	pid_t pid;
};

struct mappers {
	size_t n, cap;
	struct mapping *m;
};

static int add_mapping(struct mappers *ms, const char *file, pid_t pid)
{
	struct mapping *grown;
	size_t i;

	/* One process maps a region several times (a lock and a queue's ring): count it once. */
	for (i = ms->n; i > 0 && ms->m[i - 1].pid == pid; i--)
		if (!strcmp(ms->m[i - 1].file, file))
			return 0;
	if (ms->n == ms->cap) {
		size_t cap = ms->cap ? 2 * ms->cap : 64;

		if (!(grown = realloc(ms->m, cap * sizeof(*grown))))
			return -1;
		ms->m = grown;
		ms->cap = cap;
	}
	if (!(ms->m[ms->n].file = strdup(file)))
		return -1;
	ms->m[ms->n++].pid = pid;
	return 0;
}

static int scan_pid(struct mappers *ms, pid_t pid)
{
	static const char prefix[] = " " SHM_DIR "/";
	char path[64], line[512], *p, *end;
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (!(f = fopen(path, "re")))
		return 0; /* gone, or not ours to read */
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		if (!(p = strstr(line, prefix)))
			continue;
		p += sizeof(prefix) - 1;
		end = p + strcspn(p, "\n");
		*end = '\0';
		/* A mapping whose name was unlinked is no longer the object of that name. */
		if (end - p > 10 && !strcmp(end - 10, " (deleted)"))
			continue;
		rc = add_mapping(ms, p, pid);
	}
	fclose(f);
	return rc;
}

struct mappers *mappers_scan(void)
{
	struct mappers *ms = calloc(1, sizeof(*ms));
	pid_t self = getpid();
	struct dirent *d;
	DIR *proc;

	if (!ms)
		return NULL;
	if (!(proc = opendir("/proc")))
		return ms; /* no /proc: nobody is seen mapping anything */
	while ((d = readdir(proc))) {
		char *end;
		long pid;

		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		pid = strtol(d->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self)
			continue;
		if (scan_pid(ms, (pid_t)pid) < 0) {
			closedir(proc);
			mappers_free(ms);
			return NULL;
		}
	}
	closedir(proc);
	return ms;
}

size_t mappers_of(const struct mappers *ms, const char *file, pid_t *pids, size_t max)
{
	size_t i, n = 0;

	for (i = 0; ms && i < ms->n; i++) {
		if (strcmp(ms->m[i].file, file))
			continue;
		if (n < max)
			pids[n] = ms->m[i].pid;
		n++;
	}
	return n;
}

void mappers_free(struct mappers *ms)
{
	size_t i;

	if (!ms)
		return;
	for (i = 0; i < ms->n; i++)
		free(ms->m[i].file);
	free(ms->m);
	free(ms);
}
