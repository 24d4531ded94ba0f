/*
 * hist.c - log-linear latency histogram (see hist.h). Pure arithmetic over the caller's
 * struct; any thread that owns the struct.
 */
#include "hist.h"

#include <string.h>

void hist_reset(struct hist *h)
{
        memset(h, 0, sizeof *h);
}

size_t hist_index(uint64_t us)
{
        if (us > HIST_MAX_US)
                us = HIST_MAX_US;
        if (us < 2 * HIST_SUB)
                return (size_t)us;
        /* us in [2^k, 2^(k+1)) with k >= HIST_SUB_BITS+1: keep its top HIST_SUB_BITS+1 bits. */
        int k = 63 - __builtin_clzll(us);
        int shift = k - HIST_SUB_BITS;
        uint64_t sub = (us >> shift) - HIST_SUB; /* 0..HIST_SUB-1 */
        size_t idx = 2 * HIST_SUB + (size_t)(shift - 1) * HIST_SUB + (size_t)sub;
        return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

uint64_t hist_bucket_top(size_t index)
{
        if (index < 2 * HIST_SUB)
                return index;
        size_t rel = index - 2 * HIST_SUB;
        int shift = (int)(rel / HIST_SUB) + 1;
        uint64_t sub = rel % HIST_SUB + HIST_SUB;
        return ((sub + 1) << shift) - 1;
}

void hist_add(struct hist *h, uint64_t us)
{
        if (us > HIST_MAX_US)
                us = HIST_MAX_US;
        if (h->count == 0 || us < h->min_us)
                h->min_us = us;
        if (us > h->max_us)
                h->max_us = us;
        h->count++;
        h->sum_us += us;
        h->buckets[hist_index(us)]++;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
        if (src->count == 0)
                return;
        if (dst->count == 0 || src->min_us < dst->min_us)
                dst->min_us = src->min_us;
        if (src->max_us > dst->max_us)
                dst->max_us = src->max_us;
        dst->count += src->count;
        dst->sum_us += src->sum_us;
        for (size_t i = 0; i < HIST_BUCKETS; i++)
                dst->buckets[i] += src->buckets[i];
}

uint64_t hist_quantile(const struct hist *h, double q)
{
        if (h->count == 0)
                return 0;
        if (q <= 0)
                return h->min_us;
        double want_d = q * (double)h->count;
        uint64_t want = (uint64_t)want_d;
        if ((double)want < want_d)
                want++;
        if (want < 1)
                want = 1;
        if (want > h->count)
                want = h->count;
        uint64_t seen = 0;
        for (size_t i = 0; i < HIST_BUCKETS; i++) {
                seen += h->buckets[i];
                if (seen >= want) {
                        uint64_t top = hist_bucket_top(i);
                        return top < h->max_us ? top : h->max_us;
                }
        }
        return h->max_us;
}
