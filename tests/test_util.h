/* Shared helpers for the cmocka tests: seeded data, comparisons that print
 * the first mismatches, paths to ../shared/models, the device under test. */
#ifndef LGPU_TEST_UTIL_H
#define LGPU_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lgpu/lgpu.h"

/* Deterministic xorshift RNG. */
typedef struct { uint64_t s; } tu_rng;
void tu_rng_seed(tu_rng *r, uint64_t seed);
uint32_t tu_rng_u32(tu_rng *r);
float tu_rng_uniform(tu_rng *r, float lo, float hi);
float tu_rng_normal(tu_rng *r);
void tu_fill_uniform(tu_rng *r, float *x, size_t n, float lo, float hi);

/* Normalised mean squared error: sum (a-b)^2 / sum b^2 (b = reference). */
double tu_nmse(const float *a, const float *ref, size_t n);
/* Prints up to 5 mismatches where |a-ref| > atol + rtol*|ref|; returns their count. */
size_t tu_compare(const char *what, const float *a, const float *ref, size_t n, double atol, double rtol);
/* Asserts the NMSE of `a` against `ref` is <= max_nmse, printing it. */
#define TU_ASSERT_NMSE(what, a, ref, n, max_nmse)                                              \
    do {                                                                                         \
        double nmse_ = tu_nmse((a), (ref), (n));                                                 \
        if (!(nmse_ <= (max_nmse))) {                                                            \
            print_error("%s: NMSE %.3g > %.3g\n", (what), nmse_, (double)(max_nmse));            \
            tu_compare((what), (a), (ref), (n), 0, 0);                                           \
            fail();                                                                              \
        }                                                                                        \
    } while (0)

/* $LGPU_MODELS/<name> (../shared/models), or NULL-safe static buffer path. */
const char *tu_model_path(const char *name);
/* $LGPU_SOURCE_ROOT/<rel> */
const char *tu_source_path(const char *rel);
/* "<dir>/<name>" in one of 8 rotating thread-local buffers (shared with the two above). */
const char *tu_path(const char *dir, const char *name);

/* Creates a fresh private directory <base>/lgpu-test-<tag>-XXXXXX, base being
 * $TMPDIR, else /dev/shm when writable (tmpfs: some tests write thousands of
 * small files), else /tmp. Writes its path to buf; returns buf, or NULL with
 * the reason printed. */
char *tu_tmpdir_create(const char *tag, char *buf, size_t cap);
/* Removes a directory made by tu_tmpdir_create and everything under it
 * (symlinks are removed, never followed). Refuses other paths. A NULL or empty
 * path is a no-op. Returns 0, or -1 with the reason printed. */
int tu_tmpdir_remove(const char *dir);

/* Asserts an lgpu status is LGPU_OK, printing lgpu_last_error() otherwise. */
#define TU_OK(expr)                                                                               \
    do {                                                                                          \
        int st_ = (expr);                                                                         \
        if (st_ != 0) {                                                                           \
            print_error("%s -> %s: %s\n", #expr, lgpu_err_name(st_), lgpu_last_error());          \
            fail();                                                                               \
        }                                                                                         \
    } while (0)

#endif
