/*
 * selftest.c - intygsgw-load --self-test: checks of the histogram, the certificate generator
 * and the answer classifier on known inputs, with exact expectations. Pure; main thread only.
 * The load smoke test (tests/integration/load_smoke.sh) runs it.
 */
#include "selftest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "gen.h"
#include "hist.h"
#include "personid.h"

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "self-test: %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
                        fails++;                                                                   \
                }                                                                                  \
        } while (0)

static bool near(uint64_t got, uint64_t want)
{
        /* one bucket: under 1/64 above the exact value, never below it */
        return got >= want && got <= want + want / 64 + 1;
}

static int check_hist(void)
{
        int fails = 0;
        struct hist *h = calloc(1, sizeof *h);
        if (!h)
                return 1;
        CHECK(hist_quantile(h, 0.5) == 0);
        for (uint64_t v = 1; v <= 100000; v++)
                hist_add(h, v);
        CHECK(h->count == 100000);
        CHECK(h->min_us == 1 && h->max_us == 100000);
        CHECK(near(hist_quantile(h, 0.50), 50000));
        CHECK(near(hist_quantile(h, 0.90), 90000));
        CHECK(near(hist_quantile(h, 0.99), 99000));
        CHECK(near(hist_quantile(h, 0.999), 99900));
        CHECK(hist_quantile(h, 1.0) == 100000);
        /* exact below 2*HIST_SUB, and every value lies inside its bucket */
        CHECK(hist_index(5) == 5 && hist_bucket_top(5) == 5);
        for (uint64_t v = 1; v < 5000000; v = v * 3 + 1) {
                size_t i = hist_index(v);
                CHECK(hist_bucket_top(i) >= v);
                CHECK(i == 0 || hist_bucket_top(i - 1) < v);
        }
        hist_add(h, HIST_MAX_US * 2); /* clamped, not lost */
        CHECK(h->max_us == HIST_MAX_US && h->count == 100001);
        struct hist *g = calloc(1, sizeof *g);
        if (g) {
                hist_add(g, 7);
                hist_merge(g, h);
                CHECK(g->count == 100002 && g->min_us == 1 && g->max_us == HIST_MAX_US);
                free(g);
        }
        free(h);
        return fails;
}

static int check_gen(const struct gen *gn)
{
        int fails = 0;
        char *a = malloc(LOAD_MAX_DOC), *b = malloc(LOAD_MAX_DOC);
        if (!a || !b) {
                free(a);
                free(b);
                return 1;
        }
        const struct gen_region *r = gen_region_get(0);
        CHECK(gen_region_get(GEN_N_REGIONS) == NULL);
        long la = gen_make(gn, 42, r, true, a, LOAD_MAX_DOC);
        long lb = gen_make(gn, 42, r, true, b, LOAD_MAX_DOC);
        CHECK(la > 0 && la == lb && !memcmp(a, b, (size_t)la)); /* a function of (seed, n) */
        CHECK(gen_make(gn, 42, r, true, a, 100) == -1);         /* too small: refused */
        struct gen_values v1, v2;
        gen_values(gn, 1, r, &v1);
        gen_values(gn, 2, r, &v2);
        CHECK(strcmp(v1.id, v2.id) != 0);
        CHECK(!strcmp(v1.provider, "SE2321000016-0001"));
        /* Every generated personnummer passes the gateway's own check. */
        for (uint64_t n = 0; n < 20000; n++) {
                char pnr[13];
                gen_personnummer(gen_mix(n), pnr);
                struct personid_info info;
                CHECK(personid_check(PERSONID_ROOT_PNR, pnr, &info) == PERSONID_OK);
                if (fails > 5)
                        break;
        }
        free(a);
        free(b);
        return fails;
}

static int check_classify(void)
{
        int fails = 0, st;
        static const char ok[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n<x:RegisterCertificateResponse>"
            "<r><c:resultCode>OK</c:resultCode></r>";
        static const char info[] = "HTTP/1.1 200 OK\r\n\r\n<RegisterCertificateResponse>"
                                   "<resultCode>INFO</resultCode>";
        static const char error[] = "HTTP/1.1 200 OK\r\n\r\n<RegisterCertificateResponse>"
                                    "<resultCode>ERROR</resultCode>";
        static const char fault[] = "HTTP/1.1 500 Internal Server Error\r\n\r\n<soap:Fault>"
                                    "<faultstring>x</faultstring></soap:Fault>";
        static const char bad_gw[] = "HTTP/1.1 502 Bad Gateway\r\n\r\n<html>502</html>";
        static const char other[] = "HTTP/1.1 200 OK\r\n\r\n<RevokeCertificateResponse/>";
        static const char odd_code[] = "HTTP/1.1 200 OK\r\n\r\n<RegisterCertificateResponse>"
                                       "<resultCode>OKAY</resultCode>";
        CHECK(load_classify(ok, sizeof ok - 1, &st) == -1 && st == 200);
        CHECK(load_classify(info, sizeof info - 1, &st) == LERR_INFO);
        CHECK(load_classify(error, sizeof error - 1, &st) == LERR_ERROR);
        CHECK(load_classify(fault, sizeof fault - 1, &st) == LERR_FAULT && st == 500);
        CHECK(load_classify(bad_gw, sizeof bad_gw - 1, &st) == LERR_HTTP && st == 502);
        CHECK(load_classify(other, sizeof other - 1, &st) == LERR_MALFORMED);
        CHECK(load_classify(odd_code, sizeof odd_code - 1, &st) == LERR_MALFORMED);
        CHECK(load_classify("garbage", 7, &st) == LERR_MALFORMED && st == 0);
        return fails;
}

int load_self_test(const struct gen *gn)
{
        int fails = check_hist() + check_gen(gn) + check_classify();
        printf("self-test: %s\n", fails ? "FAILED" : "ok");
        return fails ? 1 : 0;
}
