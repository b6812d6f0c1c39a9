/* src/blascore.h - running OpenBLAS's fast kernels on CPUs its detection does not know.
 *
 * Debian 12's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernel set from the CPU model when the
 * library loads, before main. CPUs newer than it knows (the Xeons of this project's machines
 * report only "Intel(R) Xeon(R) Processor") get its generic Prescott (SSE3) kernels: one core's
 * sgemm runs 15 GFLOP/s where the SkylakeX kernels run 57 at a 1vsAll batch's shape, 1.9-3.8x
 * across kgmeta's shapes (bench/bench_blas.c).
 * The only override is the environment variable OPENBLAS_CORETYPE, read at load time, so a
 * program that wants the fast kernels must be started with it: kgm_blas_fix_core(argv), the
 * first thing in main, re-executes the program (same arguments, same process id) with
 * OPENBLAS_CORETYPE set when OpenBLAS fell back to Prescott and the CPU has AVX-512 (SkylakeX
 * kernels) or AVX2 with FMA (Haswell kernels). It does nothing when OPENBLAS_CORETYPE is set
 * already (the user's choice, or the re-executed program), when the detected core is any other,
 * under valgrind (which would lose the child), or when the exec fails (the program then runs
 * on, only slower). The library itself never calls it: a program using libkgmeta decides. */
#ifndef KGM_BLASCORE_H
#define KGM_BLASCORE_H

void kgm_blas_fix_core(char **argv);

/* The kernel set OpenBLAS runs, e.g. "SkylakeX" or "Prescott" (borrowed, static) */
const char *kgm_blas_core(void);

/* The kernel set kgm_blas_fix_core would ask for in place of core on this CPU, or NULL to keep
 * core. Exposed for tests. */
const char *kgm_blas_better_core(const char *core);

#endif
