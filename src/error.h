/* src/error.h - how kgmeta reports failure.
 *
 * Library functions return 0 (KGM_OK) or a negative KGM_E* code and record what happened
 * with kgm_fail() or kgm_fail_at(), which return the code so that failing takes one line:
 *     if (!f) return kgm_fail(KGM_EIO, "cannot open %s: %s", path, strerror(errno));
 * The record is per thread: {code, file, line, column, text}. kgm_error() formats it as
 * "file:line:col: text" (the parts that are known). Library code never prints and never
 * exits; the shell decides what the user sees. */
#ifndef KGM_ERROR_H
#define KGM_ERROR_H

enum {
    KGM_OK        =  0,
    KGM_ENOMEM    = -1,   /* out of memory (or an arena ran out) */
    KGM_EINVAL    = -2,   /* a bad argument: wrong value, wrong shape, unknown name */
    KGM_EIO       = -3,   /* a file could not be read or written */
    KGM_ESYNTAX   = -4,   /* a parse error in a graph, query, script or CSV */
    KGM_ENOTFOUND = -5,   /* a named thing does not exist */
    KGM_EFORMAT   = -6,   /* a damaged, truncated or wrong-version file */
    KGM_EINTR     = -7,   /* interrupted by the user (Ctrl-C); the last good state is kept */
    KGM_ESTATE    = -8,   /* the operation does not fit the current state */
    KGM_ENUMERIC  = -9,   /* NaN or infinity appeared */
    KGM_ENOTSUP   = -10,  /* not supported here */
};

/* Record an error and return `code`. printf-style text, no trailing newline. */
int kgm_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with a location; file may be NULL, line/col <= 0 when unknown. */
int kgm_fail_at(int code, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

const char *kgm_error(void);        /* "file:line:col: text", or "" when no error recorded */
const char *kgm_error_text(void);   /* the text alone */
int         kgm_error_code(void);   /* last recorded code, KGM_OK when none */
void        kgm_error_clear(void);
const char *kgm_strerror(int code); /* "out of memory", "syntax error", ... */

#endif
