/* src/rng.c - xoshiro256** seeded through SplitMix64 (Blackman and Vigna's published
 * algorithms, written here from their descriptions). */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void kgm_rng_seed(kgm_rng *r, uint64_t seed, uint64_t stream)
{
    /* Hash the stream number first so that streams 0, 1, 2 of nearby seeds land far apart. */
    uint64_t h = stream;
    uint64_t x = seed ^ splitmix64(&h);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;   /* the one forbidden state */
}

kgm_rng kgm_rng_split(const kgm_rng *r, uint64_t stream)
{
    kgm_rng child;
    uint64_t seed = r->s[0] ^ rotl(r->s[1], 17) ^ rotl(r->s[2], 31) ^ rotl(r->s[3], 47);
    kgm_rng_seed(&child, seed, stream);
    return child;
}

uint64_t kgm_rng_u64(kgm_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double kgm_rng_uniform(kgm_rng *r)
{
    return (double)(kgm_rng_u64(r) >> 11) * 0x1.0p-53;
}

float kgm_rng_uniformf(kgm_rng *r, float lo, float hi)
{
    float v = lo + (float)kgm_rng_uniform(r) * (hi - lo);
    return v < hi ? v : lo;   /* rounding may reach hi; keep the interval half-open */
}

double kgm_rng_normal(kgm_rng *r)
{
    double u = 1.0 - kgm_rng_uniform(r);   /* (0, 1]: log never sees 0 */
    double v = kgm_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

uint64_t kgm_rng_below(kgm_rng *r, uint64_t n)
{
    if (n == 0) return 0;
    /* Reject the top partial block so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = kgm_rng_u64(r); while (x >= limit);
    return x % n;
}

long kgm_rng_range(kgm_rng *r, long lo, long hi)
{
    if (hi <= lo) return lo;
    return lo + (long)kgm_rng_below(r, (uint64_t)hi - (uint64_t)lo + 1);
}

void kgm_rng_shuffle(kgm_rng *r, int *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)kgm_rng_below(r, i);
        int tmp = a[i - 1];
        a[i - 1] = a[j];
        a[j] = tmp;
    }
}

void kgm_rng_fill_normal(kgm_rng *r, float *x, size_t n, float mean, float sd)
{
    for (size_t i = 0; i < n; i++) x[i] = mean + sd * (float)kgm_rng_normal(r);
}

void kgm_rng_fill_uniform(kgm_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = kgm_rng_uniformf(r, lo, hi);
}
