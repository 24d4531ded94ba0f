/*
 * fuzz_entry.h - the libFuzzer entry points of a harness, from its three functions
 * fz_<name>_init, fz_<name>_fini and fz_<name>_one. Left out when FUZZ_NO_MAIN is defined
 * (tests/unit/test_fuzz_regressions.c includes the harnesses to replay their inputs).
 */
#ifndef INTYGSGW_FUZZ_ENTRY_H
#define INTYGSGW_FUZZ_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef FUZZ_NO_MAIN
#define FUZZ_ENTRY(name)                                                                           \
        int LLVMFuzzerInitialize(int *argc, char ***argv);                                         \
        int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                              \
        int LLVMFuzzerInitialize(int *argc, char ***argv)                                          \
        {                                                                                          \
                (void)argc;                                                                        \
                (void)argv;                                                                        \
                fz_##name##_init();                                                                \
                atexit(fz_##name##_fini);                                                          \
                return 0;                                                                          \
        }                                                                                          \
        int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                               \
        {                                                                                          \
                return fz_##name##_one(data, size);                                                \
        }
#else
#define FUZZ_ENTRY(name)
#endif

#endif
