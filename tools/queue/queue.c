/* shmkit produce / consume: separate producer and consumer processes around a named queue. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/stamp.h"
#include "util.h"
#include "verbs/verbs.h"

static int open_queue(const char *cmd, const char *name, shmkit_queue **q)
{
	char what[256];
	int rc;

	if (shmkit_name_check(name))
		return usage_error(cmd, "bad name '%s': '/' then 1..200 of [A-Za-z0-9._-]", name);
	rc = shmkit_queue_open(name, q);
	if (rc == -EPROTOTYPE)
		return verb_open_failed(cmd, name, "queue", rc);
	if (rc) {
		snprintf(what, sizeof(what), "%s %s", cmd, name);
		return runtime_error(what, rc);
	}
	return 0;
}

/* ----------------------------------------------------------------------------------------- */

static void produce_usage(FILE *f)
{
	fprintf(f, "Usage: shmkit produce NAME [--count N [--size B] [--id ID]] [--json]\n"
		   "Attach to queue NAME as a writer and put messages; detach when done.\n"
		   "  -n, --count N   put N generated messages stamped with a producer id, a\n"
		   "                  sequence number and a checksum (for consume --verify)\n"
		   "  -s, --size B    bytes per generated message (%zu..max, default 64; K/M/G)\n"
		   "  -i, --id ID     producer id stamped in the messages (default: the pid; give\n"
		   "                  distinct ids to producers in different pid namespaces)\n"
		   "  -j, --json      print a summary object (sent, producer, digest, seconds)\n"
		   "Without --count, each line of standard input becomes one message (without\n"
		   "its newline); a line longer than the queue's maximum is an error and nothing\n"
		   "of it is queued.\n",
		   STAMP_SIZE);
}

static int produce_lines(shmkit_queue *q, const char *name)
{
	char *line = NULL, what[256];
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int rc = 0;

	snprintf(what, sizeof(what), "produce %s", name);
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			n--;
		rc = shmkit_queue_put(q, line, (size_t)n);
		if (rc == -EMSGSIZE) {
			fprintf(stderr, "shmkit: %s: line %ld is %zd bytes, longer than the queue's "
				"maximum of %u: not queued\n",
				what, lineno, n, shmkit_queue_max_size(q));
			break;
		}
		if (rc) {
			runtime_error(what, rc);
			break;
		}
	}
	free(line);
	return rc ? 1 : 0;
}

int cmd_produce(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' }, { "size", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },        { "help", no_argument, NULL, 'h' },
		{ "id", required_argument, NULL, 'i' },    { NULL, 0, NULL, 0 },
	};
	uint64_t count = 0, size = 64, i, digest = 0, id = 0;
	bool have_count = false, json = false;
	unsigned char *msg;
	shmkit_queue *q;
	char what[256];
	uint32_t producer;
	double t0;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":n:s:i:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (!parse_u64(optarg, 1, UINT32_MAX, &id))
				return usage_error("produce", "bad --id '%s': want 1..%u", optarg,
						   UINT32_MAX);
			break;
		case 'n':
			if (!parse_u64(optarg, 0, UINT64_MAX / 2, &count))
				return usage_error("produce", "bad --count '%s'", optarg);
			have_count = true;
			break;
		case 's':
			if (!parse_size(optarg, STAMP_SIZE, SHMKIT_MESSAGE_MAX, &size))
				return usage_error("produce", "bad --size '%s' (%zu..%u, K/M/G "
						   "suffixes)", optarg, STAMP_SIZE,
						   SHMKIT_MESSAGE_MAX);
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			produce_usage(stdout);
			return 0;
		default:
			return bad_option("produce", c, argv);
		}
	}
	if (optind + 1 != argc)
		return usage_error("produce", optind >= argc ? "missing NAME" : "extra argument '%s'",
				   argv[optind + (optind < argc)]);
	if ((rc = open_queue("produce", argv[optind], &q)))
		return rc;
	snprintf(what, sizeof(what), "produce %s", argv[optind]);
	if ((rc = shmkit_queue_attach_writer(q))) {
		shmkit_queue_close(q);
		return runtime_error(what, rc);
	}
	if (!have_count) {
		rc = produce_lines(q, argv[optind]);
		shmkit_queue_close(q);
		return rc;
	}
	if (size > shmkit_queue_max_size(q)) {
		fprintf(stderr, "shmkit: %s: --size %llu is longer than the queue's maximum of %u\n",
			what, (unsigned long long)size, shmkit_queue_max_size(q));
		shmkit_queue_close(q);
		return 1;
	}
	msg = malloc(size);
	if (!msg) {
		shmkit_queue_close(q);
		return runtime_error(what, -ENOMEM);
	}
	/* The pid by default: what `consume --verify` and the stamp's readers (the Python
	 * binding's stamp.py) expect. Producers in different pid namespaces can share a pid
	 * (each container's pid 1): give those distinct --id values. */
	producer = id ? (uint32_t)id : (uint32_t)getpid();
	t0 = now_seconds();
	for (i = 0; i < count; i++) {
		stamp_fill(msg, size, producer, i);
		if ((rc = shmkit_queue_put(q, msg, size)))
			break;
		digest += stamp_digest(producer, i);
	}
	t0 = now_seconds() - t0;
	free(msg);
	shmkit_queue_close(q);
	if (rc)
		return runtime_error(what, rc);
	if (json)
		printf("{\"sent\": %llu, \"producer\": %u, \"digest\": %lld, \"seconds\": %.6f}\n",
		       (unsigned long long)count, producer, (long long)digest, t0);
	return 0;
}

/* ----------------------------------------------------------------------------------------- */

/* Per-producer record for --verify: the last sequence seen and which were seen. */
struct seen {
	uint32_t producer;
	uint64_t last;
	bool any;
	uint8_t *bits;
	uint64_t nbits;
};

struct verify {
	struct seen *p;
	size_t n, cap;
	uint64_t received, corrupt, out_of_order, duplicates, digest;
};

static struct seen *find_producer(struct verify *v, uint32_t producer)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (v->p[i].producer == producer)
			return &v->p[i];
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct seen *np = realloc(v->p, cap * sizeof(*np));
		if (!np)
			return NULL;
		v->p = np;
		v->cap = cap;
	}
	memset(&v->p[v->n], 0, sizeof(v->p[0]));
	v->p[v->n].producer = producer;
	return &v->p[v->n++];
}

/* Record seq; 1 if it was seen before. */
static int test_and_set(struct seen *s, uint64_t seq)
{
	int was;

	if (seq >= s->nbits) {
		uint64_t nbits = s->nbits ? s->nbits : 4096;
		uint8_t *nb;

		while (nbits <= seq)
			nbits *= 2;
		nb = realloc(s->bits, nbits / 8);
		if (!nb)
			return 0;
		memset(nb + s->nbits / 8, 0, (nbits - s->nbits) / 8);
		s->bits = nb;
		s->nbits = nbits;
	}
	was = (s->bits[seq / 8] >> (seq % 8)) & 1;
	s->bits[seq / 8] |= (uint8_t)(1u << (seq % 8));
	return was;
}

static void verify_one(struct verify *v, const unsigned char *msg, size_t len)
{
	struct stamp st;
	struct seen *s;

	v->received++;
	if (stamp_check(msg, len, &st) || !(s = find_producer(v, st.producer))) {
		v->corrupt++;
		return;
	}
	if (test_and_set(s, st.seq)) {
		v->duplicates++;
		return;
	}
	if (s->any && st.seq < s->last)
		v->out_of_order++;
	s->any = true;
	s->last = st.seq;
	v->digest += stamp_digest(st.producer, st.seq);
}

static void consume_usage(FILE *f)
{
	fprintf(f, "Usage: shmkit consume NAME [--verify] [--json] [--timeout S] [--count N]\n"
		   "       shmkit consume NAME [--json] [--timeout S] [--count N] --exec CMD [ARG...]\n"
		   "Get messages from queue NAME until EOF (all writers gone), N messages, or S\n"
		   "seconds without one. Each is written as a line on standard output, or with\n"
		   "--verify checked (stamps from produce --count) and summarised.\n"
		   "  -v, --verify     check stamps; print received, producers, corrupt,\n"
		   "                   out_of_order, duplicates; exit 1 on any anomaly\n"
		   "  -j, --json       the summary as JSON\n"
		   "  -t, --timeout S  stop after S seconds (fractions allowed) without a message\n"
		   "  -n, --count N    stop after N messages\n"
		   "  --exec CMD...    (last) run CMD once per message, the message and a newline on\n"
		   "                   its standard input, and mark the message done (task_done)\n"
		   "                   when CMD has finished; several such consumers are a worker\n"
		   "                   pool, and 'shmkit queue join NAME' waits for all their work.\n"
		   "                   Exits 1 if any CMD failed (each failure named on stderr);\n"
		   "                   --json writes a summary to stderr\n");
}

int cmd_consume(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verify", no_argument, NULL, 'v' },     { "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' }, { "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
	};
	bool verify = false, json = false;
	int64_t timeout = -1;
	uint64_t count = UINT64_MAX;
	struct verify v = { 0 };
	const char *stopped = "eof";
	unsigned char *buf;
	shmkit_queue *q;
	char what[256];
	double t0, dt;
	int c, rc, bad, k;
	char **exec = NULL;

	/* --exec CMD [ARG...] takes the rest of the line: split it off before getopt sees it. */
	for (k = 1; k < argc && strcmp(argv[k], "--"); k++) {
		if (!strcmp(argv[k], "--exec")) {
			exec = argv + k + 1;
			if (*exec && !strcmp(*exec, "--"))
				exec++;
			argv[k] = NULL;
			argc = k;
			break;
		}
	}
	while ((c = getopt_long(argc, argv, ":vjt:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			verify = true;
			break;
		case 'j':
			json = true;
			break;
		case 't':
			if (!parse_seconds(optarg, &timeout))
				return usage_error("consume", "bad --timeout '%s'", optarg);
			break;
		case 'n':
			if (!parse_u64(optarg, 1, UINT64_MAX, &count))
				return usage_error("consume", "bad --count '%s'", optarg);
			break;
		case 'h':
			consume_usage(stdout);
			return 0;
		default:
			return bad_option("consume", c, argv);
		}
	}
	if (optind + 1 != argc)
		return usage_error("consume", optind >= argc ? "missing NAME" : "extra argument '%s'",
				   argv[optind + (optind < argc)]);
	if (exec && !*exec)
		return usage_error("consume", "--exec needs a command");
	if (exec && verify)
		return usage_error("consume", "--exec and --verify exclude each other");
	if (exec)
		return consume_exec(argv[optind], exec, timeout, count, json);
	if ((rc = open_queue("consume", argv[optind], &q)))
		return rc;
	snprintf(what, sizeof(what), "consume %s", argv[optind]);
	buf = malloc(shmkit_queue_max_size(q) + 1);
	if (!buf) {
		shmkit_queue_close(q);
		return runtime_error(what, -ENOMEM);
	}
	t0 = now_seconds();
	for (;;) {
		if (v.received == count) {
			stopped = "count";
			break;
		}
		rc = timeout < 0 ? shmkit_queue_get(q, buf, shmkit_queue_max_size(q))
				 : shmkit_queue_get_timeout(q, buf, shmkit_queue_max_size(q),
							    timeout);
		if (rc == -EPIPE)
			break;
		if (rc == -ETIMEDOUT) {
			stopped = "timeout";
			break;
		}
		if (rc < 0) {
			free(buf);
			shmkit_queue_close(q);
			return runtime_error(what, rc);
		}
		if (verify) {
			verify_one(&v, buf, (size_t)rc);
		} else {
			v.received++;
			buf[rc] = '\n';
			if (fwrite(buf, 1, (size_t)rc + 1, stdout) != (size_t)rc + 1) {
				free(buf);
				shmkit_queue_close(q);
				return runtime_error("consume: stdout", -errno);
			}
		}
	}
	dt = now_seconds() - t0;
	free(buf);
	shmkit_queue_close(q);
	bad = v.corrupt || v.out_of_order || v.duplicates;
	if (verify && json) {
		printf("{\"received\": %llu, \"producers\": %zu, \"corrupt\": %llu, "
		       "\"out_of_order\": %llu, \"duplicates\": %llu, \"digest\": %lld, "
		       "\"seconds\": %.6f, \"stopped\": \"%s\"}\n",
		       (unsigned long long)v.received, v.n, (unsigned long long)v.corrupt,
		       (unsigned long long)v.out_of_order, (unsigned long long)v.duplicates,
		       (long long)v.digest, dt, stopped);
	} else if (verify) {
		printf("received %llu from %zu producers: corrupt %llu, out_of_order %llu, "
		       "duplicates %llu (%.3f s, stopped at %s)\n",
		       (unsigned long long)v.received, v.n, (unsigned long long)v.corrupt,
		       (unsigned long long)v.out_of_order, (unsigned long long)v.duplicates, dt,
		       stopped);
	} else if (json) {
		fprintf(stderr, "{\"received\": %llu, \"seconds\": %.6f, \"stopped\": \"%s\"}\n",
			(unsigned long long)v.received, dt, stopped);
	}
	for (size_t i = 0; i < v.n; i++)
		free(v.p[i].bits);
	free(v.p);
	if (fflush(stdout))
		return runtime_error("consume: stdout", -errno);
	return bad ? 1 : 0;
}
