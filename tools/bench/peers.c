/*
 * The peers shmkit is measured against, behind the same interface as the shmkit transports:
 * pipe(2), an AF_UNIX SOCK_SEQPACKET socketpair and POSIX message queues. Each gets the largest
 * buffer the system allows an ordinary program (pipe: fs/pipe-max-size; socket: SO_SNDBUF up
 * to net/core/wmem_max; mq: mq_maxmsg up to fs/mqueue/msg_max), so none loses for want of a
 * setting.
 *
 * Several producers and consumers on one pipe: a write of at most PIPE_BUF bytes is atomic and
 * readers ask for exactly one message, so messages stay whole. Bigger writes may interleave,
 * so then every producer gets its own pipe to one consumer (N -> N shapes only) and the row
 * says so. A socketpair and an mq keep message boundaries for any number of processes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

static long read_proc_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "r");
	long v;

	if (!f)
		return dflt;
	if (fscanf(f, "%ld", &v) != 1 || v <= 0)
		v = dflt;
	fclose(f);
	return v;
}

/* Open a new unnamed-in-effect message queue: created exclusive, unlinked at once, so only the
 * descriptor (inherited across fork) reaches it. Fewer slots than asked when refused. */
static mqd_t mq_new(long *maxmsg, long msgsize)
{
	static unsigned seq;
	struct mq_attr a;
	char name[64];
	mqd_t q;

	for (;;) {
		memset(&a, 0, sizeof(a));
		a.mq_maxmsg = *maxmsg;
		a.mq_msgsize = msgsize ? msgsize : 1;
		snprintf(name, sizeof(name), "/shmkit-bench-%ld-%u", (long)getpid(), seq++);
		q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
		if (q != (mqd_t)-1) {
			mq_unlink(name);
			return q;
		}
		if (errno == EEXIST)
			continue;
		/* EMFILE: RLIMIT_MSGQUEUE bytes; EINVAL/ENOMEM: over a limit. */
		if ((errno == EMFILE || errno == EINVAL || errno == ENOMEM) && *maxmsg > 1) {
			*maxmsg /= 2;
			continue;
		}
		return (mqd_t)-1;
	}
}

void bench_peers_probe(void)
{
	struct bench_machine *m = &bench_machine;
	int fd[2];
	mqd_t q;
	long r;

	m->mq_msg_max = read_proc_long("/proc/sys/fs/mqueue/msg_max", 10);
	m->mq_msgsize_max = read_proc_long("/proc/sys/fs/mqueue/msgsize_max", 8192);
	m->mq_maxmsg = m->mq_msg_max;
	q = mq_new(&m->mq_maxmsg, m->mq_msgsize_max < 4096 ? m->mq_msgsize_max : 4096);
	if (q != (mqd_t)-1)
		mq_close(q);
	else
		m->mq_maxmsg = 0;

	m->pipe_bytes = read_proc_long("/proc/sys/fs/pipe-max-size", 65536);
	if (pipe(fd) == 0) {
		r = fcntl(fd[0], F_SETPIPE_SZ, (int)m->pipe_bytes);
		m->pipe_bytes = r > 0 ? r : fcntl(fd[0], F_GETPIPE_SZ);
		close(fd[0]);
		close(fd[1]);
	}
	m->unix_sndbuf = read_proc_long("/proc/sys/net/core/wmem_max", 212992);
}

/* ------------------------------------------------------------------------------------------- */
/* pipe(2)                                                                                     */

struct pipelink {
	int fd[2][BENCH_PROCS_MAX][2]; /* [direction][pipe][read end, write end] */
	unsigned npipes[2];
	int rfd, wfd;                  /* a child's: the ends it kept */
};

static bool per_pair(const struct bench_link_cfg *cfg)
{
	return cfg->size > PIPE_BUF && (cfg->senders > 1 || cfg->receivers > 1);
}

static bool pipe_supported(const struct bench_link_cfg *cfg, char *why, size_t n)
{
	if (per_pair(cfg) && cfg->senders != cfg->receivers) {
		snprintf(why, n, "writes > PIPE_BUF interleave and the shape is not N->N");
		return false;
	}
	return true;
}

static void pipe_describe(const struct bench_link_cfg *cfg, char *note, size_t n)
{
	if (per_pair(cfg))
		snprintf(note, n, "one pipe per producer/consumer pair (writes > PIPE_BUF are not "
				  "atomic)");
	else if (cfg->senders > 1 || cfg->receivers > 1)
		snprintf(note, n, "one shared pipe (writes <= PIPE_BUF are atomic)");
	else
		note[0] = 0;
}

static void pipe_close(void *link)
{
	struct pipelink *l = link;
	unsigned d, i, e;

	if (!l)
		return;
	for (d = 0; d < 2; d++)
		for (i = 0; i < l->npipes[d]; i++)
			for (e = 0; e < 2; e++)
				if (l->fd[d][i][e] >= 0)
					close(l->fd[d][i][e]);
	free(l);
}

static int pipe_open(const struct bench_link_cfg *cfg, void **out)
{
	struct pipelink *l = calloc(1, sizeof(*l));
	unsigned d, i;
	int err;

	if (!l)
		return -ENOMEM;
	l->rfd = l->wfd = -1;
	l->npipes[0] = per_pair(cfg) ? cfg->senders : 1;
	l->npipes[1] = cfg->duplex ? 1 : 0;
	if (l->npipes[0] > BENCH_PROCS_MAX) {
		free(l);
		return -E2BIG;
	}
	for (d = 0; d < 2; d++) {
		for (i = 0; i < l->npipes[d]; i++) {
			if (pipe(l->fd[d][i]) < 0) {
				err = -errno;
				l->npipes[d] = i;
				pipe_close(l);
				return err;
			}
			fcntl(l->fd[d][i][0], F_SETPIPE_SZ, (int)bench_machine.pipe_bytes);
		}
	}
	*out = l;
	return 0;
}

static int pipe_attach(void *link, int side, unsigned idx)
{
	struct pipelink *l = link;
	unsigned d, i, e;

	if (l->npipes[side])
		l->wfd = l->fd[side][idx % l->npipes[side]][1];
	if (l->npipes[1 - side])
		l->rfd = l->fd[1 - side][idx % l->npipes[1 - side]][0];
	/* Every write end this process keeps open would hold off the readers' EOF. */
	for (d = 0; d < 2; d++)
		for (i = 0; i < l->npipes[d]; i++)
			for (e = 0; e < 2; e++)
				if (l->fd[d][i][e] != l->rfd && l->fd[d][i][e] != l->wfd) {
					close(l->fd[d][i][e]);
					l->fd[d][i][e] = -1;
				}
	return 0;
}

/* A whole message onto a byte stream (pipe, stream socket). */
static int write_all(int fd, const void *msg, size_t len)
{
	const char *p = msg;
	ssize_t r;

	while (len) {
		r = write(fd, p, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int pipe_send(void *link, const void *msg, size_t len)
{
	struct pipelink *l = link;

	return write_all(l->wfd, msg, len);
}

/* A whole message of len bytes from a byte stream: len, 0 at EOF, or negative errno. */
static int read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t r;

	while (got < len) {
		r = read(fd, (char *)buf + got, len - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return got ? -EBADMSG : 0; /* EOF; mid-message it means a torn message */
		got += (size_t)r;
	}
	return (int)got;
}

static int pipe_recv(void *link, void *buf, size_t len)
{
	struct pipelink *l = link;

	/* One read returns a whole message when the pipe is shared (see above); with one reader
	 * per pipe a big message may come in pieces. */
	return read_all(l->rfd, buf, len);
}

static void pipe_sender_done(void *link)
{
	struct pipelink *l = link;

	close(l->wfd);
	l->wfd = -1;
}

static void pipe_forked(void *link)
{
	struct pipelink *l = link;
	unsigned d, i, e;

	for (d = 0; d < 2; d++)
		for (i = 0; i < l->npipes[d]; i++)
			for (e = 0; e < 2; e++) {
				close(l->fd[d][i][e]);
				l->fd[d][i][e] = -1;
			}
}

static int no_senders_gone(void *link, unsigned receivers)
{
	return 0;
}

const struct bench_xport bench_xport_pipe = {
	.name = "pipe",
	.supported = pipe_supported,
	.describe = pipe_describe,
	.open = pipe_open,
	.attach = pipe_attach,
	.send = pipe_send,
	.recv = pipe_recv,
	.sender_done = pipe_sender_done,
	.forked = pipe_forked,
	.senders_gone = no_senders_gone,
	.close = pipe_close,
};

/* ------------------------------------------------------------------------------------------- */
/* AF_UNIX SOCK_SEQPACKET socketpair: side k uses sv[k] for both directions.                   */

struct unixlink {
	int sv[2];
	int fd;
};

static bool always(const struct bench_link_cfg *cfg, char *why, size_t n)
{
	return true;
}

static void no_note(const struct bench_link_cfg *cfg, char *note, size_t n)
{
	note[0] = 0;
}

static int unix_open(const struct bench_link_cfg *cfg, void **out)
{
	struct unixlink *l = calloc(1, sizeof(*l));
	int k, buf = (int)(bench_machine.unix_sndbuf > INT_MAX / 2 ? INT_MAX / 2
								    : bench_machine.unix_sndbuf);

	if (!l)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, l->sv) < 0) {
		int err = -errno;
		free(l);
		return err;
	}
	/* A datagram-like unix socket's flow control is the sender's SO_SNDBUF. */
	for (k = 0; k < 2; k++)
		setsockopt(l->sv[k], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	l->fd = -1;
	*out = l;
	return 0;
}

static int unix_attach(void *link, int side, unsigned idx)
{
	struct unixlink *l = link;

	l->fd = l->sv[side];
	close(l->sv[1 - side]);
	l->sv[1 - side] = -1;
	return 0;
}

static int unix_send(void *link, const void *msg, size_t len)
{
	struct unixlink *l = link;
	ssize_t r;

	do
		r = send(l->fd, msg, len, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return (size_t)r == len ? 0 : -EBADMSG;
}

static int unix_recv(void *link, void *buf, size_t len)
{
	struct unixlink *l = link;
	ssize_t r;

	do
		r = recv(l->fd, buf, len, 0);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : (int)r;
}

static void unix_sender_done(void *link)
{
	struct unixlink *l = link;

	/* EOF reaches the receivers once every sender's copy is closed. */
	close(l->fd);
	l->fd = -1;
}

static void unix_forked(void *link)
{
	struct unixlink *l = link;

	close(l->sv[0]);
	close(l->sv[1]);
	l->sv[0] = l->sv[1] = -1;
}

static void unix_close(void *link)
{
	struct unixlink *l = link;
	int k;

	if (!l)
		return;
	for (k = 0; k < 2; k++)
		if (l->sv[k] >= 0)
			close(l->sv[k]);
	free(l);
}

/* The same socketpair as a byte stream, for messages larger than a SOCK_SEQPACKET datagram may
 * be (its SO_SNDBUF): fixed-size messages need no framing. */
static bool ustream_supported(const struct bench_link_cfg *cfg, char *why, size_t n)
{
	if (cfg->senders == 1 && cfg->receivers == 1)
		return true;
	snprintf(why, n, "a byte stream interleaves writers: 1->1 only");
	return false;
}

static void ustream_describe(const struct bench_link_cfg *cfg, char *note, size_t n)
{
	snprintf(note, n, "SOCK_STREAM socketpair");
}

static int ustream_open(const struct bench_link_cfg *cfg, void **out)
{
	struct unixlink *l = calloc(1, sizeof(*l));
	int k, buf = (int)(bench_machine.unix_sndbuf > INT_MAX / 2 ? INT_MAX / 2
								    : bench_machine.unix_sndbuf);

	if (!l)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, l->sv) < 0) {
		int err = -errno;
		free(l);
		return err;
	}
	for (k = 0; k < 2; k++) {
		setsockopt(l->sv[k], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
		setsockopt(l->sv[k], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	}
	l->fd = -1;
	*out = l;
	return 0;
}

static int ustream_send(void *link, const void *msg, size_t len)
{
	struct unixlink *l = link;

	return write_all(l->fd, msg, len);
}

static int ustream_recv(void *link, void *buf, size_t len)
{
	struct unixlink *l = link;

	return read_all(l->fd, buf, len);
}

const struct bench_xport bench_xport_ustream = {
	.name = "unix",
	.supported = ustream_supported,
	.describe = ustream_describe,
	.open = ustream_open,
	.attach = unix_attach,
	.send = ustream_send,
	.recv = ustream_recv,
	.sender_done = unix_sender_done,
	.forked = unix_forked,
	.senders_gone = no_senders_gone,
	.close = unix_close,
};

const struct bench_xport bench_xport_unix = {
	.name = "unix",
	.supported = always,
	.describe = no_note,
	.open = unix_open,
	.attach = unix_attach,
	.send = unix_send,
	.recv = unix_recv,
	.sender_done = unix_sender_done,
	.forked = unix_forked,
	.senders_gone = no_senders_gone,
	.close = unix_close,
};

/* ------------------------------------------------------------------------------------------- */
/* POSIX mq: one queue per direction. mq has no EOF: once the producers have exited the parent
 * sends one empty message per consumer, which no producer ever sends.                         */

struct mqlink {
	mqd_t q[2];
	int side;
	long maxmsg;
};

static bool mq_supported(const struct bench_link_cfg *cfg, char *why, size_t n)
{
	if (bench_machine.mq_maxmsg <= 0) {
		snprintf(why, n, "mq_open refused every mq_maxmsg");
		return false;
	}
	if ((long)cfg->size > bench_machine.mq_msgsize_max) {
		snprintf(why, n, "message larger than mq msgsize_max (%ld B)",
			 bench_machine.mq_msgsize_max);
		return false;
	}
	return true;
}

static void mq_describe(const struct bench_link_cfg *cfg, char *note, size_t n)
{
	snprintf(note, n, "mq_maxmsg %ld", bench_machine.mq_maxmsg);
}

static void mql_close(void *link)
{
	struct mqlink *l = link;
	int d;

	if (!l)
		return;
	for (d = 0; d < 2; d++)
		if (l->q[d] != (mqd_t)-1)
			mq_close(l->q[d]);
	free(l);
}

static int mql_open(const struct bench_link_cfg *cfg, void **out)
{
	struct mqlink *l = calloc(1, sizeof(*l));
	int d;

	if (!l)
		return -ENOMEM;
	l->q[0] = l->q[1] = (mqd_t)-1;
	l->maxmsg = bench_machine.mq_maxmsg;
	for (d = 0; d < (cfg->duplex ? 2 : 1); d++) {
		if ((l->q[d] = mq_new(&l->maxmsg, cfg->size)) == (mqd_t)-1) {
			int err = -errno;
			mql_close(l);
			return err;
		}
	}
	*out = l;
	return 0;
}

static int mql_attach(void *link, int side, unsigned idx)
{
	struct mqlink *l = link;

	l->side = side;
	return 0;
}

static int mql_send(void *link, const void *msg, size_t len)
{
	struct mqlink *l = link;
	int r;

	while ((r = mq_send(l->q[l->side], msg, len, 0)) < 0 && errno == EINTR)
		;
	return r < 0 ? -errno : 0;
}

static int mql_recv(void *link, void *buf, size_t len)
{
	struct mqlink *l = link;
	ssize_t r;

	while ((r = mq_receive(l->q[1 - l->side], buf, len, NULL)) < 0 && errno == EINTR)
		;
	return r < 0 ? -errno : (int)r;
}

static void mql_sender_done(void *link)
{
}

static void mql_forked(void *link)
{
}

static int mql_senders_gone(void *link, unsigned receivers)
{
	struct mqlink *l = link;
	struct timespec until;
	unsigned i;

	/* Bounded: consumers that died would leave the queue full for good. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	for (i = 0; i < receivers; i++)
		while (mq_timedsend(l->q[0], "", 0, 0, &until) < 0)
			if (errno != EINTR)
				return -errno;
	return 0;
}

const struct bench_xport bench_xport_mq = {
	.name = "mq",
	.supported = mq_supported,
	.describe = mq_describe,
	.open = mql_open,
	.attach = mql_attach,
	.send = mql_send,
	.recv = mql_recv,
	.sender_done = mql_sender_done,
	.forked = mql_forked,
	.senders_gone = mql_senders_gone,
	.close = mql_close,
};
