/*
 * Semaphore and BoundedSemaphore.
 *
 * A named object is a small region (kind, initial value, flags, the bound's guard lock) plus a
 * POSIX named semaphore "<name>.sem" that unrelated processes sem_open by name. An anonymous one
 * keeps a process-shared sem_t in its mapping instead.
 *
 * sem_open trusts its file: a truncated one gives SIGBUS at the first use, garbage makes glibc
 * abort. So the file is checked as regions are (a regular file of the right size, owned by us
 * or not writable by others, a value and a futex-private flag glibc can have written) before
 * sem_open maps it, and read-only inspection maps it itself.
 *
 * Order against kills: unlink removes the semaphore first, so a kill in between leaves a region
 * that `shmkit rm` still finds; a semaphore left without its region (a kill inside create) is
 * what shmkit_remove() takes away when the name has no region.
 *
 * A bounded release must check and post as one step, or two releasers could both see room and
 * overshoot. Acquirers only ever lower the value, so serialising the releasers (the guard) is
 * enough: the value seen under the guard can only fall before the post.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "kinds.h"
#include "lease.h"
#include "mutex.h"
#include "region.h"
#include "wait.h"

struct sem_region {
	struct shmkit__hdr hdr; /* param[0]: initial value */
	struct shmkit__lk guard;
	sem_t anon;             /* the semaphore of an anonymous object */
};

struct shmkit_sem {
	struct shmkit__region r;
	sem_t *sem;
	unsigned initial;
	bool bounded;
};

/* glibc's sem_t on 64-bit Linux: the value in the low 32 bits of `data`, the waiter count in
 * the high ones, and the futex flag in `private` (0 shared, 128 private). */
struct glibc_sem {
	uint64_t data;
	int32_t private_;
	int32_t pad;
};

/* Derived name of an object's POSIX named semaphore: "<name>.sem"; buf holds NAME_MAX + 1. */
static int sem_name(const char *name, char *buf, size_t size)
{
	int n;

	if (shmkit_name_check(name))
		return -EINVAL;
	n = snprintf(buf, size, "%s.sem", name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* /dev/shm path of the named semaphore of object `name`. */
static int sem_path(const char *name, char *semname, size_t ns, char *path, size_t np)
{
	int err = sem_name(name, semname, ns);

	if (err)
		return err;
	if ((size_t)snprintf(path, np, "/dev/shm/sem.%s", semname + 1) >= np)
		return -ENAMETOOLONG;
	return 0;
}

/* Open the semaphore file without blocking or following links and check it: 0 and an fd, or
 * -EBADMSG (not one sem_open could have made), -EACCES (another user's, others may write). */
static int sem_file_open(const char *path, bool rdonly, int *fdp)
{
	struct glibc_sem g;
	struct stat st;
	int fd, err = 0;

	fd = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : -errno;
	if (fstat(fd, &st) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(sem_t))
		err = -EBADMSG;
	else if (st.st_uid != geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)))
		err = -EACCES;
	else if (pread(fd, &g, sizeof(g), 0) != (ssize_t)sizeof(g))
		err = -EBADMSG;
	else if ((g.data & 0xffffffffu) > SEM_VALUE_MAX || (g.private_ != 0 && g.private_ != 128))
		err = -EBADMSG;
	if (err) {
		close(fd);
		return err;
	}
	*fdp = fd;
	return 0;
}

static struct sem_region *sr(struct shmkit_sem *s)
{
	return (struct sem_region *)s->r.hdr;
}

SHMKIT__API int shmkit_sem_create(const char *name, unsigned initial, unsigned flags,
				  unsigned mode, shmkit_sem **out)
{
	char semname[NAME_MAX + 1], path[NAME_MAX + 16];
	struct shmkit_sem *s;
	int err;

	if (!out || (flags & ~SHMKIT_BOUNDED) || initial > SEM_VALUE_MAX || (mode & ~07777u))
		return -EINVAL;
	if (name && (err = sem_name(name, semname, sizeof(semname))))
		return err;
	if (!(s = shmkit__handle_new(sizeof(*s))))
		return -ENOMEM;
	err = shmkit__region_create(name, SHMKIT_KIND_SEM, flags, sizeof(struct sem_region),
				    SHMKIT__SEATS_DEFAULT, mode, &s->r);
	if (err)
		goto fail;
	s->r.hdr->param[0] = initial;
	s->initial = initial;
	s->bounded = flags & SHMKIT_BOUNDED;
	shmkit__region_set_lock(&s->r, &sr(s)->guard);
	if (!name) {
		if (sem_init(&sr(s)->anon, 1, initial) < 0)
			goto fail_errno;
		s->sem = &sr(s)->anon;
	} else {
		/* Exclusive: a semaphore of that name may be someone's own (sem_open is
		 * anyone's), so it is never adopted nor removed here; a leftover of ours
		 * (no region beside it) is what `shmkit rm NAME` removes. */
		s->sem = sem_open(semname, O_CREAT | O_EXCL, 0600, initial);
		if (s->sem == SEM_FAILED)
			goto fail_errno;
		/* sem_open applies the umask; fix the mode as create does for the region. */
		snprintf(path, sizeof(path), "/dev/shm/sem.%s", semname + 1);
		if (chmod(path, mode ? mode : 0600) < 0) {
			err = -errno;
			sem_close(s->sem);
			sem_unlink(semname);
			goto fail_region;
		}
	}
	shmkit__region_ready(&s->r);
	*out = s;
	return 0;

fail_errno:
	err = -errno;
fail_region:
	shmkit__region_abort(&s->r);
fail:
	free(s);
	return err;
}

SHMKIT__API int shmkit_sem_open(const char *name, shmkit_sem **out)
{
	char semname[NAME_MAX + 1], path[NAME_MAX + 16];
	struct shmkit_sem *s;
	uint64_t initial;
	int err, fd;

	if (!out)
		return -EINVAL;
	if ((err = sem_path(name, semname, sizeof(semname), path, sizeof(path))))
		return err;
	if (!(s = shmkit__handle_new(sizeof(*s))))
		return -ENOMEM;
	if ((err = shmkit__region_open(name, SHMKIT_KIND_SEM, &s->r)))
		goto fail;
	initial = s->r.hdr->param[0];
	if (!shmkit__obj_size_is(&s->r, sizeof(struct sem_region)) || initial > SEM_VALUE_MAX ||
	    s->r.lk != &sr(s)->guard || (s->r.hdr->flags & ~SHMKIT_BOUNDED)) {
		err = -EBADMSG;
		goto fail_region;
	}
	s->initial = (unsigned)initial;
	s->bounded = s->r.hdr->flags & SHMKIT_BOUNDED;
	/* Checked first, then opened by sem_open, which maps it unchecked. */
	if ((err = sem_file_open(path, false, &fd)))
		goto fail_region;
	close(fd);
	s->sem = sem_open(semname, 0);
	if (s->sem == SEM_FAILED) {
		err = -errno;
		goto fail_region;
	}
	*out = s;
	return 0;

fail_region:
	shmkit__region_close(&s->r);
fail:
	free(s);
	return err;
}

SHMKIT__API int shmkit_sem_close(shmkit_sem *s)
{
	if (!s)
		return 0;
	if (s->r.named)
		sem_close(s->sem);
	shmkit__region_close(&s->r);
	free(s);
	return 0;
}

SHMKIT__API int shmkit_sem_unlink(const char *name)
{
	char semname[NAME_MAX + 1];
	int err, err2;

	if ((err = sem_name(name, semname, sizeof(semname))))
		return err;
	/* The semaphore first: a kill between the two leaves the region, which rm finds. */
	err2 = sem_unlink(semname) < 0 ? -errno : 0;
	err = shmkit__region_unlink(name);
	if (err == -ENOENT && err2 != -ENOENT)
		return err2;
	return err ? err : err2 == -ENOENT ? 0 : err2;
}

static int sem_acquire(shmkit_sem *s, int64_t deadline)
{
	struct timespec ts;

	for (;;) {
		int r;

		if (deadline == SHMKIT__FOREVER) {
			r = sem_wait(s->sem);
		} else if (deadline <= shmkit__now()) {
			r = sem_trywait(s->sem);
			if (r < 0 && errno == EAGAIN)
				return -EAGAIN;
		} else {
			shmkit__deadline_ts(deadline, &ts);
			r = sem_clockwait(s->sem, CLOCK_MONOTONIC, &ts);
		}
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

SHMKIT__API int shmkit_sem_acquire(shmkit_sem *s)
{
	return sem_acquire(s, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_sem_acquire_try(shmkit_sem *s)
{
	return sem_acquire(s, 0);
}

SHMKIT__API int shmkit_sem_acquire_timeout(shmkit_sem *s, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	return rc ? rc : shmkit__timed(sem_acquire(s, deadline));
}

SHMKIT__API int shmkit_sem_release(shmkit_sem *s)
{
	int v, err;

	if (!s->bounded)
		return sem_post(s->sem) < 0 ? -errno : 0;
	err = shmkit__lk_acquire(&s->r, shmkit__deadline(SHMKIT__STATE_LOCK_NS), false);
	if (err < 0)
		return err;
	if (sem_getvalue(s->sem, &v) < 0)
		err = -errno;
	else if (v >= 0 && (unsigned)v >= s->initial)
		err = -EOVERFLOW;
	else
		err = sem_post(s->sem) < 0 ? -errno : 0;
	shmkit__lk_release(&s->r);
	return err;
}

SHMKIT__API int shmkit_sem_value(shmkit_sem *s)
{
	int v;

	if (sem_getvalue(s->sem, &v) < 0)
		return -errno;
	return v < 0 ? 0 : v;
}

int shmkit__sem_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	char semname[NAME_MAX + 1], path[NAME_MAX + 16];
	sem_t *sem;
	int v, err, fd;

	if (!shmkit__obj_size_is(r, sizeof(struct sem_region)) || r->hdr->param[0] > SEM_VALUE_MAX)
		return -EBADMSG;
	if (!r->named)
		return -EINVAL;
	if ((err = sem_path(r->name, semname, sizeof(semname), path, sizeof(path))))
		return err;
	/* Read-only and mapped here, not through sem_open (which wants write access): whoever
	 * may read the object may see its value. */
	if ((err = sem_file_open(path, true, &fd)))
		return err;
	sem = mmap(NULL, sizeof(sem_t), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (sem == MAP_FAILED)
		return -errno;
	err = sem_getvalue(sem, &v) < 0 ? -errno : 0;
	munmap(sem, sizeof(sem_t));
	if (err)
		return err;
	info->flags = r->hdr->flags & SHMKIT_BOUNDED;
	info->value = v < 0 ? 0 : v;
	return 0;
}

/* The named semaphore of object `name` when no region holds the name: a leftover (a kill
 * between the two unlinks, or during create). 0 when one was removed, -ENOENT when none. */
int shmkit__sem_orphan_remove(const char *name, bool dry)
{
	char semname[NAME_MAX + 1], path[NAME_MAX + 16];
	struct stat st;
	int err;

	if ((err = sem_path(name, semname, sizeof(semname), path, sizeof(path))))
		return err;
	if (lstat(path, &st) < 0)
		return -errno;
	if (dry)
		return 0;
	return sem_unlink(semname) < 0 ? -errno : 0;
}
