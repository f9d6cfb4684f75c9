/*
 * `shmkit bridge ARGS...` runs `shmkit-bridge ARGS...` (see launch.h), or says clearly why it
 * cannot: not installed, or this shmkit was configured without ZeroMQ so it was never built.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge/launch.h"
#include "util.h"

/* dir/shmkit-bridge into out when it is an executable file. */
static int try_dir(const char *dir, char *out, size_t n, char *looked, size_t looked_n)
{
	size_t used = strlen(looked);
	int len = snprintf(out, n, "%s/%s", dir, BRIDGE_PROGRAM);

	snprintf(looked + used, looked_n - used, "%s%s", used ? ", " : "", dir);
	return len > 0 && (size_t)len < n && access(out, X_OK) == 0 ? 0 : -ENOENT;
}

int bridge_locate(char *out, size_t n, char *looked, size_t looked_n)
{
	const char *env = getenv("SHMKIT_EXEC_PATH");
	char self[PATH_MAX], *slash;
	ssize_t len;

	looked[0] = 0;
	if (env && *env)
		return try_dir(env, out, n, looked, looked_n);
	/* Next to this shmkit: an installed pair, or the build tree (where libtool runs the real
	 * binaries from tools/.libs, shmkit-bridge's among them). */
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len > 0) {
		self[len] = 0;
		if ((slash = strrchr(self, '/')) && slash != self) {
			*slash = 0;
			if (!try_dir(self, out, n, looked, looked_n))
				return 0;
		}
	}
	return try_dir(SHMKIT_BINDIR, out, n, looked, looked_n);
}

static void not_installed(FILE *f, const char *looked)
{
	fprintf(f, "shmkit: bridge: %s, the ZeroMQ bridge, is not installed (looked in %s)",
		BRIDGE_PROGRAM, looked);
#ifdef HAVE_ZMQ
	fprintf(f, ": install it (make install builds it with this shmkit), or a distribution's "
		   "package of it\n");
#else
	fprintf(f, ": this shmkit was built without ZeroMQ (libzmq), so it was not built: install "
		   "libzmq3-dev and build again, or a distribution's package of it\n");
#endif
}

int cmd_bridge(int argc, char **argv)
{
	char path[PATH_MAX + 32], looked[2 * PATH_MAX + 64];

	if (bridge_locate(path, sizeof(path), looked, sizeof(looked))) {
		if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			printf("Usage: shmkit bridge send|recv|keygen|... [ARGS...]\n"
			       "Runs %s (see shmkit-bridge(1)), which is not here:\n",
			       BRIDGE_PROGRAM);
			not_installed(stdout, looked);
			return 0;
		}
		not_installed(stderr, looked);
		return 1;
	}
	argv[0] = (char *)BRIDGE_PROGRAM;
	execv(path, argv);
	fprintf(stderr, "shmkit: bridge: %s: %s\n", path, strerror(errno));
	return 1;
}
