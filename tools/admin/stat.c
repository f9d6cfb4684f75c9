/* `shmkit stat NAME`: one object's kind, owner, mode and state (described by describe.c, which
 * ls shares). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "admin/describe.h"
#include "util.h"

/* ------------------------------------------------------------------------------------------- */
/* stat                                                                                        */

int cmd_stat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char what[SHMKIT_NAME_MAX + 16];
	struct shmkit_info info;
	struct fields *fs;
	bool json = false;
	int opt, err;

	while ((opt = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("Usage: shmkit stat NAME [--json]\n"
			       "Show a named object's kind, owner, mode and state (value, lock "
			       "holder,\nowner deaths, semaphore count, ...) without changing it.\n\n"
			       "Options:\n"
			       "  -j, --json    print one JSON object\n"
			       "  -h, --help    this text\n");
			return 0;
		default:
			return bad_option("stat", opt, argv);
		}
	}
	if (optind == argc)
		return usage_error("stat", "missing NAME");
	if (argc - optind > 1)
		return usage_error("stat", "unexpected argument '%s'", argv[optind + 1]);
	if ((err = check_name("stat", argv[optind])))
		return err;
	snprintf(what, sizeof(what), "stat %s", argv[optind]);
	if ((err = shmkit_info(argv[optind], &info)) < 0)
		return runtime_error(what, err);
	if (!(fs = malloc(sizeof(*fs))))
		return runtime_error(what, -ENOMEM);
	all_fields(argv[optind], &info, fs);
	if (json) {
		print_json(fs);
		printf("\n");
	} else {
		print_text(fs);
	}
	free(fs);
	return fflush(stdout) == 0 ? 0 : runtime_error("stat", -errno);
}

