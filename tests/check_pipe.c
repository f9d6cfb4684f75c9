/* Pipe: duplex and simplex ends across processes, EOF on close and on death, bad use. */
#include "config.h"

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
	ck_assert_int_eq(shmkit_pipe_attach(q, 0), -EBUSY);
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
	return tu_run(s);
}
