/*
 * log.c - one JSON line per event on stderr. Any thread.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
        atomic_store(&min_level, (int)level);
}

bool log_level_parse(const char *s, enum log_level *out)
{
        for (int i = 0; i < 4; i++) {
                if (strcmp(s, level_names[i]) == 0) {
                        *out = (enum log_level)i;
                        return true;
                }
        }
        return false;
}

bool log_enabled(enum log_level level)
{
        return (int)level >= atomic_load(&min_level);
}

unsigned long json_escape(char *dst, unsigned long cap, const char *src)
{
        unsigned long o = 0;
        if (cap == 0)
                return 0;
        for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
                char tmp[8];
                const char *rep = NULL;
                switch (*p) {
                case '"':
                        rep = "\\\"";
                        break;
                case '\\':
                        rep = "\\\\";
                        break;
                case '\n':
                        rep = "\\n";
                        break;
                case '\r':
                        rep = "\\r";
                        break;
                case '\t':
                        rep = "\\t";
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f) {
                                snprintf(tmp, sizeof tmp, "\\u%04x", *p);
                                rep = tmp;
                        }
                }
                if (rep) {
                        size_t l = strlen(rep);
                        if (o + l >= cap)
                                break;
                        memcpy(dst + o, rep, l);
                        o += l;
                } else {
                        if (o + 1 >= cap)
                                break;
                        dst[o++] = (char)*p;
                }
        }
        dst[o] = '\0';
        return o;
}

void log_event(enum log_level level, const char *event, ...)
{
        if (!log_enabled(level))
                return;
        char line[4096];
        size_t n = 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        char esc[1024];
        json_escape(esc, sizeof esc, event);
        n += (size_t)snprintf(line + n, sizeof line - n,
                              "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"event\":\"%s\"", when,
                              ts.tv_nsec / 1000000, level_names[level], esc);
        va_list ap;
        va_start(ap, event);
        for (;;) {
                const char *key = va_arg(ap, const char *);
                if (!key || n >= sizeof line - 8)
                        break;
                char kesc[64];
                if (key[0] == '#') {
                        long long v = va_arg(ap, long long);
                        json_escape(kesc, sizeof kesc, key + 1);
                        n += (size_t)snprintf(line + n, sizeof line - n, ",\"%s\":%lld", kesc, v);
                } else {
                        const char *v = va_arg(ap, const char *);
                        json_escape(kesc, sizeof kesc, key);
                        json_escape(esc, sizeof esc, v ? v : "");
                        n += (size_t)snprintf(line + n, sizeof line - n, ",\"%s\":\"%s\"", kesc,
                                              esc);
                }
        }
        va_end(ap);
        if (n > sizeof line - 3)
                n = sizeof line - 3;
        line[n++] = '}';
        line[n++] = '\n';
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w;
}
