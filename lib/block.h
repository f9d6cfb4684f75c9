/* Library-private part of the block kind that info.c needs (kept out of internal.h, which
 * belongs to the crash-safety core). */
#ifndef SHMKIT_BLOCK_H
#define SHMKIT_BLOCK_H

#include "internal.h"

/* Fill info->len (data bytes), holder and owner_deaths from a mapped block region, possibly
 * read-only, whose contents are untrusted. 0, or -EBADMSG when the sizes do not add up. */
int shmkit__block_info(const struct shmkit__region *r, struct shmkit_info *info);

#endif /* SHMKIT_BLOCK_H */
