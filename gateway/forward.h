/*
 * forward.h - delivery to Försäkringskassan: libcurl multi on a delivery thread of its own
 * (its own libuv loop, a lower priority than the loop thread's), mutual TLS with the gateway's
 * client certificate and FK's CA pinned, kept-alive connections, bounded concurrency, retries
 * with backoff and full jitter, a circuit breaker, dead letters.
 *
 * Owns: the delivery thread, its CURLM handle and one CURL easy handle per transfer, the
 * claimed outbox records while they are in flight. Threads: every function here is for the
 * loop thread; forward.c's delivery thread is internal to it (see its header comment).
 */
#ifndef INTYGSGW_FORWARD_H
#define INTYGSGW_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct config;
struct forwarder;

/** Create the forwarder for a started server (outbox open). NULL with err on failure. */
struct forwarder *forwarder_new(struct server *srv, char *err, size_t errlen);

/** Look for due records now (after a put, on the housekeeping tick). */
void forwarder_kick(struct forwarder *f);

/** Take new limits and TLS files from a reloaded config (the next transfers use them). */
void forwarder_reconfigure(struct forwarder *f, const struct config *cfg);

/** Stop claiming, let transfers in flight finish (bounded by their timeout), free. */
void forwarder_close(struct forwarder *f, void (*closed_cb)(void *arg), void *arg);

bool forwarder_closing(const struct forwarder *f);

/** The FK RevokeCertificate URL derived from the RegisterCertificate one (malloc'd). */
char *forward_revoke_url(const char *register_url);

#endif
