/*
 * libFuzzer harness: arbitrary bytes as a shmkit region.
 *
 * Each input becomes the whole content of a fresh named region (file size = input size), which
 * is then inspected (shmkit_info), opened as the kind its header claims, and poked with the
 * non-blocking and short-timeout calls of that kind. Whatever the bytes, every call must
 * return (an error is fine) without reading or writing out of bounds, crashing or hanging:
 * ASan and UBSan watch the first two, libFuzzer's -timeout the last.
 *
 * Built by `make fuzz` (clang -fsanitize=fuzzer,address,undefined, with the library's sources
 * compiled in, so the fuzzer sees their coverage) and not by `make check`;
 * tests/check_fuzz_regressions links this file too and replays tests/fuzz/regressions/ through
 * fuzz_region_one().
 *
 * Inputs shorter than a header or with a zero magic are dropped: open waits about a second for
 * a creator that may still be writing such a region, which would make each input slow. Nothing
 * else needs patching: an INIT region without its creator's lease is refused at once, and a
 * lock word in the region either names a seat (whose holder, having no lease, is recovered as
 * dead) or is refused as corrupt, so no input can make an internal acquisition wait for ever.
 *
 * SHMKIT_FUZZ_SEEDS=DIR makes the binary write one valid region of each kind into DIR (the seed
 * corpus) and exit, instead of fuzzing.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "shmkit.h"

/* Also called by tests/check_fuzz_regressions.c. */
int fuzz_region_one(const char *name, const uint8_t *data, size_t size);
int fuzz_region_seeds(const char *dir);

#define SHORT_NS 1000000LL /* 1 ms: timed calls must not make an input slow */
#define MAX_INPUT (4u << 20)

static char fz_name[64];

static void set_name(void)
{
	if (!fz_name[0])
		snprintf(fz_name, sizeof(fz_name), "/shmkit-fuzz-%d", (int)getpid());
}

/* ------------------------------------------------------------------------------------------ */
/* The calls, kind by kind. Results are ignored: only crashes, sanitizer reports and hangs
 * count. A lock taken is always released before its region is unmapped: glibc links held
 * robust mutexes into a per-thread list that must never point into unmapped memory. */

static void poke_lock(shmkit_lock *l)
{
	int rc;

	shmkit_lock_holder(l);
	rc = shmkit_lock_acquire_try(l);
	if (rc >= 0) {
		shmkit_lock_acquire_try(l); /* recursive or -EDEADLK */
		shmkit_lock_release(l);
		shmkit_lock_release(l);
	}
	rc = shmkit_lock_acquire_timeout(l, SHORT_NS);
	if (rc >= 0)
		shmkit_lock_release(l);
	shmkit_lock_release(l); /* not held: -EPERM */
}

static void poke_cells(const char *name, int kind)
{
	shmkit_value *v;
	shmkit_array *a;
	int64_t x, e = 0;
	size_t n;

	if (kind == SHMKIT_KIND_VALUE) {
		if (shmkit_value_open(name, &v))
			return;
		x = shmkit_value_load(v);
		shmkit_value_store(v, x ^ 1);
		shmkit_value_cas(v, &e, 5);
		shmkit_value_add(v, 1, SHMKIT_ADD_ATOMIC, &x);
		shmkit_value_add(v, 1, SHMKIT_ADD_RACY, &x);
		poke_lock(shmkit_value_lock(v));
		shmkit_value_close(v);
		return;
	}
	if (shmkit_array_open(name, &a))
		return;
	n = shmkit_array_len(a);
	shmkit_array_load(a, 0, &x);
	shmkit_array_load(a, n - 1, &x);
	shmkit_array_load(a, n, &x); /* -ERANGE */
	shmkit_array_store(a, n - 1, 7);
	shmkit_array_cas(a, n / 2, &e, 3);
	shmkit_array_add(a, 0, 2, SHMKIT_ADD_ATOMIC, &x);
	poke_lock(shmkit_array_lock(a));
	shmkit_array_close(a);
}

static void poke_queue(const char *name)
{
	struct shmkit_queue_stats st;
	unsigned char msg[64] = { 1, 2, 3 };
	shmkit_queue *q;
	uint32_t max;
	void *buf;
	int i;

	if (shmkit_queue_open(name, &q))
		return;
	shmkit_queue_size(q);
	shmkit_queue_empty(q);
	shmkit_queue_full(q);
	max = shmkit_queue_max_size(q);
	buf = malloc(max ? max : 1);
	if (buf) {
		for (i = 0; i < 3; i++) {
			shmkit_queue_get_try(q, buf, max);
			shmkit_queue_get_try(q, buf, max / 2);
		}
		shmkit_queue_get_timeout(q, buf, max, SHORT_NS);
		free(buf);
	}
	for (i = 0; i < 3; i++)
		shmkit_queue_put_try(q, msg, max < sizeof(msg) ? max : sizeof(msg));
	shmkit_queue_put_timeout(q, msg, 0, SHORT_NS);
	shmkit_queue_stats(q, &st);
	shmkit_queue_task_done(q);
	shmkit_queue_join_timeout(q, SHORT_NS);
	shmkit_queue_detach_writer(q);
	shmkit_queue_attach_writer(q);
	shmkit_queue_close(q);
}

static void poke_pipe(const char *name)
{
	unsigned char msg[32] = { 9 }, buf[256];
	shmkit_pipe *p;
	int end;

	for (end = 0; end < 2; end++) {
		if (shmkit_pipe_open(name, &p))
			return;
		if (shmkit_pipe_attach(p, end) == 0) {
			shmkit_pipe_recv_try(p, buf, sizeof(buf));
			shmkit_pipe_send_try(p, msg, sizeof(msg));
			shmkit_pipe_send_timeout(p, msg, 1, SHORT_NS);
			shmkit_pipe_recv_timeout(p, buf, 1, SHORT_NS);
			shmkit_pipe_recv_try(p, buf, sizeof(buf));
		}
		shmkit_pipe_close(p);
	}
}

static void poke_sem(const char *name)
{
	shmkit_sem *s;

	if (shmkit_sem_open(name, &s))
		return;
	shmkit_sem_value(s);
	if (shmkit_sem_acquire_try(s) == 0)
		shmkit_sem_release(s);
	if (shmkit_sem_acquire_timeout(s, SHORT_NS) == 0)
		shmkit_sem_release(s);
	shmkit_sem_release(s);
	shmkit_sem_close(s);
}

static void poke_event(const char *name)
{
	shmkit_event *e;

	if (shmkit_event_open(name, &e))
		return;
	shmkit_event_is_set(e);
	shmkit_event_wait_timeout(e, SHORT_NS);
	shmkit_event_set(e);
	shmkit_event_wait_timeout(e, SHORT_NS);
	shmkit_event_clear(e);
	shmkit_event_close(e);
}

static void poke_cond(const char *name)
{
	shmkit_cond *c;
	shmkit_lock *l;

	if (shmkit_cond_open(name, &c))
		return;
	l = shmkit_cond_lock(c);
	shmkit_cond_notify(c, 1); /* not held: -EPERM */
	if (shmkit_lock_acquire_timeout(l, SHORT_NS) >= 0) {
		shmkit_cond_notify(c, 1);
		shmkit_cond_notify_all(c);
		shmkit_cond_wait_timeout(c, SHORT_NS); /* returns holding the lock */
		shmkit_lock_release(l);
	}
	shmkit_cond_close(c);
}

static void poke_barrier(const char *name)
{
	shmkit_barrier *b;

	if (shmkit_barrier_open(name, &b))
		return;
	shmkit_barrier_parties(b);
	shmkit_barrier_n_waiting(b);
	shmkit_barrier_broken(b);
	shmkit_barrier_wait_timeout(b, SHORT_NS);
	shmkit_barrier_reset(b);
	shmkit_barrier_abort(b);
	shmkit_barrier_close(b);
}

static void poke(const char *name, uint32_t kind)
{
	struct shmkit_info info;
	shmkit_lock *l;

	shmkit_info(name, &info);
	switch (kind) {
	case SHMKIT_KIND_VALUE:
	case SHMKIT_KIND_ARRAY:
		poke_cells(name, (int)kind);
		break;
	case SHMKIT_KIND_LOCK:
		if (shmkit_lock_open(name, &l) == 0) {
			poke_lock(l);
			shmkit_lock_close(l);
		}
		break;
	case SHMKIT_KIND_SEM:
		poke_sem(name);
		break;
	case SHMKIT_KIND_QUEUE:
		poke_queue(name);
		break;
	case SHMKIT_KIND_PIPE:
		poke_pipe(name);
		break;
	case SHMKIT_KIND_EVENT:
		poke_event(name);
		break;
	case SHMKIT_KIND_COND:
		poke_cond(name);
		break;
	case SHMKIT_KIND_BARRIER:
		poke_barrier(name);
		break;
	default:
		/* A kind nobody knows: every open must refuse it. */
		if (shmkit_lock_open(name, &l) == 0)
			shmkit_lock_close(l);
		break;
	}
	shmkit_info(name, &info);
}

/* The semaphore a sem region names: made so that sem_open succeeds and the region's own
 * validation is what gets exercised. */
static void sem_side(const char *name, bool make)
{
	char semname[SHMKIT_NAME_MAX + 16];
	sem_t *s;

	snprintf(semname, sizeof(semname), "%s.sem", name);
	if (!make) {
		sem_unlink(semname);
		return;
	}
	s = sem_open(semname, O_CREAT, 0600, 1);
	if (s != SEM_FAILED)
		sem_close(s);
}

int fuzz_region_one(const char *name, const uint8_t *data, size_t size)
{
	struct shmkit__hdr h;
	uint32_t kind;
	size_t done;
	ssize_t n;
	int fd;

	if (size < sizeof(h) || size > MAX_INPUT)
		return 0;
	memcpy(&h, data, sizeof(h));
	if (h.magic == 0)
		return 0;
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* Left by an input that crashed this process's predecessor with the same pid. */
		shm_unlink(name);
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return 0;
	for (done = 0; done < size; done += (size_t)n) {
		n = pwrite(fd, data + done, size - done, (off_t)done);
		if (n <= 0)
			break;
	}
	close(fd);
	kind = h.kind;
	if (done == size) {
		if (kind == SHMKIT_KIND_SEM)
			sem_side(name, true);
		poke(name, kind);
		if (kind == SHMKIT_KIND_SEM)
			sem_side(name, false);
	}
	shm_unlink(name);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Seed corpus: one valid region of each kind, as the library makes them. */

static int dump(const char *dir, const char *file, const char *name)
{
	char path[4096];
	unsigned char buf[65536];
	ssize_t n;
	int in, out, err = 0;

	in = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
	if (in < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		close(in);
		return -errno;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			err = -EIO;
			break;
		}
	close(in);
	close(out);
	return err;
}

int fuzz_region_seeds(const char *dir)
{
	struct shmkit_queue_attr qa = { .capacity = 3, .max_size = 24 };
	unsigned char msg[24] = "seed message";
	char name[96], semname[112];
	shmkit_value *v;
	shmkit_array *a;
	shmkit_lock *l;
	shmkit_sem *s;
	shmkit_queue *q;
	shmkit_pipe *p;
	shmkit_event *e;
	shmkit_cond *c;
	shmkit_barrier *b;
	int err = 0, rc;

	set_name();
	snprintf(name, sizeof(name), "%s-seed", fz_name);
	snprintf(semname, sizeof(semname), "%s.sem", name);
#define SEED(file, make, close_fn, unlink_fn)                                            \
	do {                                                                             \
		if ((rc = (make)) == 0) {                                                \
			rc = dump(dir, file, name);                                      \
			close_fn;                                                        \
			unlink_fn(name);                                                 \
		}                                                                        \
		if (rc) {                                                                \
			fprintf(stderr, "fuzz seed %s: %s\n", file, shmkit_strerror(rc)); \
			err = 1;                                                         \
		}                                                                        \
	} while (0)
	SEED("value", shmkit_value_create(name, 42, 0, &v), shmkit_value_close(v),
	     shmkit_value_unlink);
	SEED("array", shmkit_array_create(name, 5, 0, &a), shmkit_array_close(a),
	     shmkit_array_unlink);
	SEED("lock", shmkit_lock_create(name, 0, 0, &l), shmkit_lock_close(l), shmkit_lock_unlink);
	SEED("rlock", shmkit_lock_create(name, SHMKIT_RECURSIVE, 0, &l), shmkit_lock_close(l),
	     shmkit_lock_unlink);
	SEED("sem", shmkit_sem_create(name, 2, SHMKIT_BOUNDED, 0, &s), shmkit_sem_close(s),
	     shmkit_sem_unlink);
	/* A queue with messages in it, one taken: head, tail and slots away from zero. */
	rc = shmkit_queue_create(name, &qa, &q);
	if (rc == 0 && (shmkit_queue_put(q, msg, 12) || shmkit_queue_put(q, msg, 24) ||
			shmkit_queue_get_try(q, msg, sizeof(msg)) < 0)) {
		shmkit_queue_close(q);
		shmkit_queue_unlink(name);
		rc = -EIO;
	}
	SEED("queue", rc, shmkit_queue_close(q), shmkit_queue_unlink);
	qa.flags = SHMKIT_JOINABLE;
	qa.capacity = 1;
	qa.max_size = 0;
	SEED("jqueue", shmkit_queue_create(name, &qa, &q), shmkit_queue_close(q),
	     shmkit_queue_unlink);
	SEED("pipe", shmkit_pipe_create(name, 2, 16, 0, 0, &p), shmkit_pipe_close(p),
	     shmkit_pipe_unlink);
	SEED("spipe", shmkit_pipe_create(name, 2, 8, SHMKIT_SIMPLEX, 0, &p), shmkit_pipe_close(p),
	     shmkit_pipe_unlink);
	SEED("event", shmkit_event_create(name, 0, &e), shmkit_event_close(e),
	     shmkit_event_unlink);
	SEED("cond", shmkit_cond_create(name, 0, &c), shmkit_cond_close(c), shmkit_cond_unlink);
	SEED("barrier", shmkit_barrier_create(name, 3, 0, &b), shmkit_barrier_close(b),
	     shmkit_barrier_unlink);
#undef SEED
	sem_unlink(semname);
	return err;
}

#ifndef FUZZ_REGION_NO_FUZZER
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("SHMKIT_FUZZ_SEEDS");

	set_name();
	if (dir)
		exit(fuzz_region_seeds(dir));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	set_name();
	return fuzz_region_one(fz_name, data, size);
}
#endif
