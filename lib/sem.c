/*
 * Semaphore and BoundedSemaphore.
 *
 * A named object is a small region (kind, initial value, flags, the bound's guard lock) plus a
 * POSIX named semaphore "<name>.sem" that unrelated processes sem_open by name. An anonymous one
 * keeps a process-shared sem_t in its mapping instead.
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
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

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
	if (name && (err = shmkit__sem_name(name, semname, sizeof(semname))))
		return err;
	if (!(s = shmkit__handle_new(sizeof(*s))))
		return -ENOMEM;
	err = shmkit__region_create(name, SHMKIT_KIND_SEM, flags, sizeof(struct sem_region), mode,
				    &s->r);
	if (err)
		goto fail;
	s->r.hdr->param[0] = initial;
	s->initial = initial;
	s->bounded = flags & SHMKIT_BOUNDED;
	if ((err = shmkit__lk_init(&sr(s)->guard, false)))
		goto fail_region;
	if (!name) {
		if (sem_init(&sr(s)->anon, 1, initial) < 0)
			goto fail_errno;
		s->sem = &sr(s)->anon;
	} else {
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
	char semname[NAME_MAX + 1];
	struct shmkit_sem *s;
	uint64_t initial;
	int err;

	if (!out)
		return -EINVAL;
	if ((err = shmkit__sem_name(name, semname, sizeof(semname))))
		return err;
	if (!(s = shmkit__handle_new(sizeof(*s))))
		return -ENOMEM;
	if ((err = shmkit__region_open(name, SHMKIT_KIND_SEM, &s->r)))
		goto fail;
	initial = s->r.hdr->param[0];
	if (s->r.size != sizeof(struct sem_region) || initial > SEM_VALUE_MAX) {
		err = -EBADMSG;
		goto fail_region;
	}
	s->initial = (unsigned)initial;
	s->bounded = s->r.hdr->flags & SHMKIT_BOUNDED;
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

	if ((err = shmkit__sem_name(name, semname, sizeof(semname))))
		return err;
	err = shmkit__region_unlink(name);
	err2 = sem_unlink(semname) < 0 ? -errno : 0;
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
			ts.tv_sec = deadline / 1000000000LL;
			ts.tv_nsec = deadline % 1000000000LL;
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
	int r;

	if (timeout_ns < 0)
		return -EINVAL;
	r = sem_acquire(s, shmkit__deadline(timeout_ns));
	return r == -EAGAIN ? -ETIMEDOUT : r;
}

SHMKIT__API int shmkit_sem_release(shmkit_sem *s)
{
	int v, err;

	if (!s->bounded)
		return sem_post(s->sem) < 0 ? -errno : 0;
	err = shmkit__lk_acquire(&sr(s)->guard, shmkit__deadline(SHMKIT__STATE_LOCK_NS));
	if (err < 0)
		return err;
	if (sem_getvalue(s->sem, &v) < 0)
		err = -errno;
	else if (v >= 0 && (unsigned)v >= s->initial)
		err = -EOVERFLOW;
	else
		err = sem_post(s->sem) < 0 ? -errno : 0;
	shmkit__lk_release(&sr(s)->guard);
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
	struct stat st;
	sem_t *sem;
	int v, err;

	if (r->size != sizeof(struct sem_region) || r->hdr->param[0] > SEM_VALUE_MAX)
		return -EBADMSG;
	if (!r->named)
		return -EINVAL;
	if ((err = shmkit__sem_name(r->name, semname, sizeof(semname))))
		return err;
	/* sem_open maps the file without checking its size: refuse one too short for a sem_t
	 * rather than take SIGBUS in sem_getvalue. */
	snprintf(path, sizeof(path), "/dev/shm/sem.%s", semname + 1);
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(sem_t))
		return -EBADMSG;
	sem = sem_open(semname, 0);
	if (sem == SEM_FAILED)
		return -errno;
	err = sem_getvalue(sem, &v) < 0 ? -errno : 0;
	sem_close(sem);
	if (err)
		return err;
	info->flags = r->hdr->flags & SHMKIT_BOUNDED;
	info->value = v < 0 ? 0 : v;
	return 0;
}
