/*
 * Any object by name: kind names, inspection and removal, for `shmkit ls`, `stat` and `rm`.
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

#include "internal.h"

static const char *const kind_names[] = {
	[SHMKIT_KIND_VALUE] = "value", [SHMKIT_KIND_ARRAY] = "array",
	[SHMKIT_KIND_LOCK] = "lock",   [SHMKIT_KIND_SEM] = "sem",
	[SHMKIT_KIND_QUEUE] = "queue", [SHMKIT_KIND_PIPE] = "pipe",
	[SHMKIT_KIND_EVENT] = "event", [SHMKIT_KIND_COND] = "cond",
	[SHMKIT_KIND_BARRIER] = "barrier",
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
	default: /* a kind from a newer layout: the common fields only */
		break;
	}
out:
	shmkit__region_close(&r);
	if (err)
		memset(info, 0, sizeof(*info));
	return err;
}

/* Read the header without waiting for READY, so that a region whose creator died while
 * initialising it can still be removed. 0 when the file is a shmkit region; -ENODATA when it
 * is what a create killed before writing the header leaves (shorter than a header, or no
 * magic yet) and nobody is creating it now; -EBUSY when a live creator is still at it
 * (before or after writing the header). */
static int read_header(const char *name, struct shmkit__hdr *h)
{
	struct stat st;
	ssize_t n;
	int fd, err = 0;

	/* O_NONBLOCK: never wait on a FIFO someone made under the name. */
	fd = shm_open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EBADMSG;
		goto out;
	}
	memset(h, 0, sizeof(*h));
	n = (uint64_t)st.st_size < sizeof(*h) ? 0 : pread(fd, h, sizeof(*h), 0);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != sizeof(*h) || h->magic == 0)
		/* The creator takes its lease right after making the name, before anything
		 * else: no lease means nobody will ever finish this one. */
		err = shmkit__lease_held(fd, SHMKIT__LEASE_CREATOR) ? -EBUSY : -ENODATA;
	else if (h->magic != SHMKIT__MAGIC)
		err = -EBADMSG;
	else if (atomic_load_explicit(&h->state, memory_order_relaxed) != SHMKIT__STATE_READY &&
		 shmkit__lease_held(fd, SHMKIT__LEASE_CREATOR))
		/* Header written, object still being initialised by a live creator: not ours to
		 * remove (its create would return success on a name that no longer exists). */
		err = -EBUSY;
out:
	close(fd);
	return err;
}

SHMKIT__API int shmkit_remove(const char *name)
{
	struct shmkit__hdr h;
	int err;

	if ((err = shmkit_name_check(name)))
		return err;
	err = read_header(name, &h);
	if (err == -ENOENT)
		/* No region: maybe a semaphore's leftover, which would block its create. */
		return shmkit__sem_orphan_remove(name);
	if (err == -ENODATA)
		return shmkit__region_unlink(name);
	if (err)
		return err;
	switch (h.kind) {
	case SHMKIT_KIND_VALUE:
		return shmkit_value_unlink(name);
	case SHMKIT_KIND_ARRAY:
		return shmkit_array_unlink(name);
	case SHMKIT_KIND_LOCK:
		return shmkit_lock_unlink(name);
	case SHMKIT_KIND_SEM:
		return shmkit_sem_unlink(name);
	case SHMKIT_KIND_QUEUE:
		return shmkit_queue_unlink(name);
	case SHMKIT_KIND_PIPE:
		return shmkit_pipe_unlink(name);
	case SHMKIT_KIND_EVENT:
		return shmkit_event_unlink(name);
	case SHMKIT_KIND_COND:
		return shmkit_cond_unlink(name);
	case SHMKIT_KIND_BARRIER:
		return shmkit_barrier_unlink(name);
	default: /* a kind from a newer layout owns nothing we know of */
		return shmkit__region_unlink(name);
	}
}
