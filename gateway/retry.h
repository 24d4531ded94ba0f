/*
 * retry.h - when to try FK again: exponential backoff with full jitter, a give-up horizon,
 * and a circuit breaker that stops sending while FK is down and probes it one request at a
 * time. Pure functions of the time passed in and a caller-owned RNG state: no I/O, no clock.
 * Owns nothing; a struct breaker belongs to whoever holds it (the forwarder, loop thread).
 */
#ifndef INTYGSGW_RETRY_H
#define INTYGSGW_RETRY_H

#include <stdbool.h>
#include <stdint.h>

/** Next value of a splitmix64 generator (state: any seed, advanced in place). */
uint64_t retry_rng_next(uint64_t *state);

/**
 * Full-jitter backoff (AWS "Exponential Backoff and Jitter"): uniform in [0, cap] where
 * cap = min(max_ms, base_ms * 2^attempt), computed without overflow for any attempt.
 * attempt < 0 counts as 0; base_ms <= 0 or max_ms <= 0 gives 0.
 */
int64_t retry_backoff_ms(int attempt, int base_ms, int max_ms, uint64_t *rng_state);

/** The cap before jitter: min(max_ms, base_ms * 2^attempt), overflow-safe. */
int64_t retry_backoff_cap_ms(int attempt, int base_ms, int max_ms);

/**
 * Whether to stop retrying: true once now - first_attempt >= horizon. horizon_s <= 0 means
 * no horizon (never gives up); first_attempt_ms <= 0 (never attempted) never gives up.
 */
bool retry_gave_up(int64_t first_attempt_ms, int64_t now_ms, int horizon_s);

enum breaker_state { BREAKER_CLOSED = 0, BREAKER_OPEN = 1, BREAKER_HALF_OPEN = 2 };

/** "closed", "open", "half_open". */
const char *breaker_state_name(enum breaker_state s);

/**
 * Circuit breaker. Closed: everything passes; `failures` consecutive failures open it.
 * Open: nothing passes for the current interval (first open_ms, doubled by each failed probe,
 * at most open_max_ms). Then half-open: exactly one probe passes; its success closes the
 * breaker (interval back to open_ms), its failure opens it again for a longer interval. A probe
 * that never reports (lost) is replaced after probe_timeout_ms.
 * Results reported while open are of requests started before it opened: ignored. While
 * half-open, the next result reported is taken as the probe's.
 */
struct breaker {
        /* configuration */
        int failures;        /* threshold, >= 1 */
        int64_t open_ms;     /* first open interval, >= 1 */
        int64_t open_max_ms; /* cap of the growing interval, >= open_ms */
        int64_t probe_timeout_ms;
        /* state */
        enum breaker_state state;
        int consecutive_failures;
        int64_t opened_at_ms;
        int64_t interval_ms; /* of the current or next opening */
        int64_t probe_at_ms; /* when the probe in flight was let through */
        uint64_t opens;      /* times it opened, for metrics */
};

/** Configure and close. Out-of-range values are clamped (failures >= 1, open_ms >= 1,
 *  open_max_ms >= open_ms; probe_timeout_ms <= 0 means open_max_ms). */
void breaker_init(struct breaker *b, int failures, int64_t open_ms, int64_t open_max_ms,
                  int64_t probe_timeout_ms);

/** May a request go now? In half-open, true for exactly one caller (the probe). */
bool breaker_allow(struct breaker *b, int64_t now_ms);

/** Report a request's success (FK answered). */
void breaker_success(struct breaker *b, int64_t now_ms);

/** Report a technical failure (no answer, 5xx, timeout). */
void breaker_failure(struct breaker *b, int64_t now_ms);

/** When an open breaker will let a probe through (for a timer); 0 unless open. */
int64_t breaker_next_probe_ms(const struct breaker *b);

#endif
