/*
 * An event loop serving a shmkit queue and a timer with one epoll_wait.
 *
 *     epoll_queue NAME [TICK_MS]
 *
 * Opens the queue NAME (made beforehand, e.g. `shmkit create queue NAME --capacity 64
 * --max-size 256 --writers 1`), and waits with epoll on two descriptors: the queue's
 * (shmkit_queue_fd) and a timerfd ticking every TICK_MS milliseconds (default 100). Each
 * message is printed as "msg: TEXT" on standard output; at EOF it prints "eof" and the number
 * of ticks on standard error, and exits 0. The producers are other processes, e.g.
 * `printf 'a\nb\n' | shmkit produce NAME`: they never see our descriptor.
 *
 * The queue's descriptor is level-triggered: readable while a get may not block, sometimes
 * spuriously. So on readiness we call shmkit_queue_get_try until it returns -EAGAIN, which
 * re-arms the descriptor; we never block in a shmkit call, and the timer keeps ticking.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <shmkit.h>

/* Take every message ready now. 1 at EOF, 0 when drained, -1 on error. */
static int serve(shmkit_queue *q)
{
	char buf[65536];
	int n;

	for (;;) {
		n = shmkit_queue_get_try(q, buf, sizeof(buf));
		if (n == -EAGAIN)
			return 0; /* drained; the descriptor is armed again */
		if (n == -EPIPE)
			return 1;
		if (n < 0) {
			fprintf(stderr, "epoll_queue: get: %s\n", shmkit_strerror(n));
			return -1;
		}
		printf("msg: %.*s\n", n, buf);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	struct epoll_event ev, got[2];
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	unsigned long tick_ms = 100, ticks = 0;
	uint64_t expirations;
	shmkit_queue *q;
	int ep, qfd, tfd, n, i, rc, done = 0;

	if (argc < 2 || argc > 3 || (argc == 3 && (tick_ms = strtoul(argv[2], NULL, 10)) == 0)) {
		fprintf(stderr, "usage: epoll_queue NAME [TICK_MS]\n");
		return 2;
	}
	if ((rc = shmkit_queue_open(argv[1], &q)) < 0) {
		fprintf(stderr, "epoll_queue: %s: %s\n", argv[1], shmkit_strerror(rc));
		return 1;
	}
	if ((qfd = shmkit_queue_fd(q)) < 0) {
		fprintf(stderr, "epoll_queue: fd: %s\n", shmkit_strerror(qfd));
		return 1;
	}
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	its.it_value.tv_sec = its.it_interval.tv_sec = (time_t)(tick_ms / 1000);
	its.it_value.tv_nsec = its.it_interval.tv_nsec = (long)(tick_ms % 1000) * 1000000L;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0 || ep < 0) {
		perror("epoll_queue: timer/epoll");
		return 1;
	}
	ev.events = EPOLLIN; /* level-triggered, as the queue's descriptor is */
	ev.data.fd = qfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, qfd, &ev) < 0)
		return perror("epoll_queue: add queue"), 1;
	ev.data.fd = tfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0)
		return perror("epoll_queue: add timer"), 1;
	while (!done) {
		n = epoll_wait(ep, got, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return perror("epoll_queue: epoll_wait"), 1;
		for (i = 0; i < n; i++) {
			if (got[i].data.fd == tfd) {
				if (read(tfd, &expirations, sizeof(expirations)) > 0)
					ticks += (unsigned long)expirations;
			} else if ((rc = serve(q)) != 0) {
				if (rc < 0)
					return 1;
				done = 1;
			}
		}
	}
	printf("eof\n");
	fprintf(stderr, "ticks: %lu\n", ticks);
	close(ep);
	close(tfd);
	shmkit_queue_close(q); /* closes the queue's descriptor too */
	return 0;
}
