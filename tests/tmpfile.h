/* tests/tmpfile.h - a fresh file under /tmp for the tests that save and read back files:
 * named "/tmp/kgm_<PREFIX>_XXXXXX" (mkstemp, so unique), holding text (NULL: empty). The
 * caller unlinks it. Header-only (static inline). */
#ifndef KGM_TESTS_TMPFILE_H
#define KGM_TESTS_TMPFILE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The file's name goes to path (n bytes, room for the prefix + 16). 0, or -1 on failure. */
static inline int tmpfile_make(char *path, size_t n, const char *prefix, const char *text)
{
    snprintf(path, n, "/tmp/kgm_%s_XXXXXX", prefix);
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    size_t len = text ? strlen(text) : 0;
    int ok = len == 0 || write(fd, text, len) == (ssize_t)len;
    close(fd);
    return ok ? 0 : -1;
}

#endif
