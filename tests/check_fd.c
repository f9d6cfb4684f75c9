/* Pollable descriptors of queues, pipe ends and events: level-triggered readiness (readable at
 * first, not after a _try returned -EAGAIN, readable again when a process that never saw the
 * descriptor puts, sends or sets, and at EOF for good); EOF from a writer that was killed; a
 * waiter killed with its descriptor armed costs producers nothing and its socket file goes with
 * unlink. */
#include "config.h"

#include <dirent.h>
#include <poll.h>
#include <sys/epoll.h>

#include "testutil.h"

#define MS TU_NS_PER_MS

static char child_name[TU_NAME_SIZE];

/* Readable within timeout_ms? */
static int readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int rc;

	while ((rc = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	return rc > 0 && (p.revents & POLLIN);
}

/* Whether the descriptor's notification socket (not just its slice timer, which makes it
 * readable once a second anyway) becomes ready within timeout_ms. The descriptor is an epoll
 * set whose events name their members; tests may look inside, programs need not. */
static int notified(int fd, int timeout_ms)
{
	int64_t deadline = tu_now_ns() + timeout_ms * MS;
	struct epoll_event ev[4];
	struct stat st;
	int n, i;

	do {
		n = epoll_wait(fd, ev, 4, 10);
		for (i = 0; i < n; i++)
			if (fstat(ev[i].data.fd, &st) == 0 && S_ISSOCK(st.st_mode))
				return 1;
		if (n > 0)
			tu_sleep_ms(10); /* only the timer: it stays ready until a _try */
	} while (tu_now_ns() < deadline);
	return 0;
}

/* A child that shares nothing with the parent's descriptors: it closes every inherited one. */
static void close_inherited(void)
{
	int fd;

	for (fd = 3; fd < 1024; fd++)
		close(fd);
}

static int put_one(void *arg)
{
	shmkit_queue *q;
	int v = (int)(intptr_t)arg;

	close_inherited();
	if (shmkit_queue_open(child_name, &q))
		return 1;
	if (shmkit_queue_put(q, &v, sizeof(v)))
		return 2;
	shmkit_queue_close(q);
	return 0;
}

START_TEST(test_queue_fd)
{
	struct shmkit_queue_attr a = { .capacity = 4, .max_size = 8, .writers = 2 };
	shmkit_queue *q;
	int fd, v;

	ck_assert_int_eq(shmkit_queue_create(tu_name_kind(child_name, "qfd", shmkit_queue_unlink),
					     &a, &q),
			 0);
	fd = shmkit_queue_fd(q);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmkit_queue_fd(q), fd); /* the same one */
	ck_assert(readable(fd, 0));               /* at first (spuriously) */
	ck_assert_int_eq(shmkit_queue_get_try(q, &v, sizeof(v)), -EAGAIN);
	ck_assert(!readable(fd, 50));             /* armed, nothing queued */
	ck_assert_int_eq(tu_wait_child(tu_fork(put_one, (void *)(intptr_t)11), 10), 0);
	ck_assert(notified(fd, 5000));
	ck_assert(readable(fd, 0));
	ck_assert(readable(fd, 0)); /* level: stays readable until a _try says -EAGAIN */
	ck_assert_int_eq(shmkit_queue_get_try(q, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(v, 11);
	ck_assert_int_eq(shmkit_queue_get_try(q, &v, sizeof(v)), -EAGAIN);
	ck_assert(!readable(fd, 50));
	/* A message queued before the arming: the _try that would re-arm returns it instead. */
	ck_assert_int_eq(tu_wait_child(tu_fork(put_one, (void *)(intptr_t)12), 10), 0);
	ck_assert_int_eq(shmkit_queue_get_try(q, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(v, 12);
	/* Both writers came and went: EOF, and readable for good. */
	ck_assert(notified(fd, 5000));
	ck_assert_int_eq(shmkit_queue_get_try(q, &v, sizeof(v)), -EPIPE);
	ck_assert(readable(fd, 0));
	ck_assert_int_eq(shmkit_queue_get_try(q, &v, sizeof(v)), -EPIPE);
	shmkit_queue_close(q);
}
END_TEST

static int writer_then_die(void *arg)
{
	shmkit_queue *q;

	(void)arg;
	close_inherited();
	if (shmkit_queue_open(child_name, &q) || shmkit_queue_attach_writer(q))
		return 1;
	raise(SIGKILL);
	return 2;
}

/* EOF from a writer that was killed reaches an event loop too (the slice timer makes the
 * descriptor readable and the next _try looks for dead peers). */
START_TEST(test_queue_fd_dead_writer)
{
	struct shmkit_queue_attr a = { .capacity = 4, .max_size = 8 };
	shmkit_queue *q;
	int64_t deadline;
	int fd, v, rc = -EAGAIN;

	ck_assert_int_eq(shmkit_queue_create(tu_name_kind(child_name, "qfdd", shmkit_queue_unlink),
					     &a, &q),
			 0);
	fd = shmkit_queue_fd(q);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmkit_queue_get_try(q, &v, sizeof(v)), -EAGAIN);
	ck_assert_int_eq(tu_wait_child(tu_fork(writer_then_die, NULL), 10), 128 + SIGKILL);
	deadline = tu_now_ns() + 10000 * MS;
	while (rc == -EAGAIN && tu_now_ns() < deadline) {
		if (readable(fd, 5000))
			rc = shmkit_queue_get_try(q, &v, sizeof(v));
	}
	ck_assert_int_eq(rc, -EPIPE);
	shmkit_queue_close(q);
}
END_TEST

static int arm_then_die(void *arg)
{
	shmkit_queue *q;
	int v, fd;

	(void)arg;
	close_inherited();
	if (shmkit_queue_open(child_name, &q) || (fd = shmkit_queue_fd(q)) < 0)
		return 1;
	if (shmkit_queue_get_try(q, &v, sizeof(v)) != -EAGAIN)
		return 2;
	raise(SIGKILL);
	return 3;
}

/* The name prefix of the socket files of region `name` (its file's dev and ino). */
static void sockets_prefix(const char *name, char *prefix, size_t size)
{
	char path[TU_NAME_SIZE + 16];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	ck_assert_int_eq(stat(path, &st), 0);
	snprintf(prefix, size, ".shmkit-fd-%llx-%llx-", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
}

/* Socket files in /dev/shm whose names start with prefix. */
static int sockets(const char *prefix)
{
	struct dirent *d;
	DIR *dir = opendir("/dev/shm");
	int n = 0;

	ck_assert(dir != NULL);
	while ((d = readdir(dir)))
		n += !strncmp(d->d_name, prefix, strlen(prefix));
	closedir(dir);
	return n;
}

START_TEST(test_queue_fd_dead_waiter)
{
	struct shmkit_queue_attr a = { .capacity = 4, .max_size = 8 };
	shmkit_queue *q;
	char prefix[64];
	int i, v;

	ck_assert_int_eq(shmkit_queue_create(tu_name_kind(child_name, "qfdw", shmkit_queue_unlink),
					     &a, &q),
			 0);
	sockets_prefix(child_name, prefix, sizeof(prefix));
	ck_assert_int_eq(tu_wait_child(tu_fork(arm_then_die, NULL), 10), 128 + SIGKILL);
	ck_assert_int_eq(sockets(prefix), 1); /* left behind by the killed waiter */
	/* Producers go on: the first put's datagram is refused, after that nothing is tried. */
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(shmkit_queue_put_try(q, &i, sizeof(i)), 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(shmkit_queue_get(q, &v, sizeof(v)), sizeof(v));
		ck_assert_int_eq(v, i);
	}
	shmkit_queue_close(q);
	/* unlink takes the dead waiter's socket file along. */
	ck_assert_int_eq(shmkit_queue_unlink(child_name), 0);
	ck_assert_int_eq(sockets(prefix), 0);
}
END_TEST

static int send_one(void *arg)
{
	shmkit_pipe *p;

	(void)arg;
	close_inherited();
	if (shmkit_pipe_open(child_name, &p) || shmkit_pipe_attach(p, 0))
		return 1;
	if (shmkit_pipe_send(p, "hi", 2))
		return 2;
	shmkit_pipe_close(p); /* EOF for end 1 */
	return 0;
}

START_TEST(test_pipe_fd)
{
	shmkit_pipe *p;
	char buf[8];
	int fd;

	ck_assert_int_eq(shmkit_pipe_create(tu_name_kind(child_name, "pfd", shmkit_pipe_unlink), 4,
					    8, SHMKIT_SIMPLEX, 0, &p),
			 0);
	ck_assert_int_eq(shmkit_pipe_fd(p), -EBADF); /* not attached */
	ck_assert_int_eq(shmkit_pipe_attach(p, 1), 0);
	fd = shmkit_pipe_fd(p);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmkit_pipe_recv_try(p, buf, sizeof(buf)), -EAGAIN);
	ck_assert(!readable(fd, 50));
	ck_assert_int_eq(tu_wait_child(tu_fork(send_one, NULL), 10), 0);
	ck_assert(notified(fd, 5000));
	ck_assert_int_eq(shmkit_pipe_recv_try(p, buf, sizeof(buf)), 2);
	ck_assert_mem_eq(buf, "hi", 2);
	ck_assert_int_eq(shmkit_pipe_recv_try(p, buf, sizeof(buf)), -EPIPE);
	ck_assert(readable(fd, 0));
	shmkit_pipe_close(p);
}
END_TEST

/* A pipe end's descriptor is readable only when a receive would not block, or when some open
 * description of the pipe was closed for the last time (a process that had it open exited):
 * not at first, not while idle (no timer), not after the message was taken; readable when the
 * last holder of the other end dies, a death nobody else reports. */
static int hold_then_die(void *arg)
{
	shmkit_pipe *p;

	(void)arg;
	close_inherited();
	if (shmkit_pipe_open(child_name, &p) || shmkit_pipe_attach(p, 0))
		return 1;
	if (shmkit_pipe_send(p, "hi", 2))
		return 2;
	tu_sleep_ms(300);
	raise(SIGKILL);
	return 3;
}

START_TEST(test_pipe_fd_exact)
{
	shmkit_pipe *p;
	char buf[8];
	pid_t pid;
	int fd;

	ck_assert_int_eq(shmkit_pipe_create(tu_name_kind(child_name, "pfdx", shmkit_pipe_unlink), 4,
					    8, SHMKIT_SIMPLEX, 0, &p),
			 0);
	ck_assert_int_eq(shmkit_pipe_attach(p, 1), 0);
	fd = shmkit_pipe_fd(p);
	ck_assert_int_ge(fd, 0);
	ck_assert(!readable(fd, 1500)); /* longer than a slice: nothing spurious */
	pid = tu_fork(hold_then_die, NULL);
	/* The child's closes of what it inherited may come first: they too make it readable. */
	do
		ck_assert(readable(fd, 10000));
	while (shmkit_pipe_recv_try(p, buf, sizeof(buf)) == -EAGAIN);
	ck_assert_mem_eq(buf, "hi", 2);
	/* Taken: not readable again until the holder's death (well before 10 s). */
	ck_assert(!readable(fd, 100));
	ck_assert(readable(fd, 10000));
	ck_assert_int_eq(tu_wait_child(pid, 10), 128 + SIGKILL);
	ck_assert_int_eq(shmkit_pipe_recv_try(p, buf, sizeof(buf)), -EPIPE);
	ck_assert(readable(fd, 0));
	shmkit_pipe_close(p);
}
END_TEST

static int set_event(void *arg)
{
	shmkit_event *e;

	(void)arg;
	close_inherited();
	if (shmkit_event_open(child_name, &e) || shmkit_event_set(e))
		return 1;
	shmkit_event_close(e);
	return 0;
}

START_TEST(test_event_fd)
{
	shmkit_event *e;
	int fd;

	ck_assert_int_eq(shmkit_event_create(tu_name_kind(child_name, "efd", shmkit_event_unlink),
					     0, &e),
			 0);
	fd = shmkit_event_fd(e);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmkit_event_is_set(e), 0); /* arms it */
	ck_assert(!readable(fd, 50));
	ck_assert_int_eq(tu_wait_child(tu_fork(set_event, NULL), 10), 0);
	ck_assert(notified(fd, 5000));
	ck_assert_int_eq(shmkit_event_is_set(e), 1);
	ck_assert(readable(fd, 0)); /* level: set, so still readable */
	ck_assert_int_eq(shmkit_event_clear(e), 0);
	ck_assert_int_eq(shmkit_event_is_set(e), 0);
	ck_assert(!readable(fd, 50));
	shmkit_event_close(e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fd");
	TCase *tc;

	tu_skip_if_no_shm();
	tu_init();
	tc = tu_tcase(s, "fd", 60);
	tcase_add_test(tc, test_queue_fd);
	tcase_add_test(tc, test_queue_fd_dead_writer);
	tcase_add_test(tc, test_queue_fd_dead_waiter);
	tcase_add_test(tc, test_pipe_fd);
	tcase_add_test(tc, test_pipe_fd_exact);
	tcase_add_test(tc, test_event_fd);
	return tu_run(s);
}
