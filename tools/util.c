/* Helpers shared by the shmkit subcommands: strict parsing, errors, JSON. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shmkit: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try 'shmkit %s --help')\n", cmd);
	return EXIT_USAGE;
}

/* The object name inside `what` ("create /q", "/q"), or NULL. */
static const char *name_in(const char *what)
{
	const char *p = strchr(what, '/');

	return p && (p == what || p[-1] == ' ') && !shmkit_name_check(p) ? p : NULL;
}

/* Whether name holds a shmkit object its creator never finished (or none at all). */
static bool leftover(const char *name)
{
	struct shmkit_info in;
	int err = shmkit_info(name, &in);

	return err == -ENOTRECOVERABLE || err == -EAGAIN;
}

/* Say why, when the bare errno would leave the user guessing: which mode or owner refused
 * them (in place of the errno's text, on the error's own line), what a leftover name is and
 * how to free it (on a line of its own). true when the reason was printed as the error. */
static bool explain(const char *what, const char *name, int err)
{
	char path[SHMKIT_NAME_MAX + 16];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm%s", name);
	if (lstat(path, &st) < 0)
		return false;
	if (err == -EACCES && st.st_uid != geteuid() && (st.st_mode & S_IWOTH)) {
		fprintf(stderr, "shmkit: %s: refused: mode %04o lets any user write it, so anyone "
				"could rewrite it under you; ask its owner (uid %u) to recreate it "
				"with --mode 0660 (a group) or 0600, or accept it with "
				"SHMKIT_TRUST=any (shmkit(7))\n",
			what, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return true;
	}
	if (err == -EACCES) {
		fprintf(stderr, "shmkit: %s: permission denied: owned by uid %u with mode %04o, and "
				"you are uid %u\n", what, (unsigned)st.st_uid,
			(unsigned)(st.st_mode & 07777), (unsigned)geteuid());
		return true;
	}
	if (err == -EAGAIN) {
		fprintf(stderr, "shmkit: %s: still being created by a live process (try again "
				"once it has finished)\n", what);
		return true;
	}
	fprintf(stderr, "shmkit: %s: %s\n", what, shmkit_strerror(err));
	if ((err == -EEXIST || err == -EBADMSG) && S_ISREG(st.st_mode) &&
	    shmkit_remove_check(name) == -EBADMSG) {
		fprintf(stderr, "shmkit: %s: the name holds a file of %lld bytes that is not a "
				"shmkit object; remove " "/dev/shm%s by hand if it is yours\n",
			name, (long long)st.st_size, name);
	} else if (err == -ENOTRECOVERABLE ||
		   (err == -EEXIST && S_ISREG(st.st_mode) && leftover(name))) {
		fprintf(stderr, "shmkit: %s: its creator died while creating it: 'shmkit rm %s' "
				"frees the name\n", name, name);
	} else if ((err == -EEXIST || err == -EBADMSG) && !S_ISREG(st.st_mode)) {
		fprintf(stderr, "shmkit: %s: the name is taken by something that is not a shmkit "
				"object (not a regular file); remove it by hand\n", name);
	} else if (err == -EBUSY) {
		fprintf(stderr, "shmkit: %s: a live process is still creating it; try again once it "
				"has finished\n", name);
	}
	return true;
}

int runtime_error(const char *what, int err)
{
	const char *name = name_in(what);

	if (!name || !explain(what, name, err))
		fprintf(stderr, "shmkit: %s: %s\n", what, shmkit_strerror(err));
	return 1;
}

int check_name(const char *cmd, const char *name)
{
	if (shmkit_name_check(name) == 0)
		return 0;
	return usage_error(cmd, "bad name '%s': want '/' then 1..%d of A-Z a-z 0-9 . _ - "
				"(not /sem.*)", name, SHMKIT_NAME_MAX);
}

int bad_option(const char *cmd, int opt, char **argv)
{
	/* Callers' optstrings start with ':' so a missing argument is told apart. */
	if (opt == ':')
		return usage_error(cmd, "option '%s' needs an argument", argv[optind - 1]);
	if (optopt)
		return usage_error(cmd, "unknown option '-%c'", optopt);
	return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const char units[] = "KMG";
	unsigned long long v;
	const char *u;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	if (*end) {
		if (end[1] || !(u = strchr(units, *end)))
			return false;
		if (v > (UINT64_MAX >> (10 * (u - units + 1))))
			return false;
		v <<= 10 * (u - units + 1);
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool parse_i64(const char *s, int64_t *out)
{
	long long v;
	char *end;

	if (!s || !*s || *s == ' ')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

bool parse_mode(const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || *end || v > 07777)
		return false;
	*out = (unsigned)v;
	return true;
}

bool parse_seconds(const char *s, int64_t *ns)
{
	double v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0) || v > 1e9)
		return false;
	*ns = (int64_t)(v * 1e9);
	return true;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}
