/* The C tests' harness: CHECK counts a condition, printing the ones that fail with their
   line; check_summary prints "NAME: N passed, M failed" and gives the exit status. */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int checks_passed, checks_failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (cond) {                                                                   \
            checks_passed++;                                                          \
        } else {                                                                      \
            checks_failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

/* A call that must return `want` (an overlay_result). */
#define CHECK_RC(call, want)                                                            \
    do {                                                                                \
        overlay_result rc_ = (call);                                                    \
        if (rc_ == (overlay_result)(want)) {                                            \
            checks_passed++;                                                            \
        } else {                                                                        \
            checks_failed++;                                                            \
            fprintf(stderr, "%s:%d: %s returned %u, expected %s (%u)\n", __FILE__,      \
                    __LINE__, #call, (unsigned)rc_, #want, (unsigned)(want));           \
        }                                                                               \
    } while (0)

/* A condition without which the rest of the test makes no sense. */
#define REQUIRE(cond)                                                                 \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(2);                                                                  \
        }                                                                             \
    } while (0)

static int check_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

#endif
