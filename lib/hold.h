/*
 * hold.c: whether anyone has an object open, as the kernel sees it, and removing a name only
 * when nobody does (see hold.c for the argument).
 */
#ifndef SHMKIT_HOLD_H
#define SHMKIT_HOLD_H

#include "region.h"

/* Take this description's hold on its file (every handle has one while it is open): 0, or
 * -EBUSY when a remover kept the hold byte past the wait, or -errno. */
int shmkit__hold_take(int fd);
/* After an open by name took its hold: 0 if the name still names r's file, else -ENOENT (a
 * remover took the name between our open and our hold). */
int shmkit__hold_verify(const struct shmkit__region *r);
/* A new descriptor of `name`'s file holding a hold of its own (close it to let go): what a
 * parent hands a child that will open the object later. fd, or -errno. */
int shmkit__hold_open(const char *name);
/* Remove `name` (as shmkit_remove does) only if no open description anywhere holds it and no
 * live creator is making it: 0 removed, -EBUSY in use, -ENOENT gone, or -errno. */
int shmkit__remove_unused(const char *name);

#endif /* SHMKIT_HOLD_H */
