/* Sections of `shmkit demo`, one lesson each; each returns 0 or prints why it failed. */
#ifndef SHMKIT_TOOLS_DEMO_H
#define SHMKIT_TOOLS_DEMO_H

/* A bakery process fills a shelf (a bounded Queue) and customer processes empty it. */
int demo_bakery(void);
/* The washer -> dryer -> shelf pipeline of JoinableQueues. */
int demo_dishes(void);

#endif
