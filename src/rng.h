/* src/rng.h - seedable random numbers with independent streams.
 *
 * A kgm_rng is a small value (xoshiro256** state, 32 bytes) that the caller owns; there is no
 * global generator. kgm_rng_seed(r, seed, stream) derives the state from (seed, stream) through
 * SplitMix64 hashing, so stream k of a seed is the same sequence whichever thread uses it and
 * whenever: give each task, worker or example its own stream number and results do not depend
 * on scheduling. Streams of one seed are statistically independent (different hashed states;
 * not a proof of non-overlap, but xoshiro256**'s period is 2^256 - 1).
 * Not cryptographic. */
#ifndef KGM_RNG_H
#define KGM_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct kgm_rng { uint64_t s[4]; } kgm_rng;

void     kgm_rng_seed(kgm_rng *r, uint64_t seed, uint64_t stream);
/* A child generator: stream `stream` of r's current state (r is not advanced). */
kgm_rng  kgm_rng_split(const kgm_rng *r, uint64_t stream);
uint64_t kgm_rng_u64(kgm_rng *r);                          /* 64 uniform bits */
double   kgm_rng_uniform(kgm_rng *r);                      /* [0, 1), 53 bits */
float    kgm_rng_uniformf(kgm_rng *r, float lo, float hi); /* [lo, hi) */
double   kgm_rng_normal(kgm_rng *r);                       /* N(0, 1), Box-Muller (2 draws per value) */
uint64_t kgm_rng_below(kgm_rng *r, uint64_t n);            /* [0, n), unbiased; n == 0 gives 0 */
long     kgm_rng_range(kgm_rng *r, long lo, long hi);      /* [lo, hi] inclusive, unbiased; lo <= hi */
void     kgm_rng_shuffle(kgm_rng *r, int *a, size_t n);    /* Fisher-Yates, in place */
/* Fill x[0..n-1] with N(mean, sd^2) / U[lo, hi) floats. */
void     kgm_rng_fill_normal(kgm_rng *r, float *x, size_t n, float mean, float sd);
void     kgm_rng_fill_uniform(kgm_rng *r, float *x, size_t n, float lo, float hi);

#endif
