/*
 * shmkit-bridge, the program `shmkit bridge` runs: the command line of the two bridges, keygen
 * and bench. Built only with libzmq (the core shmkit tool links none).
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bridge/bridge.h"
#include "util.h"

volatile int bridge_stop;

void bridge_killpoint(const char *point)
{
	static const char *at;
	static unsigned long nth, seen;
	static bool init;
	size_t n;

	if (!init) {
		/* "POINT" or "POINT@N": the Nth time the point is passed. */
		const char *amp;

		at = getenv("SHMKIT_BRIDGE_KILL_AT");
		nth = at && (amp = strchr(at, '@')) ? strtoul(amp + 1, NULL, 10) : 1;
		init = true;
	}
	if (!at)
		return;
	n = strcspn(at, "@");
	if (strlen(point) == n && !strncmp(at, point, n) && ++seen >= nth)
		kill(getpid(), SIGKILL);
}

static void on_stop(int sig)
{
	(void)sig;
	bridge_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: shmkit bridge send NAME ENDPOINT [OPTIONS]\n"
		"       shmkit bridge recv ENDPOINT NAME [OPTIONS]\n"
		"       shmkit bridge keygen PREFIX\n"
		"       shmkit bridge bench [--quick] [--json]\n"
		"       shmkit bridge senders NAME [--state S] [--json]\n"
		"       shmkit bridge forget NAME SENDER [--state S]\n"
		"(shmkit-bridge ... is the same program run directly)\n"
		"Forward a queue to a queue on another host over ZeroMQ: every message once, in order\n"
		"per send bridge, across restarts of either bridge and cuts of the connection.\n"
		"  send  takes messages from local queue NAME and sends them to ENDPOINT\n"
		"        (tcp://HOST:PORT or ipc://PATH), which it connects to; at NAME's EOF it\n"
		"        forwards EOF and exits. Restarted after a crash, it resumes as itself.\n"
		"  recv  binds ENDPOINT (exactly what it is given) and puts what several send bridges\n"
		"        send into queue NAME (which must exist), through a keeper process that stays\n"
		"        NAME's one writer across restarts; exits once every sender forwarded EOF.\n"
		"  keygen  writes PREFIX.key (secret, 0600) and PREFIX.pub: CURVE keys.\n"
		"  senders lists the send bridges a receiver for NAME knows: staged, delivered,\n"
		"          lost (died in a sender's window), and open/eof/forgotten\n"
		"  forget  makes the receiver stop waiting for SENDER's EOF (one that vanished):\n"
		"          what it staged is delivered, it is refused from then on, and what it\n"
		"          still holds is neither delivered nor counted\n"
		"  bench   64-byte messages through both bridges on loopback against bare ZeroMQ\n"
		"          (what 'shmkit bench --only bridge' shows)\n"
		"\nOptions:\n"
		"  -w, --window N          send: unacknowledged messages kept for resending, 1..%d\n"
		"                          (default %d); a killed send bridge loses at most these,\n"
		"                          counted in NAME's stats as lost with a dead consumer\n"
		"      --state NAME        the state object (send: NAME.bridge-s, recv: NAME.bridge-r)\n"
		"      --resend S          send: ask the receiver how far it is after S seconds without\n"
		"                          an ack, doubling up to 30 (default 1); the window is sent\n"
		"                          again only after a reconnect or a reported gap\n"
		"      --connect-timeout S send: give up when no receiver answers the first hello, or\n"
		"                          acknowledges EOF, in S seconds (default 30; 0: wait forever)\n"
		"      --curve-key FILE    our CURVE key pair (from keygen); recv: encrypts\n"
		"      --curve-server FILE send: the receiver's public key; encrypts\n"
		"      --curve-allow FILE  recv: admit only senders whose public keys FILE lists\n"
		"  -q, --quiet             no notes on stderr\n"
		"  -j, --json              a one-line JSON summary at the end\n"
		"      --quick             bench: 200,000 messages instead of 1,000,000\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n"
		"Exit status: 0 at EOF (or stopped by SIGINT/SIGTERM, state kept), 1 on a runtime\n"
		"error, 2 on a usage error.\n",
		BRIDGE_WINDOW_MAX, BRIDGE_WINDOW_DEFAULT);
}

static int bridge_main(int argc, char **argv)
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
		{ "quick", no_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub = NULL, *cmd = "bridge";
	char *pos[3];
	int npos = 0, c;
	bool quick = false;
	struct bridge_opts o = { .window = BRIDGE_WINDOW_DEFAULT, .resend_s = 1.0,
				 .connect_s = 30.0 };
	struct sigaction sa;
	int64_t ns;
	uint64_t u;

	while ((c = getopt_long(argc, argv, ":w:qjhV", opts, NULL)) != -1) {
		switch (c) {
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
		case 'Q':
			quick = true;
			break;
		case 'V':
			printf("shmkit-bridge %s (libzmq %d.%d.%d)\n", SHMKIT_VERSION, ZMQ_VERSION_MAJOR,
			       ZMQ_VERSION_MINOR, ZMQ_VERSION_PATCH);
			return 0;
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
		return usage_error(cmd, "missing send, recv, keygen, bench, senders or forget");
	if (!strcmp(sub, "senders")) {
		if (npos != 1)
			return usage_error("bridge senders", npos ? "extra argument '%s'" : "missing NAME",
					   npos ? pos[1] : "");
		return bridge_senders(pos[0], o.state, o.json);
	}
	if (!strcmp(sub, "forget")) {
		if (npos != 2)
			return usage_error("bridge forget", npos > 2 ? "extra argument '%s'"
							  : "expected NAME SENDER",
					   npos > 2 ? pos[2] : "");
		return bridge_forget(pos[0], o.state, pos[1]);
	}
	if (!strcmp(sub, "bench")) {
		if (npos)
			return usage_error("bridge bench", "extra argument '%s'", pos[0]);
		return bridge_bench(quick, o.json);
	}
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
		return usage_error(cmd, "unknown '%s' (send, recv, keygen, bench, senders or forget)", sub);
	}
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
}

/* `shmkit bridge ARGS` execs this with argv[0] "shmkit-bridge" and ARGS after it, which is
 * also what a user typing shmkit-bridge ARGS gives: the same parse either way. */
int main(int argc, char **argv)
{
	/* The keeper a receiving bridge starts (keeper.c); not a user's command. */
	if (argc == 6 && !strcmp(argv[1], "keeper"))
		return bridge_keeper_main(argv[2], argv[3], argv[4], argv[5]);
	return bridge_main(argc, argv);
}
