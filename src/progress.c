/* src/progress.c - the progress line behind kgm_progress(). */
#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int enabled, drawn;
static double last;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void kgm_progress_enable(int on) { enabled = on; }
int kgm_progress_enabled(void) { return enabled; }

void kgm_progress(const char *fmt, ...)
{
    if (!enabled) return;
    double t = now();
    if (drawn && t - last < 0.1) return;
    last = t;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    drawn = 1;
}

void kgm_progress_done(void)
{
    if (!enabled || !drawn) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    drawn = 0;
}
