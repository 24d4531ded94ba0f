/*
 * cdp.h - drive headless Chromium over the DevTools protocol on a pipe
 * (--remote-debugging-pipe: the browser reads NUL-terminated JSON on fd 3 and writes on fd 4),
 * so that no WebSocket client, node package or browser download is needed. One page (target),
 * commands answered synchronously with a bound on the wait; events are read and dropped.
 * Owns struct cdp (the browser's process group, the pipes, a read buffer, a profile dir).
 * Header-only (static inline); test thread only.
 */
#ifndef INTYGSGW_TEST_CDP_H
#define INTYGSGW_TEST_CDP_H

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CDP_MSG_MAX     (64 * 1024 * 1024) /* bytes of one message from the browser */
#define CDP_START_MS    20000              /* the browser's first answer */
#define CDP_CALL_MS     15000              /* any one command */
#define CDP_STOP_MS     5000               /* Browser.close to exit */
#define CDP_SESSION_MAX 128

struct cdp {
        pid_t pid; /* also the process group */
        int to_fd, from_fd;
        char *buf;
        size_t len, cap;
        int next_id;
        char session[CDP_SESSION_MAX];
        char profile[256];
        char log[300];
};

/* The Chromium binary: $INTYGSGW_CHROMIUM, else Debian's names; NULL if none. */
static inline const char *cdp_find_browser(void)
{
        const char *env = getenv("INTYGSGW_CHROMIUM");
        if (env && *env)
                return access(env, X_OK) == 0 ? env : NULL;
        static const char *const names[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser",
                                            "/usr/lib/chromium/chromium"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (access(names[i], X_OK) == 0)
                        return names[i];
        return NULL;
}

static inline int64_t cdp_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void cdp_stop(struct cdp *c)
{
        if (c->pid > 0) {
                if (c->to_fd >= 0) {
                        static const char bye[] = "{\"id\":999999,\"method\":\"Browser.close\"}";
                        if (write(c->to_fd, bye, sizeof bye) < 0) { /* includes the NUL */
                                /* already gone: reaped below */
                        }
                }
                int st;
                bool gone = false;
                for (int64_t end = cdp_now_ms() + CDP_STOP_MS; cdp_now_ms() < end;) {
                        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
                                gone = true;
                                break;
                        }
                        usleep(20000);
                }
                /* The renderer and helper processes share the group: end them all. */
                kill(-c->pid, SIGKILL);
                if (!gone)
                        waitpid(c->pid, &st, 0);
                c->pid = 0;
        }
        if (c->to_fd >= 0)
                close(c->to_fd);
        if (c->from_fd >= 0)
                close(c->from_fd);
        c->to_fd = c->from_fd = -1;
        free(c->buf);
        c->buf = NULL;
        c->len = c->cap = 0;
        if (c->profile[0] && !getenv("INTYGSGW_KEEP_TEST_DIRS")) {
                char cmd[400];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->profile);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot remove %s\n", c->profile);
                c->profile[0] = '\0';
        }
}

/* Send one command; returns its id, or -1. */
static inline int cdp_send(struct cdp *c, const char *method, json_t *params_take, bool session)
{
        json_t *m = json_object();
        int id = ++c->next_id;
        json_object_set_new(m, "id", json_integer(id));
        json_object_set_new(m, "method", json_string(method));
        json_object_set_new(m, "params", params_take ? params_take : json_object());
        if (session && c->session[0])
                json_object_set_new(m, "sessionId", json_string(c->session));
        char *s = json_dumps(m, JSON_COMPACT);
        json_decref(m);
        if (!s)
                return -1;
        size_t n = strlen(s) + 1; /* the NUL ends the message */
        size_t off = 0;
        while (off < n) {
                ssize_t w = write(c->to_fd, s + off, n - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0) {
                        free(s);
                        return -1;
                }
                off += (size_t)w;
        }
        free(s);
        return id;
}

/* Wait for the answer to id: its "result" (new reference), or NULL with err filled. */
static inline json_t *cdp_wait(struct cdp *c, int id, int timeout_ms, char *err, size_t errlen)
{
        int64_t end = cdp_now_ms() + timeout_ms;
        for (;;) {
                char *nul = c->len ? memchr(c->buf, '\0', c->len) : NULL;
                while (nul) {
                        size_t mlen = (size_t)(nul - c->buf);
                        json_error_t je;
                        json_t *m = json_loadb(c->buf, mlen, 0, &je);
                        memmove(c->buf, nul + 1, c->len - mlen - 1);
                        c->len -= mlen + 1;
                        json_t *mid = m ? json_object_get(m, "id") : NULL;
                        if (mid && json_integer_value(mid) == id) {
                                json_t *res = json_object_get(m, "result");
                                if (!res) {
                                        json_t *e = json_object_get(m, "error");
                                        json_t *em = e ? json_object_get(e, "message") : NULL;
                                        snprintf(err, errlen, "DevTools error: %s",
                                                 em ? json_string_value(em) : "(no message)");
                                        json_decref(m);
                                        return NULL;
                                }
                                json_incref(res);
                                json_decref(m);
                                return res;
                        }
                        json_decref(m);
                        nul = c->len ? memchr(c->buf, '\0', c->len) : NULL;
                }
                int left = (int)(end - cdp_now_ms());
                if (left <= 0) {
                        snprintf(err, errlen, "no answer from the browser within %d ms",
                                 timeout_ms);
                        return NULL;
                }
                struct pollfd p = {.fd = c->from_fd, .events = POLLIN};
                int pr = poll(&p, 1, left);
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr <= 0)
                        continue;
                if (c->cap - c->len < 65536) {
                        size_t ncap = c->cap ? c->cap * 2 : 1 << 20;
                        if (ncap > CDP_MSG_MAX) {
                                snprintf(err, errlen, "a message from the browser is too large");
                                return NULL;
                        }
                        char *nb = realloc(c->buf, ncap);
                        if (!nb) {
                                snprintf(err, errlen, "out of memory");
                                return NULL;
                        }
                        c->buf = nb;
                        c->cap = ncap;
                }
                ssize_t r = read(c->from_fd, c->buf + c->len, c->cap - c->len);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        snprintf(err, errlen, "the browser closed the pipe (log %s)", c->log);
                        return NULL;
                }
                c->len += (size_t)r;
        }
}

static inline json_t *cdp_call(struct cdp *c, const char *method, json_t *params_take, bool session,
                               char *err, size_t errlen)
{
        int id = cdp_send(c, method, params_take, session);
        if (id < 0) {
                snprintf(err, errlen, "cannot send %s to the browser", method);
                return NULL;
        }
        return cdp_wait(c, id, CDP_CALL_MS, err, errlen);
}

/* Start the browser and open one page of width x height. 0, or -1 with err. */
static inline int cdp_start(struct cdp *c, const char *browser, int width, int height, char *err,
                            size_t errlen)
{
        memset(c, 0, sizeof *c);
        c->to_fd = c->from_fd = -1;
        snprintf(c->profile, sizeof c->profile, "/tmp/intygsgw-chromium-XXXXXX");
        if (!mkdtemp(c->profile)) {
                c->profile[0] = '\0';
                snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
                return -1;
        }
        snprintf(c->log, sizeof c->log, "%s/chromium.log", c->profile);
        int in[2], out[2]; /* in: we write, it reads (fd 3); out: it writes (fd 4) */
        if (pipe2(in, O_CLOEXEC) != 0)
                return -1;
        if (pipe2(out, O_CLOEXEC) != 0) {
                close(in[0]);
                close(in[1]);
                return -1;
        }
        char udd[300];
        snprintf(udd, sizeof udd, "--user-data-dir=%s/profile", c->profile);
        char size[64];
        snprintf(size, sizeof size, "--window-size=%d,%d", width, height);
        pid_t pid = fork();
        if (pid == 0) {
                setpgid(0, 0);
                int a = fcntl(in[0], F_DUPFD, 10), b = fcntl(out[1], F_DUPFD, 10);
                if (a < 0 || b < 0 || dup2(a, 3) != 3 || dup2(b, 4) != 4)
                        _exit(126);
                int fd = open(c->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                char *argv[] = {(char *)browser,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-quic",
                                "--no-first-run",
                                "--no-default-browser-check",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--disable-extensions",
                                "--disable-dev-shm-usage",
                                "--no-proxy-server",
                                "--hide-scrollbars",
                                "--remote-debugging-pipe",
                                udd,
                                size,
                                "about:blank",
                                NULL};
                execv(browser, argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        if (pid < 0) {
                close(in[1]);
                close(out[0]);
                snprintf(err, errlen, "fork: %s", strerror(errno));
                return -1;
        }
        setpgid(pid, pid);
        c->pid = pid;
        c->to_fd = in[1];
        c->from_fd = out[0];
        /* The first answer may take a while: the browser starts up. */
        int id =
            cdp_send(c, "Target.createTarget", json_pack("{s:s}", "url", "about:blank"), false);
        json_t *r = id < 0 ? NULL : cdp_wait(c, id, CDP_START_MS, err, errlen);
        if (!r)
                return -1;
        const char *tid = json_string_value(json_object_get(r, "targetId"));
        json_t *params = json_pack("{s:s,s:b}", "targetId", tid ? tid : "", "flatten", 1);
        json_decref(r);
        r = cdp_call(c, "Target.attachToTarget", params, false, err, errlen);
        if (!r)
                return -1;
        const char *sid = json_string_value(json_object_get(r, "sessionId"));
        snprintf(c->session, sizeof c->session, "%s", sid ? sid : "");
        json_decref(r);
        r = cdp_call(c, "Emulation.setDeviceMetricsOverride",
                     json_pack("{s:i,s:i,s:i,s:b}", "width", width, "height", height,
                               "deviceScaleFactor", 1, "mobile", 0),
                     true, err, errlen);
        if (!r)
                return -1;
        json_decref(r);
        return 0;
}

static inline int cdp_navigate(struct cdp *c, const char *url, char *err, size_t errlen)
{
        json_t *r = cdp_call(c, "Page.navigate", json_pack("{s:s}", "url", url), true, err, errlen);
        if (!r)
                return -1;
        json_t *et = json_object_get(r, "errorText");
        int rc = 0;
        if (et && json_string_length(et)) {
                snprintf(err, errlen, "navigation failed: %s", json_string_value(et));
                rc = -1;
        }
        json_decref(r);
        return rc;
}

/* Evaluate a JavaScript expression that yields a string; the string (malloc'd) or NULL. */
static inline char *cdp_eval_string(struct cdp *c, const char *expr, char *err, size_t errlen)
{
        json_t *r = cdp_call(c, "Runtime.evaluate",
                             json_pack("{s:s,s:b}", "expression", expr, "returnByValue", 1), true,
                             err, errlen);
        if (!r)
                return NULL;
        json_t *v = json_object_get(json_object_get(r, "result"), "value");
        char *s = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
        if (!s)
                snprintf(err, errlen, "the expression gave no string");
        json_decref(r);
        return s;
}

/* Screenshot of the whole page (up to max_height px) into a PNG file. 0, or -1 with err. */
static inline int cdp_screenshot(struct cdp *c, const char *path, int width, int max_height,
                                 char *err, size_t errlen)
{
        char *hs = cdp_eval_string(c, "String(Math.ceil(document.documentElement.scrollHeight))",
                                   err, errlen);
        int h = hs ? atoi(hs) : 0;
        free(hs);
        if (h <= 0)
                return -1;
        if (h > max_height)
                h = max_height;
        json_t *r = cdp_call(c, "Emulation.setDeviceMetricsOverride",
                             json_pack("{s:i,s:i,s:i,s:b}", "width", width, "height", h,
                                       "deviceScaleFactor", 1, "mobile", 0),
                             true, err, errlen);
        if (!r)
                return -1;
        json_decref(r);
        usleep(300000); /* let the charts resize and draw */
        r = cdp_call(c, "Page.captureScreenshot", json_pack("{s:s}", "format", "png"), true, err,
                     errlen);
        if (!r)
                return -1;
        const char *b64 = json_string_value(json_object_get(r, "data"));
        size_t bl = b64 ? strlen(b64) : 0;
        unsigned char *png = bl ? malloc(bl) : NULL;
        int n = png ? EVP_DecodeBlock(png, (const unsigned char *)b64, (int)bl) : -1;
        int rc = -1;
        if (n > 0) {
                size_t pad = (bl > 0 && b64[bl - 1] == '=') + (bl > 1 && b64[bl - 2] == '=');
                FILE *f = fopen(path, "wb");
                if (f) {
                        size_t w = fwrite(png, 1, (size_t)n - pad, f);
                        rc = fclose(f) == 0 && w == (size_t)n - pad ? 0 : -1;
                }
        }
        if (rc != 0)
                snprintf(err, errlen, "cannot decode or write the screenshot %s", path);
        free(png);
        json_decref(r);
        return rc;
}

#endif
