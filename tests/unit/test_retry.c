/*
 * test_retry.c - backoff bounds, distribution and overflow, the retry horizon, and every
 * transition of the circuit breaker (gateway/retry.c). Pure: no loop, no clock, no I/O.
 */
#include <criterion/criterion.h>
#include <stdint.h>

#include "retry.h"

#define INT_MAX __INT_MAX__ /* <limits.h> would find gateway/limits.h first */

Test(retry, cap_doubles_until_the_ceiling)
{
        cr_assert_eq(retry_backoff_cap_ms(0, 100, 60000), 100);
        cr_assert_eq(retry_backoff_cap_ms(1, 100, 60000), 200);
        cr_assert_eq(retry_backoff_cap_ms(3, 100, 60000), 800);
        cr_assert_eq(retry_backoff_cap_ms(9, 100, 60000), 51200);
        cr_assert_eq(retry_backoff_cap_ms(10, 100, 60000), 60000); /* 102400 > ceiling */
        cr_assert_eq(retry_backoff_cap_ms(-5, 100, 60000), 100);   /* negative counts as 0 */
        cr_assert_eq(retry_backoff_cap_ms(0, 5000, 1000), 1000);   /* base above the ceiling */
        cr_assert_eq(retry_backoff_cap_ms(4, 0, 1000), 0);
        cr_assert_eq(retry_backoff_cap_ms(4, 100, 0), 0);
}

Test(retry, no_overflow_at_attempt_60_and_beyond)
{
        cr_assert_eq(retry_backoff_cap_ms(60, 1000, 3600000), 3600000);
        cr_assert_eq(retry_backoff_cap_ms(60, INT_MAX, INT_MAX), INT_MAX);
        cr_assert_eq(retry_backoff_cap_ms(62, 1, INT_MAX), INT_MAX);
        cr_assert_eq(retry_backoff_cap_ms(63, 1, INT_MAX), INT_MAX);
        cr_assert_eq(retry_backoff_cap_ms(INT_MAX, 1, INT_MAX), INT_MAX);
        cr_assert_eq(retry_backoff_cap_ms(30, 1, INT_MAX), 1LL << 30);
        cr_assert_eq(retry_backoff_cap_ms(31, 1, INT_MAX), INT_MAX); /* 2^31 > INT_MAX */
        uint64_t rng = 42;
        for (int i = 0; i < 1000; i++) {
                int64_t v = retry_backoff_ms(60 + i % 4000, INT_MAX, INT_MAX, &rng);
                cr_assert(v >= 0 && v <= INT_MAX, "v=%lld", (long long)v);
        }
}

Test(retry, backoff_stays_within_bounds_over_many_seeds)
{
        for (uint64_t seed = 1; seed <= 2000; seed++) {
                uint64_t rng = seed;
                for (int attempt = 0; attempt <= 70; attempt++) {
                        int64_t cap = retry_backoff_cap_ms(attempt, 250, 300000);
                        int64_t v = retry_backoff_ms(attempt, 250, 300000, &rng);
                        cr_assert(v >= 0 && v <= cap, "seed %llu attempt %d: %lld > %lld",
                                  (unsigned long long)seed, attempt, (long long)v, (long long)cap);
                }
        }
        uint64_t rng = 7;
        cr_assert_eq(retry_backoff_ms(3, 0, 1000, &rng), 0);
        cr_assert_eq(retry_backoff_ms(3, 100, 0, &rng), 0);
}

Test(retry, full_jitter_is_uniform_over_zero_to_cap)
{
        /* cap = 999: 100,000 draws in 10 buckets of 100 values, expected 10,000 each. */
        enum { N = 100000 };
        int buckets[10] = {0};
        uint64_t rng = 0x1234;
        int64_t sum = 0, lo = INT64_MAX, hi = -1;
        for (int i = 0; i < N; i++) {
                int64_t v = retry_backoff_ms(0, 999, 999, &rng);
                cr_assert(v >= 0 && v <= 999);
                buckets[v / 100]++;
                sum += v;
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
        }
        for (int b = 0; b < 10; b++)
                cr_assert(buckets[b] > 9500 && buckets[b] < 10500, "bucket %d: %d", b, buckets[b]);
        double mean = (double)sum / N;
        cr_assert(mean > 495.0 && mean < 504.0, "mean %f", mean);
        cr_assert_eq(lo, 0); /* both ends are reachable */
        cr_assert_eq(hi, 999);
}

Test(retry, same_seed_same_sequence_other_seed_other_sequence)
{
        uint64_t a = 99, b = 99, c = 100;
        int same = 0, differ = 0;
        for (int i = 0; i < 100; i++) {
                int64_t x = retry_backoff_ms(10, 100, 100000, &a);
                int64_t y = retry_backoff_ms(10, 100, 100000, &b);
                int64_t z = retry_backoff_ms(10, 100, 100000, &c);
                same += x == y;
                differ += x != z;
        }
        cr_assert_eq(same, 100);
        cr_assert_gt(differ, 95);
}

Test(retry, horizon)
{
        const int h = 72 * 3600;
        const int64_t first = 1700000000000LL;
        cr_assert_not(retry_gave_up(first, first, h));
        cr_assert_not(retry_gave_up(first, first + (int64_t)h * 1000 - 1, h));
        cr_assert(retry_gave_up(first, first + (int64_t)h * 1000, h));
        cr_assert(retry_gave_up(first, first + (int64_t)h * 1000 + 1, h));
        cr_assert_not(retry_gave_up(first, first + 100LL * 365 * 86400000, 0)); /* no horizon */
        cr_assert_not(retry_gave_up(0, first, h)); /* never attempted */
        cr_assert(retry_gave_up(first, first + (int64_t)INT_MAX * 1000, INT_MAX));
}

Test(breaker, closed_opens_after_n_consecutive_failures)
{
        struct breaker b;
        breaker_init(&b, 3, 1000, 8000, 0);
        cr_assert_eq(b.state, BREAKER_CLOSED);
        cr_assert(breaker_allow(&b, 0));
        breaker_failure(&b, 10);
        breaker_failure(&b, 20);
        breaker_success(&b, 30); /* a success resets the count */
        breaker_failure(&b, 40);
        breaker_failure(&b, 50);
        cr_assert_eq(b.state, BREAKER_CLOSED);
        cr_assert(breaker_allow(&b, 55));
        breaker_failure(&b, 60);
        cr_assert_eq(b.state, BREAKER_OPEN);
        cr_assert_eq(b.opens, 1);
        cr_assert_eq(breaker_next_probe_ms(&b), 1060);
        cr_assert_str_eq(breaker_state_name(b.state), "open");
}

Test(breaker, open_rejects_then_half_open_lets_exactly_one_probe)
{
        struct breaker b;
        breaker_init(&b, 1, 1000, 8000, 0);
        breaker_failure(&b, 0);
        cr_assert_not(breaker_allow(&b, 1));
        cr_assert_not(breaker_allow(&b, 999));
        cr_assert(breaker_allow(&b, 1000)); /* the probe */
        cr_assert_eq(b.state, BREAKER_HALF_OPEN);
        cr_assert_eq(breaker_next_probe_ms(&b), 0);
        for (int i = 0; i < 100; i++)
                cr_assert_not(breaker_allow(&b, 1001 + i));
        breaker_success(&b, 1200);
        cr_assert_eq(b.state, BREAKER_CLOSED);
        cr_assert_eq(b.consecutive_failures, 0);
        cr_assert(breaker_allow(&b, 1201));
        cr_assert(breaker_allow(&b, 1202));
}

Test(breaker, failed_probe_reopens_with_a_growing_capped_interval)
{
        struct breaker b;
        breaker_init(&b, 2, 1000, 5000, 60000);
        breaker_failure(&b, 0);
        breaker_failure(&b, 0);
        int64_t t = 0;
        const int64_t want[] = {1000, 2000, 4000, 5000, 5000};
        for (int i = 0; i < 5; i++) {
                cr_assert_eq(b.state, BREAKER_OPEN);
                cr_assert_eq(b.interval_ms, want[i], "round %d: %lld", i, (long long)b.interval_ms);
                cr_assert_not(breaker_allow(&b, t + want[i] - 1));
                t += want[i];
                cr_assert(breaker_allow(&b, t));
                cr_assert_not(breaker_allow(&b, t));
                breaker_failure(&b, t);
        }
        cr_assert_eq(b.opens, 6);
        /* FK is back: the probe succeeds and the next opening starts short again. */
        t += 5000;
        cr_assert(breaker_allow(&b, t));
        breaker_success(&b, t);
        cr_assert_eq(b.state, BREAKER_CLOSED);
        breaker_failure(&b, t);
        breaker_failure(&b, t);
        cr_assert_eq(b.state, BREAKER_OPEN);
        cr_assert_eq(b.interval_ms, 1000);
}

Test(breaker, results_while_open_are_ignored_and_a_lost_probe_is_replaced)
{
        struct breaker b;
        breaker_init(&b, 1, 1000, 4000, 3000);
        breaker_failure(&b, 0);
        breaker_success(&b, 10); /* a request from before the opening */
        cr_assert_eq(b.state, BREAKER_OPEN);
        breaker_failure(&b, 20);
        cr_assert_eq(b.interval_ms, 1000);
        cr_assert(breaker_allow(&b, 1000));
        cr_assert_not(breaker_allow(&b, 3999));
        cr_assert(breaker_allow(&b, 4000)); /* probe lost for probe_timeout: another one */
        cr_assert_not(breaker_allow(&b, 4001));
}

Test(breaker, init_clamps_bad_configuration)
{
        struct breaker b;
        breaker_init(&b, 0, 0, -5, 0);
        cr_assert_eq(b.failures, 1);
        cr_assert_eq(b.open_ms, 1);
        cr_assert_eq(b.open_max_ms, 1);
        cr_assert_eq(b.probe_timeout_ms, 1);
        breaker_failure(&b, 100);
        cr_assert_eq(b.state, BREAKER_OPEN);
        cr_assert(breaker_allow(&b, 101));
}
