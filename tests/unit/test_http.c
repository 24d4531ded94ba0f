/*
 * test_http.c - the HTTP layer's pure helpers: URL query values and status texts.
 * (The parser, limits, keep-alive and pipelining are tested over real sockets in
 * tests/integration/test_frontdoor.c, and fuzzed by tests/fuzz/fuzz_http.c.)
 */
#include <criterion/criterion.h>
#include <string.h>

#include "conn.h"

Test(http, query_values)
{
        char v[16];
        const char *q = "id=a%20b&level=unit&id=c+d&empty=&x=1";
        cr_assert(http_query_get(q, "id", 0, v, sizeof v));
        cr_assert_str_eq(v, "a b");
        cr_assert(http_query_get(q, "id", 1, v, sizeof v));
        cr_assert_str_eq(v, "c d");
        cr_assert_not(http_query_get(q, "id", 2, v, sizeof v));
        cr_assert(http_query_get(q, "level", 0, v, sizeof v));
        cr_assert_str_eq(v, "unit");
        /* A key is matched whole: "x" is not "xx", "lev" is not "level". */
        cr_assert_not(http_query_get(q, "lev", 0, v, sizeof v));
        cr_assert(http_query_get(q, "empty", 0, v, sizeof v)); /* present, empty value */
        cr_assert_str_eq(v, "");
        cr_assert_not(http_query_get("", "id", 0, v, sizeof v));
        cr_assert_not(http_query_get(NULL, "id", 0, v, sizeof v));
        /* Truncated to the buffer, always terminated. */
        char small[4];
        cr_assert(http_query_get("id=abcdefgh", "id", 0, small, sizeof small));
        cr_assert_str_eq(small, "abc");
        /* A % at the end is kept as is. */
        cr_assert(http_query_get("id=50%", "id", 0, v, sizeof v));
        cr_assert_str_eq(v, "50%");
}

Test(http, status_texts)
{
        cr_assert_str_eq(http_status_text(413), "Content Too Large");
        cr_assert_str_eq(http_status_text(431), "Request Header Fields Too Large");
        cr_assert_str_eq(http_status_text(599), "Unknown");
}
