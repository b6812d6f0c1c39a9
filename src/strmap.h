/* src/strmap.h - interning of strings to dense ids 0, 1, 2, ... (open addressing, FNV-1a).
 * The map owns copies of its strings; kgm_strmap_str() pointers stay valid until the map
 * is freed (strings live in append-only chunks, so growing never moves them). */
#ifndef KGM_STRMAP_H
#define KGM_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct kgm_strmap kgm_strmap;

kgm_strmap *kgm_strmap_new(void);                         /* returns new: kgm_strmap_free() */
void        kgm_strmap_free(kgm_strmap *m);               /* NULL is a no-op */
/* Id of s (len bytes, need not be NUL-terminated), adding it if absent; -1 when out of memory. */
int32_t     kgm_strmap_intern(kgm_strmap *m, const char *s, size_t len);
int32_t     kgm_strmap_find(const kgm_strmap *m, const char *s, size_t len); /* -1 if absent */
const char *kgm_strmap_str(const kgm_strmap *m, int32_t id);                 /* NUL-terminated */
size_t      kgm_strmap_size(const kgm_strmap *m);
size_t      kgm_strmap_bytes(const kgm_strmap *m);        /* memory held, for benchmarks */

#endif
