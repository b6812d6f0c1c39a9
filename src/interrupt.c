/* src/interrupt.c - the flag behind kgm_interrupted(). */
#include "interrupt.h"

#include <signal.h>

static volatile sig_atomic_t raised;

void kgm_interrupt_raise(void) { raised = 1; }
int  kgm_interrupted(void) { return raised != 0; }
void kgm_interrupt_clear(void) { raised = 0; }
