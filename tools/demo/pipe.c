/*
 * `shmkit demo pipe`: the lessons' Pipe between a parent and a child process. Each takes one
 * end; the parent sends 'ping', the child answers 'pong' and then sends ['hello', 42, None] as
 * the lesson's child does, and exits. The parent receives both, then EOF: the child's end closed
 * when it exited.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "demo/demo.h"
#include "util.h"

#define SEC 1000000000LL

static const char hello[] = "['hello', 42, None]";

static int child(void *arg, int id)
{
	shmkit_pipe *p = arg;
	char buf[64];
	int n;

	(void)id;
	if (shmkit_pipe_attach(p, 1))
		return 1;
	n = shmkit_pipe_recv_timeout(p, buf, sizeof(buf) - 1, 10 * SEC);
	if (n < 0)
		return 1;
	buf[n] = '\0';
	demo_say("  child:  received '%s'; replies 'pong', sends %s, exits\n", buf, hello);
	if (shmkit_pipe_send(p, "pong", 4) || shmkit_pipe_send(p, hello, strlen(hello)))
		return 1;
	shmkit_pipe_close(p);
	return 0;
}

int demo_pipe(bool quick)
{
	shmkit_pipe *p;
	char buf[64];
	pid_t pid;
	int rc, n, failed = 0, got = 0;

	(void)quick;
	printf("== Pipe: a parent and a child process, one end each ==\n");
	if ((rc = shmkit_pipe_create(NULL, 4, 64, 0, 0, &p)))
		return runtime_error("demo: create pipe", rc);
	pid = demo_fork(child, p, 1);
	if ((rc = shmkit_pipe_attach(p, 0)) == 0) {
		demo_say("  parent: sends 'ping'\n");
		rc = shmkit_pipe_send(p, "ping", 4);
	}
	while (rc == 0) {
		n = shmkit_pipe_recv_timeout(p, buf, sizeof(buf) - 1, 10 * SEC);
		if (n == -EPIPE) {
			demo_say("  parent: recv() -> EOF: the child has exited and its end is "
				 "closed\n");
			break;
		}
		if (n < 0) {
			rc = n;
			break;
		}
		buf[n] = '\0';
		demo_say("  parent: received %s\n", buf);
		got++;
	}
	failed = demo_reap(&pid, 1);
	shmkit_pipe_close(p);
	if (rc || failed || got != 2) {
		fprintf(stderr, "shmkit: demo: the pipe lesson went wrong: %s\n",
			rc ? shmkit_strerror(rc) : "the child failed");
		return 1;
	}
	printf("  Like multiprocessing.Pipe(): two connected ends, each held like a file descriptor\n"
	       "  (a fork child holds its parent's); recv() blocks until a message comes, and\n"
	       "  reports EOF once every holder of the other end is gone (closed, exited, or\n"
	       "  killed) and everything it sent has been read.\n");
	return 0;
}
