/* shell/plot.h - line and point plots written as PNG or SVG by gnuplot, for what people
 * would rather look at than read: loss curves of a training run, a model's predictions
 * against a task's examples. gnuplot is an optional Debian package: when it is missing
 * the calls fail with a clear message and nothing is written. Not a plotting library:
 * series in, one file out.
 *
 * The gnuplot program is $KGM_GNUPLOT when set (tests point it at a missing program),
 * else "gnuplot" on the PATH. All arguments are borrowed. */
#ifndef KGM_PLOT_H
#define KGM_PLOT_H

#include <stddef.h>

typedef struct {
    const char *name;           /* legend entry */
    const double *x, *y;        /* (n); x NULL: 0, 1, ..., n-1 */
    size_t n;
    int points;                 /* 1: points (examples), 0: a line (curves, predictions) */
} kgm_series;

/* 1 when gnuplot can be run, else 0 with kgm_error() saying how to get it. */
int kgm_plot_available(void);
/* Writes path (.png or .svg, by extension) atomically. KGM_ENOTSUP when gnuplot is
 * missing, KGM_EINVAL for a bad extension or no data, KGM_EIO when gnuplot failed. */
int kgm_plot_write(const char *path, const char *title, const char *xlabel,
                   const char *ylabel, const kgm_series *series, size_t n_series);

#endif
