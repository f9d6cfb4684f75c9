/* Sections of `shmkit demo`, one lesson each; each returns 0 or prints why it failed. */
#ifndef SHMKIT_TOOLS_DEMO_H
#define SHMKIT_TOOLS_DEMO_H

#include <stdbool.h>
#include <sys/types.h>

/* A bakery process fills a shelf (a bounded Queue) and customer processes empty it. */
int demo_bakery(void);
/* The washer -> dryer -> shelf pipeline of JoinableQueues. */
int demo_dishes(void);

/* tools/demo/: one file per section. `quick` makes a section shorter where it can be. */
int demo_deadlock(bool quick);
int demo_semaphore(bool quick);
int demo_condition(bool quick);
int demo_event(bool quick);
int demo_pipe(bool quick);

/* Helpers for the sections (tools/demo/common.c). */
/* Fork a child that runs fn(arg, id) and exits with its result; the child's pid, or -1. */
pid_t demo_fork(int (*fn)(void *arg, int id), void *arg, int id);
/* Wait for n children; how many failed (non-zero exit, killed, or never started). */
int demo_reap(const pid_t *pids, int n);
void demo_sleep_ms(int ms);
/* printf, then flush: lines from several processes come out whole and in order of writing. */
void demo_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
