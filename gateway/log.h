/*
 * log.h - structured logging: one JSON object a line on stderr.
 *
 * Every line carries time, level and event; the caller adds key/value fields, which are
 * JSON-escaped here. No certificate body and no personnummer may ever be passed in: fields
 * hold ids of connections, callers (system HSA-ids), intyg ids and reasons only.
 * Threads: any; one write(2) per line, so lines from different threads never interleave.
 */
#ifndef INTYGSGW_LOG_H
#define INTYGSGW_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/** Set the lowest level written (default LOG_INFO). */
void log_set_level(enum log_level level);

/** Parse "debug|info|warn|error"; false if unknown. */
bool log_level_parse(const char *s, enum log_level *out);

/** Whether a line at this level would be written (test before formatting). */
bool log_enabled(enum log_level level);

/**
 * Write one line: {"ts":...,"level":...,"event":EVENT, k1:v1, ...}.
 * The variadic part is pairs of (const char *key, const char *value), ended by NULL.
 * A key that starts with '#' takes a long long value instead of a string ("#conn", 42LL).
 */
void log_event(enum log_level level, const char *event, ...) __attribute__((sentinel));

#define LOGI(event, ...) log_event(LOG_INFO, event, ##__VA_ARGS__, (const char *)0)
#define LOGW(event, ...) log_event(LOG_WARN, event, ##__VA_ARGS__, (const char *)0)
#define LOGE(event, ...) log_event(LOG_ERROR, event, ##__VA_ARGS__, (const char *)0)
#define LOGD(event, ...)                                                                           \
        do {                                                                                       \
                if (log_enabled(LOG_DEBUG))                                                        \
                        log_event(LOG_DEBUG, event, ##__VA_ARGS__, (const char *)0);               \
        } while (0)

/** JSON-escape src into dst (always NUL-terminated); returns the length written. */
unsigned long json_escape(char *dst, unsigned long cap, const char *src);

#endif
