/* src/progress.h - one rewritable progress line on stderr for long work.
 * Off by default; the shell turns it on only when stderr is a terminal, so scripts and
 * tests never see it. kgm_progress() rate-limits itself (at most ~10 updates/s). */
#ifndef KGM_PROGRESS_H
#define KGM_PROGRESS_H

void kgm_progress_enable(int on);
int  kgm_progress_enabled(void);
void kgm_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kgm_progress_done(void);     /* clears the line if one was drawn */

#endif
