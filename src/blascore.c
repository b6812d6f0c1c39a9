/* src/blascore.c - see blascore.h */
#define _POSIX_C_SOURCE 200809L
#include "blascore.h"

#include <cblas.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

const char *kgm_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

const char *kgm_blas_better_core(const char *core)
{
    if (!core || strcasecmp(core, "Prescott")) return NULL;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

void kgm_blas_fix_core(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || RUNNING_ON_VALGRIND) return;
    const char *better = kgm_blas_better_core(kgm_blas_core());
    if (!better || setenv("OPENBLAS_CORETYPE", better, 1)) return;
    execv("/proc/self/exe", argv);
    /* exec failed: run on with the kernels loaded; the variable only reaches our children */
}
