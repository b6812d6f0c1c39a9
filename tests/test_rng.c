/* tests/test_rng.c - the generator is reproducible per (seed, stream), streams are independent
 * of each other and of the order they are used in, and the distributions have their moments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rng.h"

enum { M = 20000 };

static void same_seed_and_stream_same_numbers(void **state)
{
    (void)state;
    kgm_rng a, b;
    kgm_rng_seed(&a, 1234, 7);
    kgm_rng_seed(&b, 1234, 7);
    for (int i = 0; i < 1000; i++) assert_true(kgm_rng_u64(&a) == kgm_rng_u64(&b));
    /* Another seed, or another stream, gives another sequence. */
    kgm_rng c, d;
    kgm_rng_seed(&c, 1235, 7);
    kgm_rng_seed(&d, 1234, 8);
    kgm_rng_seed(&a, 1234, 7);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = kgm_rng_u64(&a);
        same_c += x == kgm_rng_u64(&c);
        same_d += x == kgm_rng_u64(&d);
    }
    assert_int_equal(same_c, 0);
    assert_int_equal(same_d, 0);
    /* A split child is reproducible and does not advance the parent. */
    kgm_rng_seed(&a, 99, 0);
    kgm_rng k1 = kgm_rng_split(&a, 3), k2 = kgm_rng_split(&a, 3), k3 = kgm_rng_split(&a, 4);
    uint64_t first = kgm_rng_u64(&k1);
    assert_true(first == kgm_rng_u64(&k2));
    assert_true(first != kgm_rng_u64(&k3));
    kgm_rng_seed(&b, 99, 0);
    assert_true(kgm_rng_u64(&a) == kgm_rng_u64(&b));
}

/* Streams used interleaved (as threads would) give exactly what they give used one after another. */
static void streams_do_not_depend_on_scheduling(void **state)
{
    (void)state;
    double alone[4][50], mixed[4][50];
    for (int s = 0; s < 4; s++) {
        kgm_rng r;
        kgm_rng_seed(&r, 42, (uint64_t)s);
        for (int i = 0; i < 50; i++) alone[s][i] = kgm_rng_normal(&r);
    }
    kgm_rng r[4];
    for (int s = 0; s < 4; s++) kgm_rng_seed(&r[s], 42, (uint64_t)s);
    for (int i = 0; i < 50; i++)
        for (int s = 3; s >= 0; s--) mixed[s][i] = kgm_rng_normal(&r[s]);
    assert_memory_equal(alone, mixed, sizeof alone);
}

static void neighbouring_streams_are_uncorrelated(void **state)
{
    (void)state;
    for (uint64_t s = 0; s < 4; s++) {
        kgm_rng a, b;
        kgm_rng_seed(&a, 5, s);
        kgm_rng_seed(&b, 5, s + 1);
        double sab = 0, sa = 0, sb = 0, saa = 0, sbb = 0;
        for (int i = 0; i < M; i++) {
            double x = kgm_rng_uniform(&a), y = kgm_rng_uniform(&b);
            sab += x * y; sa += x; sb += y; saa += x * x; sbb += y * y;
        }
        double cov = sab / M - (sa / M) * (sb / M);
        double corr = cov / sqrt((saa / M - sa * sa / M / M) * (sbb / M - sb * sb / M / M));
        assert_true(fabs(corr) < 4.0 / sqrt(M));   /* 4 standard errors */
    }
}

static void distributions_have_their_moments(void **state)
{
    (void)state;
    kgm_rng r;
    kgm_rng_seed(&r, 2026, 0);
    double su = 0, sn = 0, snn = 0;
    for (int i = 0; i < M; i++) {
        double u = kgm_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        su += u;
        double z = kgm_rng_normal(&r);
        sn += z;
        snn += z * z;
    }
    assert_true(fabs(su / M - 0.5) < 4 * sqrt(1.0 / 12 / M));
    assert_true(fabs(sn / M) < 4 / sqrt(M));
    assert_true(fabs(snn / M - 1.0) < 4 * sqrt(2.0 / M));
    for (int i = 0; i < 1000; i++) {
        float f = kgm_rng_uniformf(&r, -2.0f, 3.0f);
        assert_true(f >= -2.0f && f < 3.0f);
    }
    /* below(7): each value about M/7 times (chi-square, 6 degrees of freedom, p ~ 1e-4 bound). */
    int count[7] = { 0 };
    for (int i = 0; i < M; i++) count[kgm_rng_below(&r, 7)]++;
    double chi = 0, e = M / 7.0;
    for (int v = 0; v < 7; v++) chi += (count[v] - e) * (count[v] - e) / e;
    assert_true(chi < 27.9);
    assert_true(kgm_rng_below(&r, 0) == 0);
    int lo = 0, hi = 0;
    for (int i = 0; i < 2000; i++) {
        long v = kgm_rng_range(&r, -3, 3);
        assert_true(v >= -3 && v <= 3);
        lo += v == -3;
        hi += v == 3;
    }
    assert_true(lo > 0 && hi > 0);             /* both ends are reachable */
    float buf[4000];
    kgm_rng_fill_normal(&r, buf, 4000, 10.0f, 0.5f);
    double s = 0;
    for (int i = 0; i < 4000; i++) s += buf[i];
    assert_true(fabs(s / 4000 - 10.0) < 4 * 0.5 / sqrt(4000));
}

static void shuffle_is_a_reproducible_permutation(void **state)
{
    (void)state;
    int a[100], b[100], seen[100] = { 0 };
    for (int i = 0; i < 100; i++) a[i] = b[i] = i;
    kgm_rng r1, r2;
    kgm_rng_seed(&r1, 11, 0);
    kgm_rng_seed(&r2, 11, 0);
    kgm_rng_shuffle(&r1, a, 100);
    kgm_rng_shuffle(&r2, b, 100);
    assert_memory_equal(a, b, sizeof a);
    int moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (int i = 0; i < 100; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 80);
    kgm_rng_seed(&r2, 11, 1);
    for (int i = 0; i < 100; i++) b[i] = i;
    kgm_rng_shuffle(&r2, b, 100);
    assert_memory_not_equal(a, b, sizeof a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_and_stream_same_numbers),
        cmocka_unit_test(streams_do_not_depend_on_scheduling),
        cmocka_unit_test(neighbouring_streams_are_uncorrelated),
        cmocka_unit_test(distributions_have_their_moments),
        cmocka_unit_test(shuffle_is_a_reproducible_permutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
