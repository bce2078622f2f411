/* A minimal unit-test harness: each test program is a list of functions run
 * in order; a failed CHECK prints file:line and the expression and marks the
 * program failed, so one ctest shows every broken expectation at once. */
#ifndef SCALECAST_UNIT_H
#define SCALECAST_UNIT_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int unit_failures;
static int unit_checks;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        unit_checks++;                                                                             \
        if (!(expr)) {                                                                             \
            unit_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *ua_ = (a), *ub_ = (b);                                                         \
        unit_checks++;                                                                             \
        if (!ua_ || !ub_ || strcmp(ua_, ub_) != 0) {                                               \
            unit_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", expected \"%s\"\n", __FILE__,  \
                    __LINE__, #a, ua_ ? ua_ : "(null)", ub_ ? ub_ : "(null)");                     \
        }                                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double ua_ = (a), ub_ = (b);                                                               \
        unit_checks++;                                                                             \
        if (!(fabs(ua_ - ub_) <= (tol))) {                                                         \
            unit_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, expected %.9g +- %g\n",          \
                    __FILE__, __LINE__, #a, ua_, ub_, (double)(tol));                              \
        }                                                                                          \
    } while (0)

#define RUN(test)                                                                                  \
    do {                                                                                           \
        int before_ = unit_failures;                                                               \
        test();                                                                                    \
        fprintf(stderr, "%s %s\n", unit_failures == before_ ? "ok  " : "FAIL", #test);             \
    } while (0)

#define UNIT_DONE()                                                                                \
    (fprintf(stderr, "%d checks, %d failed\n", unit_checks, unit_failures), unit_failures ? 1 : 0)

#endif
