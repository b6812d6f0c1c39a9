/* shell/plot.c - series to PNG/SVG through a gnuplot pipe. The data go inline as
 * gnuplot 5 data blocks ($d0 << EOD), so no temporary data files are needed; the image
 * goes to PATH.tmp and is renamed into place only when gnuplot exited cleanly. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"

static const char *gnuplot_program(void)
{
    const char *p = getenv("KGM_GNUPLOT");
    return p && *p ? p : "gnuplot";
}

int kgm_plot_available(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' --version >/dev/null 2>&1", gnuplot_program());
    int st = system(cmd);
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
    kgm_fail(KGM_ENOTSUP, "plots need gnuplot, which was not found (%s); install it with: "
             "apt-get install gnuplot-nox", gnuplot_program());
    return 0;
}

/* A gnuplot single-quoted string: only ' needs care, written twice. */
static void put_quoted(FILE *g, const char *s)
{
    fputc('\'', g);
    for (; s && *s; s++) {
        if (*s == '\'') fputc('\'', g);
        if (*s != '\n') fputc(*s, g);
    }
    fputc('\'', g);
}

static const char *terminal_for(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot) return NULL;
    if (!strcmp(dot, ".png")) return "pngcairo size 800,500";
    if (!strcmp(dot, ".svg")) return "svg size 800,500 dynamic";
    return NULL;
}

static void put_data(FILE *g, size_t k, const kgm_series *s)
{
    fprintf(g, "$d%zu << EOD\n", k);
    for (size_t i = 0; i < s->n; i++) {
        double x = s->x ? s->x[i] : (double)i, y = s->y[i];
        if (isfinite(x) && isfinite(y)) fprintf(g, "%.17g %.17g\n", x, y);
        else fputs("\n", g);    /* a gap: NaN or inf breaks the line, never the plot */
    }
    fputs("EOD\n", g);
}

int kgm_plot_write(const char *path, const char *title, const char *xlabel,
                   const char *ylabel, const kgm_series *series, size_t n_series)
{
    const char *term = terminal_for(path);
    if (!term) return kgm_fail(KGM_EINVAL, "plot %s: expected a .png or .svg file name", path);
    if (n_series == 0) return kgm_fail(KGM_EINVAL, "plot %s: no series to draw", path);
    for (size_t k = 0; k < n_series; k++)
        if (series[k].n == 0 || !series[k].y)
            return kgm_fail(KGM_EINVAL, "plot %s: series %zu is empty", path, k + 1);
    if (!kgm_plot_available()) return kgm_error_code();

    size_t n = strlen(path) + 5;
    char *tmp = malloc(n);
    if (!tmp) return kgm_fail(KGM_ENOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp", path);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' >/dev/null 2>&1", gnuplot_program());
    FILE *g = popen(cmd, "w");
    if (!g) { free(tmp); return kgm_fail(KGM_EIO, "plot %s: cannot run gnuplot", path); }
    fprintf(g, "set terminal %s\nset output ", term);
    put_quoted(g, tmp);
    fputs("\nset title ", g);  put_quoted(g, title);
    fputs("\nset xlabel ", g); put_quoted(g, xlabel);
    fputs("\nset ylabel ", g); put_quoted(g, ylabel);
    fputs("\nset key outside right\nset grid\n", g);
    for (size_t k = 0; k < n_series; k++) put_data(g, k, &series[k]);
    fputs("plot ", g);
    for (size_t k = 0; k < n_series; k++) {
        fprintf(g, "%s$d%zu using 1:2 with %s title ", k ? ", " : "", k,
                series[k].points ? "points pt 7" : "lines lw 2");
        put_quoted(g, series[k].name ? series[k].name : "");
    }
    fputs("\nunset output\n", g);
    int st = pclose(g);
    int rc = 0;
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        rc = kgm_fail(KGM_EIO, "plot %s: gnuplot failed (exit status %d)", path,
                      st == -1 ? -1 : WEXITSTATUS(st));
    else if (rename(tmp, path) != 0)
        rc = kgm_fail(KGM_EIO, "plot %s: cannot move the image into place", path);
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}
