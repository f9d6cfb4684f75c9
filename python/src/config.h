/* What the autoconf-made config.h gives the library's sources, for building them into the
 * extension without running configure: only the feature macro they rely on. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
