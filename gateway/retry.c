/*
 * retry.c - backoff with full jitter, the retry horizon and the circuit breaker (retry.h).
 *
 * Owns nothing: pure functions of their arguments. Any thread, with one owner per struct
 * breaker and per RNG state.
 */
#include "retry.h"

#include <stddef.h>

uint64_t retry_rng_next(uint64_t *state)
{
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

int64_t retry_backoff_cap_ms(int attempt, int base_ms, int max_ms)
{
        if (base_ms <= 0 || max_ms <= 0)
                return 0;
        if (attempt < 0)
                attempt = 0;
        int64_t cap = base_ms;
        /* Double until the ceiling: at most 31 doublings of an int reach any int ceiling. */
        for (int i = 0; i < attempt && cap < max_ms; i++)
                cap *= 2;
        return cap < max_ms ? cap : max_ms;
}

int64_t retry_backoff_ms(int attempt, int base_ms, int max_ms, uint64_t *rng_state)
{
        int64_t cap = retry_backoff_cap_ms(attempt, base_ms, max_ms);
        if (cap <= 0)
                return 0;
        /* cap + 1 <= 2^31: the modulo bias is below 2^-32. */
        return (int64_t)(retry_rng_next(rng_state) % (uint64_t)(cap + 1));
}

bool retry_gave_up(int64_t first_attempt_ms, int64_t now_ms, int horizon_s)
{
        if (horizon_s <= 0 || first_attempt_ms <= 0)
                return false;
        return now_ms - first_attempt_ms >= (int64_t)horizon_s * 1000;
}

const char *breaker_state_name(enum breaker_state s)
{
        switch (s) {
        case BREAKER_CLOSED:
                return "closed";
        case BREAKER_OPEN:
                return "open";
        case BREAKER_HALF_OPEN:
                return "half_open";
        }
        return "?";
}

void breaker_init(struct breaker *b, int failures, int64_t open_ms, int64_t open_max_ms,
                  int64_t probe_timeout_ms)
{
        b->failures = failures >= 1 ? failures : 1;
        b->open_ms = open_ms >= 1 ? open_ms : 1;
        b->open_max_ms = open_max_ms >= b->open_ms ? open_max_ms : b->open_ms;
        b->probe_timeout_ms = probe_timeout_ms > 0 ? probe_timeout_ms : b->open_max_ms;
        b->state = BREAKER_CLOSED;
        b->consecutive_failures = 0;
        b->opened_at_ms = 0;
        b->interval_ms = b->open_ms;
        b->probe_at_ms = 0;
        b->opens = 0;
}

static void open_now(struct breaker *b, int64_t now_ms)
{
        b->state = BREAKER_OPEN;
        b->opened_at_ms = now_ms;
        b->opens++;
}

bool breaker_allow(struct breaker *b, int64_t now_ms)
{
        switch (b->state) {
        case BREAKER_CLOSED:
                return true;
        case BREAKER_OPEN:
                if (now_ms - b->opened_at_ms < b->interval_ms)
                        return false;
                b->state = BREAKER_HALF_OPEN;
                b->probe_at_ms = now_ms;
                return true;
        case BREAKER_HALF_OPEN:
                if (now_ms - b->probe_at_ms >= b->probe_timeout_ms) {
                        b->probe_at_ms = now_ms; /* the last probe was lost: send another */
                        return true;
                }
                return false;
        }
        return false;
}

void breaker_success(struct breaker *b, int64_t now_ms)
{
        (void)now_ms;
        if (b->state == BREAKER_OPEN)
                return;
        b->state = BREAKER_CLOSED;
        b->consecutive_failures = 0;
        b->interval_ms = b->open_ms;
}

void breaker_failure(struct breaker *b, int64_t now_ms)
{
        switch (b->state) {
        case BREAKER_CLOSED:
                if (b->consecutive_failures < b->failures)
                        b->consecutive_failures++;
                if (b->consecutive_failures >= b->failures) {
                        b->interval_ms = b->open_ms;
                        open_now(b, now_ms);
                }
                break;
        case BREAKER_OPEN:
                break;
        case BREAKER_HALF_OPEN:
                b->interval_ms =
                    b->interval_ms <= b->open_max_ms / 2 ? b->interval_ms * 2 : b->open_max_ms;
                open_now(b, now_ms);
                break;
        }
}

int64_t breaker_next_probe_ms(const struct breaker *b)
{
        return b->state == BREAKER_OPEN ? b->opened_at_ms + b->interval_ms : 0;
}
