/* src/error.c - the per-thread error record behind kgm_fail(). */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    int  code;
    int  line, col;
    char file[512];
    char text[1024];
    char formatted[1600];
} err_record;

static _Thread_local err_record E;

/* Copy src into dst (cap bytes) with control characters written as C escapes, so a message
 * that quotes user data (a column name with a newline, a path with a tab) stays one line. */
static void copy_one_line(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (const unsigned char *s = (const unsigned char *)src; *s && n + 1 < cap; s++) {
        char esc[5] = { (char)*s, 0 };
        if (*s == '\n') memcpy(esc, "\\n", 3);
        else if (*s == '\t') memcpy(esc, "\\t", 3);
        else if (*s == '\r') memcpy(esc, "\\r", 3);
        else if (*s < 0x20 || *s == 0x7f) snprintf(esc, sizeof esc, "\\x%02x", *s);
        size_t len = strlen(esc);
        if (n + len >= cap) break;
        memcpy(dst + n, esc, len);
        n += len;
    }
    dst[n] = 0;
}

static int record(int code, const char *file, int line, int col, const char *fmt, va_list ap)
{
    char raw[sizeof E.text];
    E.code = code;
    E.line = line;
    E.col  = col;
    copy_one_line(E.file, sizeof E.file, file ? file : "");
    vsnprintf(raw, sizeof raw, fmt, ap);
    copy_one_line(E.text, sizeof E.text, raw);
    return code;
}

int kgm_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(code, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return code;
}

int kgm_fail_at(int code, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(code, file, line, col, fmt, ap);
    va_end(ap);
    return code;
}

const char *kgm_error(void)
{
    if (E.code == KGM_OK && !E.text[0]) return "";
    size_t n = 0, cap = sizeof E.formatted;
    E.formatted[0] = 0;
    if (E.file[0]) {
        n += (size_t)snprintf(E.formatted + n, cap - n, "%s:", E.file);
        if (E.line > 0 && n < cap) n += (size_t)snprintf(E.formatted + n, cap - n, "%d:", E.line);
        if (E.line > 0 && E.col > 0 && n < cap)
            n += (size_t)snprintf(E.formatted + n, cap - n, "%d:", E.col);
        if (n < cap) n += (size_t)snprintf(E.formatted + n, cap - n, " ");
    }
    if (n < cap) snprintf(E.formatted + n, cap - n, "%s", E.text);
    return E.formatted;
}

const char *kgm_error_text(void) { return E.text; }
int kgm_error_code(void) { return E.code; }
void kgm_error_clear(void) { memset(&E, 0, sizeof E); }

const char *kgm_strerror(int code)
{
    switch (code) {
    case KGM_OK:        return "ok";
    case KGM_ENOMEM:    return "out of memory";
    case KGM_EINVAL:    return "invalid argument";
    case KGM_EIO:       return "input/output error";
    case KGM_ESYNTAX:   return "syntax error";
    case KGM_ENOTFOUND: return "not found";
    case KGM_EFORMAT:   return "damaged or unsupported file";
    case KGM_EINTR:     return "interrupted";
    case KGM_ESTATE:    return "not possible in the current state";
    case KGM_ENUMERIC:  return "numerical error (NaN or infinity)";
    case KGM_ENOTSUP:   return "not supported";
    default:            return "unknown error";
    }
}
