/*
 * hist.h - latency histogram for the load generator: log-linear buckets over microseconds
 * (64 sub-buckets per power of two, under 1.6 % relative error), exact count, sum and max.
 * Owns its fixed bucket array (no allocation); one thread (the load loop) at a time.
 */
#ifndef INTYGSGW_LOAD_HIST_H
#define INTYGSGW_LOAD_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 6                       /* 64 sub-buckets per power of two */
#define HIST_SUB      (1u << HIST_SUB_BITS)   /* values below 2*HIST_SUB are exact */
#define HIST_MAX_US   (3600ull * 1000 * 1000) /* one hour: larger values are clamped */
#define HIST_BUCKETS  (2 * HIST_SUB + 40 * HIST_SUB)

struct hist {
        uint64_t count;
        uint64_t sum_us;
        uint64_t max_us;
        uint64_t min_us;
        uint64_t buckets[HIST_BUCKETS];
};

/** Empty the histogram. */
void hist_reset(struct hist *h);

/** Record one value in microseconds (clamped to HIST_MAX_US). */
void hist_add(struct hist *h, uint64_t us);

/** Add every value of src into dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/**
 * The value at quantile q (0 < q <= 1): the upper edge of the bucket holding the
 * ceil(q*count)-th smallest value, never above max. 0 when empty.
 */
uint64_t hist_quantile(const struct hist *h, double q);

/** Bucket index of a value, and the largest value in a bucket (exposed for tests). */
size_t hist_index(uint64_t us);
uint64_t hist_bucket_top(size_t index);

#endif
