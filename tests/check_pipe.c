/* Pipe: duplex and simplex ends across processes, ends shared as descriptors are, EOF on close
 * and on death (used or not), bad use. */
#include "config.h"

#include <pthread.h>

#include "testutil.h"

#define MS TU_NS_PER_MS

static shmkit_pipe *child_p;

static int echo_child(void *arg)
{
	char buf[64];
	int rc;

	(void)arg;
	if (shmkit_pipe_attach(child_p, 1))
		return 1;
	while ((rc = shmkit_pipe_recv_timeout(child_p, buf, sizeof(buf), 10000 * MS)) >= 0)
		if (shmkit_pipe_send(child_p, buf, (size_t)rc))
			return 2;
	return rc == -EPIPE ? 0 : 3;
}

START_TEST(test_duplex_echo)
{
	char name[TU_NAME_SIZE], buf[64];
	shmkit_pipe *p, *q;
	int i, rc;
	pid_t pid;

	ck_assert_int_eq(shmkit_pipe_create(tu_name_kind(name, "pipe", shmkit_pipe_unlink), 4, 64,
					    0, 0, &p), 0);
	ck_assert_int_eq(shmkit_pipe_open(name, &q), 0);
	child_p = q;
	pid = tu_fork(echo_child, NULL);
	ck_assert_int_eq(shmkit_pipe_attach(p, 0), 0);
	for (i = 0; i < 1000; i++) {
		int len = i % 65;
		memset(buf, i & 0xff, (size_t)len);
		ck_assert_int_eq(shmkit_pipe_send(p, buf, (size_t)len), 0);
		rc = shmkit_pipe_recv_timeout(p, buf, sizeof(buf), 10000 * MS);
		ck_assert_int_eq(rc, len);
		if (len)
			ck_assert_int_eq((unsigned char)buf[len - 1], i & 0xff);
	}
	ck_assert_int_eq(shmkit_pipe_send(p, buf, 65), -EMSGSIZE);
	shmkit_pipe_close(p); /* the child reads EOF and exits 0 */
	ck_assert_int_eq(tu_wait_child(pid, 20), 0);
	shmkit_pipe_close(q);
}
END_TEST

START_TEST(test_ends)
{
	char name[TU_NAME_SIZE], buf[8];
	shmkit_pipe *p, *q;

	ck_assert_int_eq(shmkit_pipe_create(tu_name_kind(name, "ends", shmkit_pipe_unlink), 2, 8,
					    SHMKIT_SIMPLEX, 0, &p), 0);
	ck_assert_int_eq(shmkit_pipe_open(name, &q), 0);
	ck_assert_int_eq(shmkit_pipe_send(p, "a", 1), -EBADF); /* no end yet */
	ck_assert_int_eq(shmkit_pipe_attach(p, 2), -EINVAL);
	ck_assert_int_eq(shmkit_pipe_attach(p, 0), 0);
	ck_assert_int_eq(shmkit_pipe_attach(p, 0), 0);
	ck_assert_int_eq(shmkit_pipe_attach(p, 1), -EBUSY); /* a handle holds one end */
	ck_assert_int_eq(shmkit_pipe_attach(q, 1), 0);
	/* Simplex: end 0 sends, end 1 receives. */
	ck_assert_int_eq(shmkit_pipe_recv_try(p, buf, sizeof(buf)), -EBADF);
	ck_assert_int_eq(shmkit_pipe_send(q, "a", 1), -EBADF);
	ck_assert_int_eq(shmkit_pipe_send(p, "ab", 2), 0);
	ck_assert_int_eq(shmkit_pipe_send(p, "c", 1), 0);
	ck_assert_int_eq(shmkit_pipe_send_try(p, "d", 1), -EAGAIN);
	ck_assert_int_eq(shmkit_pipe_send_timeout(p, "d", 1, 30 * MS), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_pipe_recv(q, buf, sizeof(buf)), 2);
	ck_assert_int_eq(shmkit_pipe_recv(q, buf, sizeof(buf)), 1);
	ck_assert_int_eq(shmkit_pipe_recv_timeout(q, buf, sizeof(buf), 30 * MS), -ETIMEDOUT);
	shmkit_pipe_close(p);
	ck_assert_int_eq(shmkit_pipe_recv(q, buf, sizeof(buf)), -EPIPE);
	shmkit_pipe_close(q);
	/* A closed end is not handed out again. */
	ck_assert_int_eq(shmkit_pipe_open(name, &p), 0);
	ck_assert_int_eq(shmkit_pipe_attach(p, 0), -EPIPE);
	shmkit_pipe_close(p);
}
END_TEST

static int send_then_die(void *arg)
{
	(void)arg;
	if (shmkit_pipe_attach(child_p, 1) || shmkit_pipe_send(child_p, "last", 4))
		return 1;
	raise(SIGKILL);
	return 2;
}

START_TEST(test_peer_death)
{
	char buf[8];
	shmkit_pipe *p;
	int64_t t0;
	pid_t pid;

	ck_assert_int_eq(shmkit_pipe_create(NULL, 4, 8, 0, 0, &p), 0);
	child_p = p;
	pid = tu_fork(send_then_die, NULL);
	ck_assert_int_eq(shmkit_pipe_attach(p, 0), 0);
	ck_assert_int_eq(tu_wait_child(pid, 10), 128 + SIGKILL);
	/* What it sent before dying is delivered, then EOF, and sends fail. */
	ck_assert_int_eq(shmkit_pipe_recv_timeout(p, buf, sizeof(buf), 10000 * MS), 4);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_pipe_recv_timeout(p, buf, sizeof(buf), 10000 * MS), -EPIPE);
	ck_assert_msg(tu_now_ns() - t0 < 2000 * MS, "EOF after death took too long");
	ck_assert_int_eq(shmkit_pipe_send(p, "x", 1), -EPIPE);
	shmkit_pipe_close(p);
}
END_TEST

/* ---- ends shared as descriptors ------------------------------------------------------------ */

/* A duplex pipe (capacity cap, 8-byte messages) with end 0 held by *a and end 1 by *b. */
static void pair(char *name, const char *tag, uint32_t cap, shmkit_pipe **a, shmkit_pipe **b)
{
	ck_assert_int_eq(shmkit_pipe_create(tu_name_kind(name, tag, shmkit_pipe_unlink), cap, 8, 0,
					    0, a), 0);
	ck_assert_int_eq(shmkit_pipe_open(name, b), 0);
	ck_assert_int_eq(shmkit_pipe_attach(*a, 0), 0);
	ck_assert_int_eq(shmkit_pipe_attach(*b, 1), 0);
}

#define SENDERS 5
#define PER_SENDER 2000

static shmkit_pipe *child_end;

static int send_many(void *arg)
{
	uint32_t msg[2] = { (uint32_t)(intptr_t)arg, 0 };

	/* The handle was attached by the parent: the child holds and uses it without attaching. */
	for (msg[1] = 0; msg[1] < PER_SENDER; msg[1]++)
		if (shmkit_pipe_send_timeout(child_end, msg, sizeof(msg), 10000 * MS))
			return 1;
	return 0;
}

START_TEST(test_many_senders_one_end)
{
	uint32_t next[SENDERS] = { 0 }, msg[2];
	pid_t pids[SENDERS];
	shmkit_pipe *a, *b;
	char name[TU_NAME_SIZE];
	int i, rc;

	pair(name, "many", 16, &a, &b);
	child_end = a;
	for (i = 0; i < SENDERS; i++)
		pids[i] = tu_fork(send_many, (void *)(intptr_t)i);
	shmkit_pipe_close(a); /* the children hold end 0 now */
	for (i = 0; i < SENDERS * PER_SENDER; i++) {
		rc = shmkit_pipe_recv_timeout(b, msg, sizeof(msg), 10000 * MS);
		ck_assert_int_eq(rc, (int)sizeof(msg));
		ck_assert_uint_lt(msg[0], SENDERS);
		ck_assert_uint_eq(msg[1], next[msg[0]]); /* each sender's messages in order */
		next[msg[0]]++;
	}
	ck_assert_int_eq(tu_wait_children(pids, SENDERS, 20), 0);
	/* Every holder of end 0 is gone. */
	ck_assert_int_eq(shmkit_pipe_recv_timeout(b, msg, sizeof(msg), 10000 * MS), -EPIPE);
	shmkit_pipe_close(b);
}
END_TEST

static int nap_and_leave(void *arg)
{
	tu_sleep_ms(200);
	if (arg)
		raise(SIGKILL);
	return 0;
}

/* A peer end held only by a child that never uses it: EOF when the child exits or dies. */
static void unused_end_eof(bool killed)
{
	char name[TU_NAME_SIZE], buf[8];
	shmkit_pipe *a, *b;
	int64_t t0;
	pid_t pid;

	pair(name, "unused", 4, &a, &b);
	pid = tu_fork(nap_and_leave, killed ? (void *)1 : NULL);
	shmkit_pipe_close(b); /* before the child could have used it */
	/* The child holds end 1 from the fork on: no EOF while it lives. */
	ck_assert_int_eq(shmkit_pipe_recv_try(a, buf, sizeof(buf)), -EAGAIN);
	t0 = tu_now_ns();
	ck_assert_int_eq(shmkit_pipe_recv_timeout(a, buf, sizeof(buf), 10000 * MS), -EPIPE);
	ck_assert_msg(tu_now_ns() - t0 < 3000 * MS, "EOF after the last holder took too long");
	ck_assert_int_eq(shmkit_pipe_send(a, "x", 1), -EPIPE);
	ck_assert_int_eq(tu_wait_child(pid, 10), killed ? 128 + SIGKILL : 0);
	shmkit_pipe_close(a);
}

START_TEST(test_unused_end_exits)
{
	unused_end_eof(false);
}
END_TEST

START_TEST(test_unused_end_killed)
{
	unused_end_eof(true);
}
END_TEST

/* A child that only looks (wait) and exits takes nothing with it. */
static int look_and_leave(void *arg)
{
	(void)arg;
	return shmkit_pipe_wait_timeout(child_end, 10000 * MS) == 0 ? 0 : 1;
}

START_TEST(test_wait_takes_nothing)
{
	char name[TU_NAME_SIZE], buf[8];
	shmkit_pipe *a, *b;
	pid_t pid;

	pair(name, "look", 4, &a, &b);
	ck_assert_int_eq(shmkit_pipe_wait_try(b), -EAGAIN);
	ck_assert_int_eq(shmkit_pipe_wait_timeout(b, 20 * MS), -ETIMEDOUT);
	child_end = b;
	pid = tu_fork(look_and_leave, NULL);
	tu_sleep_ms(50);
	ck_assert_int_eq(shmkit_pipe_send(a, "msg", 3), 0);
	ck_assert_int_eq(tu_wait_child(pid, 20), 0);
	ck_assert_int_eq(shmkit_pipe_wait(b), 0);
	ck_assert_int_eq(shmkit_pipe_recv_try(b, buf, sizeof(buf)), 3);
	shmkit_pipe_close(a);
	ck_assert_int_eq(shmkit_pipe_wait_timeout(b, 10000 * MS), -EPIPE);
	ck_assert_int_eq(shmkit_pipe_wait_try(b), -EPIPE);
	shmkit_pipe_close(b);
}
END_TEST

START_TEST(test_hold_fd)
{
	char name[TU_NAME_SIZE], other[TU_NAME_SIZE], buf[8];
	shmkit_pipe *a, *b, *c, *d, *x;
	int fd;

	ck_assert_int_eq(shmkit_pipe_create(tu_name_kind(name, "holdfd", shmkit_pipe_unlink), 4, 8,
					    0, 0, &a), 0);
	ck_assert_int_eq(shmkit_pipe_open(name, &b), 0);
	ck_assert_int_eq(shmkit_pipe_open(name, &c), 0);
	ck_assert_int_eq(shmkit_pipe_open(name, &d), 0);
	ck_assert_int_eq(shmkit_pipe_hold_fd(a), -EBADF);
	ck_assert_int_eq(shmkit_pipe_attach(a, 0), 0);
	ck_assert_int_eq(shmkit_pipe_attach(b, 1), 0);
	fd = shmkit_pipe_hold_fd(b);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(shmkit_pipe_attach_fd(c, 0, fd), -EINVAL); /* it holds end 1 */
	ck_assert_int_eq(shmkit_pipe_attach_fd(c, 1, shmkit_pipe_hold_fd(a)), -EINVAL);
	ck_assert_int_eq(shmkit_pipe_attach_fd(c, 1, fd), 0);
	/* A descriptor of another file. */
	ck_assert_int_eq(shmkit_pipe_create(tu_name_kind(other, "holdfd2", shmkit_pipe_unlink), 4,
					    8, 0, 0, &x), 0);
	ck_assert_int_eq(shmkit_pipe_attach(x, 1), 0);
	ck_assert_int_eq(shmkit_pipe_attach_fd(d, 1, shmkit_pipe_hold_fd(x)), -EINVAL);
	shmkit_pipe_close(x);
	shmkit_pipe_close(b); /* c still holds end 1 through its copy */
	ck_assert_int_eq(shmkit_pipe_send(a, "hi", 2), 0);
	ck_assert_int_eq(shmkit_pipe_recv_try(c, buf, sizeof(buf)), 2);
	ck_assert_int_eq(shmkit_pipe_recv_timeout(a, buf, sizeof(buf), 20 * MS), -ETIMEDOUT);
	shmkit_pipe_close(c);
	ck_assert_int_eq(shmkit_pipe_recv_timeout(a, buf, sizeof(buf), 10000 * MS), -EPIPE);
	ck_assert_int_eq(shmkit_pipe_attach(d, 1), -EPIPE);
	shmkit_pipe_close(d);
	shmkit_pipe_close(a);
}
END_TEST

/* One handle, one thread receiving and one sending (an echo child at the other end). */
static void *echo_reader(void *arg)
{
	char buf[16];
	int i;

	for (i = 0; i < 1000; i++)
		if (shmkit_pipe_recv_timeout(arg, buf, sizeof(buf), 10000 * MS) != 4)
			return (void *)1;
	return NULL;
}

START_TEST(test_threads_one_handle)
{
	pthread_t t;
	void *res;
	shmkit_pipe *p, *q;
	char name[TU_NAME_SIZE];
	pid_t pid;
	int i;

	ck_assert_int_eq(shmkit_pipe_create(tu_name_kind(name, "thr", shmkit_pipe_unlink), 8, 16, 0,
					    0, &p), 0);
	ck_assert_int_eq(shmkit_pipe_open(name, &q), 0);
	child_p = q;
	pid = tu_fork(echo_child, NULL);
	/* After the fork: a child holding end 0 too would keep EOF from it. */
	ck_assert_int_eq(shmkit_pipe_attach(p, 0), 0);
	shmkit_pipe_close(q);
	ck_assert_int_eq(pthread_create(&t, NULL, echo_reader, p), 0);
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(shmkit_pipe_send_timeout(p, "ping", 4, 10000 * MS), 0);
	ck_assert_int_eq(pthread_join(t, &res), 0);
	ck_assert_ptr_null(res);
	shmkit_pipe_close(p);
	ck_assert_int_eq(tu_wait_child(pid, 20), 0);
}
END_TEST

/* ---- large messages on shared ends ------------------------------------------------------- */

/* Larger than the whole ring (4 slots of 4096 bytes): it streams, and stalls with nobody
 * receiving. */
#define STREAMED (64 * 1024)

static int stream_big(void *arg)
{
	char *b = malloc(STREAMED);

	(void)arg;
	if (!b)
		return 1;
	memset(b, 'x', STREAMED);
	/* The handle is the parent's, held from the fork on: another process using end 0. */
	return shmkit_pipe_send_timeout(child_end, b, STREAMED, 60000 * MS) ? 2 : 0;
}

static int send_after(void *arg)
{
	(void)arg;
	return shmkit_pipe_send_timeout(child_end, "after", 5, 20000 * MS) ? 1 : 0;
}

static bool streaming(void *arg)
{
	return shmkit_pipe_next_size(arg) == STREAMED;
}

/* A simplex pipe of 4 default slots, end 0 held by *a (and by children forked with child_end
 * = *a), end 1 by *b. */
static void streamed_pair(char *name, const char *tag, shmkit_pipe **a, shmkit_pipe **b)
{
	ck_assert_int_eq(shmkit_pipe_create(tu_name_kind(name, tag, shmkit_pipe_unlink), 4, 0,
					    SHMKIT_SIMPLEX, 0, a), 0);
	ck_assert_uint_eq(shmkit_pipe_slot_size(*a), 4096);
	ck_assert_int_eq(shmkit_pipe_open(name, b), 0);
	ck_assert_int_eq(shmkit_pipe_attach(*a, 0), 0);
	ck_assert_int_eq(shmkit_pipe_attach(*b, 1), 0);
	child_end = *a;
}

/* A process that dies while streaming a message on an end other processes also send on is
 * resolved as a dead queue participant is: nothing of its message is delivered, the others'
 * messages go through, and the end stays open while a holder lives. Waiting sees a message
 * begun while it streams. */
START_TEST(test_streamer_dies_on_shared_end)
{
	char name[TU_NAME_SIZE], *buf = malloc(STREAMED);
	shmkit_pipe *a, *b;
	pid_t pid;

	ck_assert_ptr_nonnull(buf);
	streamed_pair(name, "strm", &a, &b);
	pid = tu_fork(stream_big, NULL);
	ck_assert(tu_await(streaming, b, 20));
	/* Its head is published, the rest is to come: a receive would take it as it comes. */
	ck_assert_int_eq(shmkit_pipe_wait_try(b), 0);
	tu_kill_child(pid);
	pid = tu_fork(send_after, NULL);
	ck_assert_int_eq(shmkit_pipe_recv_timeout(b, buf, STREAMED, 20000 * MS), 5);
	ck_assert_mem_eq(buf, "after", 5);
	ck_assert_int_eq(tu_wait_child(pid, 20), 0);
	/* We hold end 0 still: no EOF. */
	ck_assert_int_eq(shmkit_pipe_recv_try(b, buf, STREAMED), -EAGAIN);
	ck_assert_int_eq(shmkit_pipe_wait_try(b), -EAGAIN);
	shmkit_pipe_close(a);
	ck_assert_int_eq(shmkit_pipe_wait_timeout(b, 20000 * MS), -EPIPE);
	shmkit_pipe_close(b);
	free(buf);
}
END_TEST

static int recv_big(void *arg)
{
	char *b = malloc(STREAMED);

	(void)arg;
	if (!b)
		return 1;
	return shmkit_pipe_recv_timeout(child_end, b, STREAMED, 60000 * MS) == STREAMED ? 0 : 2;
}

static bool taken(void *arg)
{
	struct shmkit_info in;

	return shmkit_info(arg, &in) == 0 && in.queue.depth == 0;
}

/* A receiver that dies holding half a streamed message on an end another process receives on:
 * that message is lost (counted once), the sender finishes, and the next message reaches the
 * live receiver. */
START_TEST(test_receiver_dies_mid_stream_on_shared_end)
{
	char name[TU_NAME_SIZE], *buf = malloc(STREAMED);
	struct shmkit_info in;
	shmkit_pipe *a, *b;
	pid_t sender, receiver, after;

	ck_assert_ptr_nonnull(buf);
	streamed_pair(name, "rstrm", &a, &b);
	sender = tu_fork(stream_big, NULL);
	ck_assert(tu_await(streaming, b, 20));
	kill(sender, SIGSTOP); /* mid-message, its first slots published */
	child_end = b;
	receiver = tu_fork(recv_big, NULL);
	ck_assert(tu_await(taken, name, 20)); /* it holds the get stream, waiting for the rest */
	tu_kill_child(receiver);
	kill(sender, SIGCONT);
	child_end = a;
	after = tu_fork(send_after, NULL);
	/* The rest of the lost message is dropped as it comes; then the next one. */
	ck_assert_int_eq(shmkit_pipe_recv_timeout(b, buf, STREAMED, 30000 * MS), 5);
	ck_assert_mem_eq(buf, "after", 5);
	ck_assert_int_eq(tu_wait_child(sender, 20), 0);
	ck_assert_int_eq(tu_wait_child(after, 20), 0);
	ck_assert_int_eq(shmkit_info(name, &in), 0);
	ck_assert_uint_eq(in.queue.lost_dead_consumer, 1);
	shmkit_pipe_close(a);
	ck_assert_int_eq(shmkit_pipe_recv_timeout(b, buf, STREAMED, 20000 * MS), -EPIPE);
	shmkit_pipe_close(b);
	free(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pipe");
	TCase *tc;

	tu_skip_if_no_shm();
	tu_init();
	tc = tu_tcase(s, "pipe", 60);
	tcase_add_test(tc, test_duplex_echo);
	tcase_add_test(tc, test_ends);
	tcase_add_test(tc, test_peer_death);
	tcase_add_test(tc, test_many_senders_one_end);
	tcase_add_test(tc, test_unused_end_exits);
	tcase_add_test(tc, test_unused_end_killed);
	tcase_add_test(tc, test_wait_takes_nothing);
	tcase_add_test(tc, test_hold_fd);
	tcase_add_test(tc, test_threads_one_handle);
	tcase_add_test(tc, test_streamer_dies_on_shared_end);
	tcase_add_test(tc, test_receiver_dies_mid_stream_on_shared_end);
	return tu_run(s);
}
