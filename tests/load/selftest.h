/*
 * selftest.h - intygsgw-load --self-test: known-answer checks of the histogram, the generator
 * and the answer classifier. Main thread only.
 */
#ifndef INTYGSGW_LOAD_SELFTEST_H
#define INTYGSGW_LOAD_SELFTEST_H

#include "gen.h"

/** Run every check; prints "self-test: ok" or the failed ones. Returns 0 when all pass. */
int load_self_test(const struct gen *g);

#endif
