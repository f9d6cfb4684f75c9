/*
 * Any object by name: kind names and inspection, for `shmkit ls` and `stat`.
 *
 * Inspection maps the region read-only, so it works on objects one may only read and cannot
 * change them. The kind-specific state comes from each object's own file (shmkit__*_info),
 * which alone knows its layout.
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinds.h"
#include "region.h"

static const char *const kind_names[] = {
	[SHMKIT_KIND_VALUE] = "value", [SHMKIT_KIND_ARRAY] = "array",
	[SHMKIT_KIND_LOCK] = "lock",   [SHMKIT_KIND_SEM] = "sem",
	[SHMKIT_KIND_QUEUE] = "queue", [SHMKIT_KIND_PIPE] = "pipe",
	[SHMKIT_KIND_EVENT] = "event", [SHMKIT_KIND_COND] = "cond",
	[SHMKIT_KIND_BARRIER] = "barrier", [SHMKIT_KIND_BLOCK] = "block",
};

SHMKIT__API const char *shmkit_kind_name(int kind)
{
	if (kind <= 0 || (size_t)kind >= sizeof(kind_names) / sizeof(kind_names[0]) ||
	    !kind_names[kind])
		return "unknown";
	return kind_names[kind];
}

/* Permission bits and owner of the named object. */
static int stat_name(const char *name, struct stat *st)
{
	int fd, err = 0;

	fd = shm_open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0)
		err = -errno;
	close(fd);
	return err;
}

SHMKIT__API int shmkit_info(const char *name, struct shmkit_info *info)
{
	struct shmkit__region r;
	struct stat st;
	int err;

	if (!info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	if ((err = shmkit__region_open_mode(name, 0, true, &r)))
		return err;
	if ((err = stat_name(name, &st)))
		goto out;
	info->kind = (int)r.hdr->kind;
	info->size = r.size;
	info->mode = st.st_mode & 07777;
	info->uid = st.st_uid;
	info->creator = r.hdr->creator_pid;
	info->flags = r.hdr->flags;

	switch (r.hdr->kind) {
	case SHMKIT_KIND_VALUE:
	case SHMKIT_KIND_ARRAY:
		err = shmkit__value_info(&r, info);
		break;
	case SHMKIT_KIND_LOCK:
		err = shmkit__lock_info(&r, info);
		break;
	case SHMKIT_KIND_SEM:
		err = shmkit__sem_info(&r, info);
		break;
	case SHMKIT_KIND_QUEUE:
		err = shmkit__queue_info(&r, info);
		break;
	case SHMKIT_KIND_PIPE:
		err = shmkit__pipe_info(&r, info);
		break;
	case SHMKIT_KIND_EVENT:
		err = shmkit__event_info(&r, info);
		break;
	case SHMKIT_KIND_COND:
		err = shmkit__cond_info(&r, info);
		break;
	case SHMKIT_KIND_BARRIER:
		err = shmkit__barrier_info(&r, info);
		break;
	case SHMKIT_KIND_BLOCK:
		err = shmkit__block_info(&r, info);
		break;
	default: /* a kind from a newer layout: the common fields only */
		break;
	}
out:
	shmkit__region_close(&r);
	if (err)
		memset(info, 0, sizeof(*info));
	return err;
}

