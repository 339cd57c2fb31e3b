/* fuzz_check.h -- what every fuzz target does when an invariant breaks:
 * say which, where, and abort() so that libFuzzer keeps the input. */
#ifndef RC_FUZZ_CHECK_H
#define RC_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
