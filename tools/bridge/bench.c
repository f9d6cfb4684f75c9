/*
 * `shmkit-bridge bench` (and through it `shmkit bench --only bridge`): 64-byte messages from a
 * producer through a shmkit queue, a send bridge, loopback TCP, a receiving bridge and its
 * keeper into a queue and a consumer, against a bare ZeroMQ PUSH/PULL pair over loopback
 * measured in the same run. Each rate is taken by the consumer from its first message to its
 * last, so start-up is not counted.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bridge/bridge.h"
#include "util.h"

static int64_t bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void bench_sleep(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

#define MSG 64
#define WAIT_S 180

/* Reap pid within the deadline (kill it past that); 0 when it exited with status 0. */
static int reap(pid_t pid, int64_t deadline)
{
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
		if (r < 0)
			return -errno;
		if (bench_now() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		bench_sleep(0.01);
	}
}

static void stamp(int64_t *first, int64_t *last, uint64_t i)
{
	int64_t t = bench_now();

	if (i == 0)
		*first = t;
	*last = t;
}

static int zmq_pull(const char *ep, uint64_t n, double *rate)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PULL);
	unsigned char buf[MSG];
	int64_t first = 0, last = 0;
	uint64_t i;

	if (!s || zmq_bind(s, ep))
		return 1;
	for (i = 0; i < n; i++) {
		if (zmq_recv(s, buf, sizeof(buf), 0) != MSG)
			return 1;
		stamp(&first, &last, i);
	}
	*rate = last > first ? (double)(n - 1) * 1e9 / (double)(last - first) : 0;
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}

static int run_zmq(const char *ep, uint64_t n, double *rate)
{
	unsigned char msg[MSG] = { 1 };
	void *ctx, *s;
	uint64_t i;
	pid_t pid;
	int rc;

	if ((pid = fork()) < 0)
		return -errno;
	if (pid == 0)
		_exit(zmq_pull(ep, n, rate));
	ctx = zmq_ctx_new();
	s = zmq_socket(ctx, ZMQ_PUSH);
	rc = s && !zmq_connect(s, ep) ? 0 : -EIO;
	for (i = 0; !rc && i < n; i++)
		if (zmq_send(s, msg, sizeof(msg), 0) != MSG)
			rc = -EIO;
	zmq_close(s); /* lingers until what is queued has gone */
	zmq_ctx_term(ctx);
	if (rc) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return rc;
	}
	return reap(pid, bench_now() + WAIT_S * 1000000000LL);
}

static int consume(const char *name, uint64_t n, double *rate)
{
	unsigned char buf[MSG];
	int64_t first = 0, last = 0;
	shmkit_queue *q;
	uint64_t i;

	if (shmkit_queue_open(name, &q))
		return 1;
	for (i = 0; i < n; i++) {
		if (shmkit_queue_get(q, buf, sizeof(buf)) != MSG)
			return 1;
		stamp(&first, &last, i);
	}
	*rate = last > first ? (double)(n - 1) * 1e9 / (double)(last - first) : 0;
	shmkit_queue_close(q);
	return 0;
}

static int run_bridge(const char *ep, const char *src, const char *far, uint64_t n, double *rate)
{
	struct shmkit_queue_attr a = { .capacity = 1024, .max_size = MSG, .mode = 0600 };
	unsigned char msg[MSG] = { 2 };
	struct bridge_opts o = { .endpoint = ep, .window = BRIDGE_WINDOW_DEFAULT, .resend_s = 1,
				 .connect_s = 30, .quiet = true };
	pid_t pid[3] = { 0, 0, 0 };
	int64_t deadline;
	shmkit_queue *q;
	int rc = 0, i;
	uint64_t k;

	if ((rc = shmkit_queue_create(src, &a, &q)))
		return rc;
	shmkit_queue_close(q);
	a.writers = 1;
	if ((rc = shmkit_queue_create(far, &a, &q)))
		return rc;
	shmkit_queue_close(q);
	for (i = 0; i < 3; i++) {
		if ((pid[i] = fork()) < 0) {
			rc = -errno;
			break;
		}
		if (pid[i] == 0) {
			if (i == 0) {
				o.cmd = "bridge recv";
				o.queue = far;
				_exit(bridge_recv(&o));
			}
			if (i == 1) {
				o.cmd = "bridge send";
				o.queue = src;
				_exit(bridge_send(&o));
			}
			_exit(consume(far, n, rate));
		}
	}
	if (!rc && !(rc = shmkit_queue_open(src, &q))) {
		for (k = 0; !rc && k < n; k++)
			rc = shmkit_queue_put(q, msg, sizeof(msg));
		shmkit_queue_close(q); /* EOF: the bridges forward it and exit */
	}
	deadline = bench_now() + WAIT_S * 1000000000LL;
	for (i = 2; i >= 0; i--) {
		int r = pid[i] > 0 ? (rc ? (kill(pid[i], SIGKILL), reap(pid[i], deadline))
					 : reap(pid[i], deadline))
				   : 0;

		if (!rc)
			rc = r;
	}
	return rc;
}

static void cleanup(const char *src, const char *far)
{
	const char *suffix[] = { ".bridge-s", ".bridge-q", ".bridge-l", ".bridge-r" };
	char name[SHMKIT_NAME_MAX + 2];
	unsigned i;

	shmkit_remove(src);
	shmkit_remove(far);
	for (i = 0; i < 4; i++) {
		if (!bridge_name(name, sizeof(name), i ? far : src, suffix[i]))
			shmkit_remove(name);
	}
}

/* Both measurements, one after the other; printed as a table or as one JSON line (which
 * `shmkit bench` reads). 0, or 1 when one of them failed. */
int bridge_bench(bool quick, bool json)
{
	char ep[64], src[64], far[64], zerr[112] = "", berr[112] = "";
	uint64_t n = quick ? 200000 : 1000000;
	unsigned port = 30000 + (unsigned)getpid() % 20000;
	double *rate = mmap(NULL, sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			    -1, 0);
	double z = 0, b = 0;
	int rc;

	if (rate == MAP_FAILED)
		return runtime_error("bridge bench", -errno);
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", port);
	*rate = 0;
	if ((rc = run_zmq(ep, n, rate)) == 0)
		z = *rate;
	else
		snprintf(zerr, sizeof(zerr), "%s", strerror(-rc));
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", port + 1);
	snprintf(src, sizeof(src), "/shmkit-bench-bridge-%d.src", (int)getpid());
	snprintf(far, sizeof(far), "/shmkit-bench-bridge-%d.far", (int)getpid());
	*rate = 0;
	if ((rc = run_bridge(ep, src, far, n, rate)) == 0)
		b = *rate;
	else
		snprintf(berr, sizeof(berr), "%s", strerror(-rc));
	cleanup(src, far);
	munmap(rate, sizeof(double));
	if (json) {
		printf("{\"messages\": %llu, \"size\": %d, \"window\": %d, \"batch\": %d, "
		       "\"zmq\": %.0f, \"bridge\": %.0f, \"ratio\": %.3f}\n",
		       (unsigned long long)n, MSG, BRIDGE_WINDOW_DEFAULT, BRIDGE_BATCH_MSGS, z, b,
		       z > 0 ? b / z : 0);
	} else {
		printf("%llu messages of %d bytes over loopback, one producer, one consumer\n",
		       (unsigned long long)n, MSG);
		printf("bare ZeroMQ PUSH -> PULL          %12.0f msgs/s %s\n", z, zerr);
		printf("queue -> bridges -> keeper -> queue %10.0f msgs/s %s\n", b, berr);
		if (z > 0 && b > 0)
			printf("ratio bridge / ZeroMQ: %.2f (the target: >= 0.5)\n", b / z);
	}
	if (zerr[0])
		fprintf(stderr, "shmkit: bridge bench: bare ZeroMQ: %s\n", zerr);
	if (berr[0])
		fprintf(stderr, "shmkit: bridge bench: the bridge: %s\n", berr);
	if (zerr[0] || berr[0])
		return 1;
	return 0;
}
