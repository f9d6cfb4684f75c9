/*
 * `shmkit bridge`: the command line of the two bridges and of keygen. Built with or without
 * libzmq: without it, every form but --help says the bridge was built without ZeroMQ.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "util.h"
#ifdef HAVE_ZMQ
#include "bridge/bridge.h"

volatile int bridge_stop;

static void on_stop(int sig)
{
	(void)sig;
	bridge_stop = 1;
}
#endif

#ifndef HAVE_ZMQ
/* The bench rows, without the means to measure them. */
int bench_bridge(const struct bench_opts *o)
{
	static const char *const names[] = { "zmq", "bridge" };
	struct bench_result r;
	int i;

	(void)o;
	for (i = 0; i < 2; i++) {
		bench_result_init(&r, names[i], BENCH_BRIDGE);
		r.size = 64;
		snprintf(r.unsupported, sizeof(r.unsupported), "shmkit built without libzmq");
		bench_add(&r);
	}
	return 0;
}
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: shmkit bridge send NAME ENDPOINT [OPTIONS]\n"
		"       shmkit bridge recv ENDPOINT NAME [OPTIONS]\n"
		"       shmkit bridge keygen PREFIX\n"
		"Forward a queue to a queue on another host over ZeroMQ: every message once, in order\n"
		"per send bridge, across restarts of either bridge and cuts of the connection.\n"
		"  send  takes messages from local queue NAME and sends them to ENDPOINT\n"
		"        (tcp://HOST:PORT or ipc://PATH), which it connects to; at NAME's EOF it\n"
		"        forwards EOF and exits. Restarted after a crash, it resumes as itself.\n"
		"  recv  binds ENDPOINT (exactly what it is given) and puts what several send bridges\n"
		"        send into queue NAME (which must exist), through a keeper process that stays\n"
		"        NAME's one writer across restarts; exits once every sender forwarded EOF.\n"
		"  keygen  writes PREFIX.key (secret, 0600) and PREFIX.pub: CURVE keys.\n"
		"\nOptions:\n"
		"  -w, --window N          send: unacknowledged messages kept for resending, 1..%d\n"
		"                          (default %d); a killed send bridge loses at most these,\n"
		"                          counted in NAME's stats as lost with a dead consumer\n"
		"      --state NAME        the state object (send: NAME.bridge-s, recv: NAME.bridge-r)\n"
		"      --resend S          send: resend the window after S seconds without an ack\n"
		"                          (default 1)\n"
		"      --connect-timeout S send: give up when no receiver answers the first hello in\n"
		"                          S seconds (default 30; 0: wait forever)\n"
		"      --curve-key FILE    our CURVE key pair (from keygen); recv: encrypts\n"
		"      --curve-server FILE send: the receiver's public key; encrypts\n"
		"      --curve-allow FILE  recv: admit only senders whose public keys FILE lists\n"
		"  -q, --quiet             no notes on stderr\n"
		"  -j, --json              a one-line JSON summary at the end\n"
		"  -h, --help              this text\n"
		"Exit status: 0 at EOF (or stopped by SIGINT/SIGTERM, state kept), 1 on a runtime\n"
		"error, 2 on a usage error.\n",
#ifdef HAVE_ZMQ
		BRIDGE_WINDOW_MAX, BRIDGE_WINDOW_DEFAULT
#else
		65536, 1024
#endif
	);
}

int cmd_bridge(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "window", required_argument, NULL, 'w' },
		{ "state", required_argument, NULL, 'S' },
		{ "resend", required_argument, NULL, 'r' },
		{ "connect-timeout", required_argument, NULL, 'c' },
		{ "curve-key", required_argument, NULL, 'k' },
		{ "curve-server", required_argument, NULL, 's' },
		{ "curve-allow", required_argument, NULL, 'a' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub = NULL, *cmd = "bridge";
	char *pos[3];
	int npos = 0, c;
#ifdef HAVE_ZMQ
	struct bridge_opts o = { .window = BRIDGE_WINDOW_DEFAULT, .resend_s = 1.0,
				 .connect_s = 30.0 };
	struct sigaction sa;
	int64_t ns;
	uint64_t u;
#endif

	while ((c = getopt_long(argc, argv, ":w:qjh", opts, NULL)) != -1) {
		switch (c) {
#ifdef HAVE_ZMQ
		case 'w':
			if (!parse_u64(optarg, 1, BRIDGE_WINDOW_MAX, &u))
				return usage_error(cmd, "bad --window '%s' (1..%d)", optarg,
						   BRIDGE_WINDOW_MAX);
			o.window = (unsigned)u;
			break;
		case 'S':
			if (shmkit_name_check(optarg))
				return usage_error(cmd, "bad --state '%s'", optarg);
			o.state = optarg;
			break;
		case 'r':
			if (!parse_seconds(optarg, &ns) || ns <= 0)
				return usage_error(cmd, "bad --resend '%s'", optarg);
			o.resend_s = (double)ns / 1e9;
			break;
		case 'c':
			if (!parse_seconds(optarg, &ns))
				return usage_error(cmd, "bad --connect-timeout '%s'", optarg);
			o.connect_s = (double)ns / 1e9;
			break;
		case 'k':
			o.curve_key = optarg;
			break;
		case 's':
			o.curve_server = optarg;
			break;
		case 'a':
			o.curve_allow = optarg;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'j':
			o.json = true;
			break;
#else
		case 'w': case 'S': case 'r': case 'c': case 'k': case 's': case 'a': case 'q':
		case 'j':
			break;
#endif
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option(cmd, c, argv);
		}
	}
	for (; optind < argc; optind++) {
		if (!sub) {
			sub = argv[optind];
			continue;
		}
		if (npos == 3)
			return usage_error(cmd, "extra argument '%s'", argv[optind]);
		pos[npos++] = argv[optind];
	}
	if (!sub)
		return usage_error(cmd, "missing send, recv or keygen");
	if (!strcmp(sub, "keygen")) {
		if (npos != 1)
			return usage_error("bridge keygen", npos ? "extra argument '%s'" : "missing PREFIX",
					   npos ? pos[1] : "");
	} else if (!strcmp(sub, "send") || !strcmp(sub, "recv")) {
		cmd = sub[0] == 's' ? "bridge send" : "bridge recv";
		if (npos != 2)
			return usage_error(cmd, npos > 2 ? "extra argument '%s'"
					   : sub[0] == 's' ? "expected NAME ENDPOINT" : "expected ENDPOINT NAME",
					   npos > 2 ? pos[2] : "");
	} else {
		return usage_error(cmd, "unknown '%s' (send, recv or keygen)", sub);
	}
#ifndef HAVE_ZMQ
	fprintf(stderr, "shmkit: %s: this shmkit was built without ZeroMQ (libzmq): install "
			"libzmq3-dev and build again\n", cmd);
	return 1;
#else
	if (!strcmp(sub, "keygen"))
		return bridge_keygen(pos[0]);
	o.cmd = cmd;
	if (sub[0] == 's') {
		o.queue = pos[0];
		o.endpoint = pos[1];
	} else {
		o.endpoint = pos[0];
		o.queue = pos[1];
		if (o.curve_server)
			return usage_error(cmd, "--curve-server is for send (recv uses --curve-key)");
	}
	if (shmkit_name_check(o.queue))
		return usage_error(cmd, "bad queue name '%s'", o.queue);
	if (sub[0] == 's' && o.curve_allow)
		return usage_error(cmd, "--curve-allow is for recv");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return sub[0] == 's' ? bridge_send(&o) : bridge_recv(&o);
#endif
}
