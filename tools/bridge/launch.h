/*
 * `shmkit bridge` in the core tool: the bridge is a program of its own, shmkit-bridge (linked
 * with libzmq), so that shmkit itself links only libc and libshmkit and a distribution can
 * package the ZeroMQ part separately. shmkit finds it as git finds git-foo: next to itself,
 * then in the directory it was installed into.
 */
#ifndef SHMKIT_TOOLS_BRIDGE_LAUNCH_H
#define SHMKIT_TOOLS_BRIDGE_LAUNCH_H

#include <stddef.h>

#define BRIDGE_PROGRAM "shmkit-bridge"

/* The path of an executable shmkit-bridge in out[0..n): 0, or -ENOENT with the directories
 * looked in written to `looked` (for the error message). SHMKIT_EXEC_PATH, when set, is the
 * only directory looked in (as GIT_EXEC_PATH is for git). */
int bridge_locate(char *out, size_t n, char *looked, size_t looked_n);

#endif
