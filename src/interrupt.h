/* src/interrupt.h - a process-wide "stop soon" flag for long work (loading, embedding,
 * meta-training, tuning). The shell's SIGINT handler raises it; library loops poll
 * kgm_interrupted() at safe points, stop cleanly with KGM_EINTR and keep their last good
 * state. The library never installs signal handlers itself. */
#ifndef KGM_INTERRUPT_H
#define KGM_INTERRUPT_H

void kgm_interrupt_raise(void);   /* async-signal-safe */
int  kgm_interrupted(void);       /* nonzero once raised, until cleared */
void kgm_interrupt_clear(void);

#endif
