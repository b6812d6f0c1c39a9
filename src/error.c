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

static int record(int code, const char *file, int line, int col, const char *fmt, va_list ap)
{
    E.code = code;
    E.line = line;
    E.col  = col;
    snprintf(E.file, sizeof E.file, "%s", file ? file : "");
    vsnprintf(E.text, sizeof E.text, fmt, ap);
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
