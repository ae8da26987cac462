/* Helpers for the op tests (test_add.c, test_norm.c, test_rope.c,
 * test_attention.c, test_get_rows.c, test_matmul.c): the device under test (LGPU_DEVICE; lavapipe in CI),
 * uploads, and "record the op three times, check the runs are
 * bit-identical". Header-only: each test program includes it once. */
#ifndef LGPU_TESTS_OPS_HARNESS_H
#define LGPU_TESTS_OPS_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "quant/nf4.h"
#include "ref/ref_ops.h"
#include "test_util.h"

static lgpu_dev *oh_dev;

static int oh_setup(void **state) {
    (void)state;
    int st = lgpu_dev_create(NULL, &oh_dev);
    if (st) {
        fprintf(stderr, "lgpu_dev_create: %s\n", lgpu_last_error());
        return st;
    }
    fprintf(stderr, "device: %s\n", lgpu_dev_name(oh_dev));
    return 0;
}

static int oh_teardown(void **state) {
    (void)state;
    lgpu_dev_destroy(oh_dev);
    oh_dev = NULL;
    return 0;
}

static inline void *oh_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

/* Poisons a buffer with 0xff bytes. */
static inline void oh_poison(lgpu_buf *b, size_t bytes) {
    void *ff = oh_alloc(bytes);
    memset(ff, 0xff, bytes);
    TU_OK(lgpu_buf_write(b, 0, ff, bytes));
    free(ff);
}

/* A device buffer of `bytes` (at least 4), filled from `data` if not NULL,
 * else with 0xff bytes (NaN floats, -1 ints: unwritten output shows up). */
static inline lgpu_buf *oh_buf(const void *data, size_t bytes) {
    lgpu_buf *b = NULL;
    size_t n = bytes < 4 ? 4 : bytes;
    TU_OK(lgpu_buf_create(oh_dev, n, 4, &b));
    if (data)
        TU_OK(lgpu_buf_write(b, 0, data, bytes));
    else
        oh_poison(b, n);
    return b;
}

static inline lgpu_ref oh_ref(lgpu_buf *b) { return lgpu_ref_at(b, 0); }

/* What one run does: (re)upload inputs / poison outputs, record the op(s). */
typedef struct oh_case {
    void (*reset)(struct oh_case *c);             /* may be NULL */
    int (*record)(struct oh_case *c, lgpu_exec *ex);
    lgpu_buf *out;                                /* read back after each run */
    size_t out_bytes;
    void *ctx;
} oh_case;

/* Runs the case 3 times; `result` gets the first run's output, and the later
 * runs must be bit-identical to it (shaders are race free and deterministic). */
static inline void oh_run3(oh_case *c, void *result) {
    lgpu_exec *ex;
    void *again = oh_alloc(c->out_bytes);
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    for (int rep = 0; rep < 3; rep++) {
        if (c->reset) c->reset(c);
        TU_OK(lgpu_exec_begin(ex));
        TU_OK(c->record(c, ex));
        TU_OK(lgpu_exec_submit(ex));
        TU_OK(lgpu_buf_read(c->out, 0, rep ? again : result, c->out_bytes));
        if (rep) assert_memory_equal(again, result, c->out_bytes);
    }
    lgpu_exec_destroy(ex);
    free(again);
}

/* TU_ASSERT_NMSE that also logs the NMSE, so drifts show in the test log. */
#define OH_CHECK_NMSE(what, a, ref, n, max_nmse)                                                  \
    do {                                                                                         \
        fprintf(stderr, "  %s: NMSE %.3g (limit %.3g)\n", (what), tu_nmse((a), (ref), (n)),       \
                (double)(max_nmse));                                                             \
        TU_ASSERT_NMSE((what), (a), (ref), (n), (max_nmse));                                     \
    } while (0)

/* tu_compare that also logs the largest error as a fraction of its
 * tolerance atol + rtol*|ref| (1 = at the limit). */
static inline size_t oh_compare(const char *what, const float *a, const float *ref, size_t n, double atol,
                                double rtol) {
    double worst = 0, wd = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]), tol = atol + rtol * fabs((double)ref[i]);
        double f = tol > 0 ? d / tol : (d > 0 ? INFINITY : 0);
        if (f > worst) worst = f, wd = d;
    }
    fprintf(stderr, "  %s: worst error %.3g = %.3g of its tolerance (atol %.3g, rtol %.3g)\n", what, wd, worst, atol,
            rtol);
    return tu_compare(what, a, ref, n, atol, rtol);
}

/* NF4 weights (quant/nf4.h) for the matmul tests: N x K uniform [-1, 1)
 * values quantized as one tensor, its side table, and the values the ops
 * multiply (dequantized, rounded to the compute type ct). */
typedef struct {
    int type, ct;
    uint32_t N, K;
    uint8_t *w;
    lgpu_nf4_side *side;
    float *wd;
    size_t wb, sb;
} oh_nf4;

static inline oh_nf4 oh_nf4_make(int type, int ct, uint32_t N, uint32_t K, tu_rng *r) {
    oh_nf4 t = {type, ct, N, K, NULL, NULL, NULL, 0, 0};
    size_t n = (size_t)N * K;
    float *x = oh_alloc(n * 4);
    tu_fill_uniform(r, x, n, -1, 1);
    t.wb = lgpu_nf4_bytes(type, (int64_t)n), t.sb = lgpu_nf4_side_bytes(type, (int64_t)n);
    t.w = oh_alloc(t.wb), t.side = oh_alloc(t.sb), t.wd = oh_alloc(n * 4 + 4);
    TU_OK(lgpu_nf4_quantize(type, x, (int64_t)n, t.w, t.side, ct));
    TU_OK(lgpu_nf4_dequantize(type, t.w, t.side, 0, 0, (int64_t)n, t.wd, true));
    free(x);
    return t;
}

static inline void oh_nf4_free(oh_nf4 *t) { free(t->w), free(t->side), free(t->wd); }

/* The tensor in a new buffer of `alloc` bytes (0: its size rounded up to 4)
 * at byte `off`, split in segments of its row groups, with its side table
 * as the buffer's side buffer. */
static inline lgpu_buf *oh_nf4_upload(const oh_nf4 *t, size_t off, size_t alloc) {
    int64_t g = lgpu_nf4_row_group(t->K);
    size_t unit = lgpu_nf4_rows_bytes(t->type, g, t->K);
    lgpu_buf *b, *side;
    TU_OK(lgpu_buf_create(oh_dev, alloc ? alloc : off + (t->wb + 3) / 4 * 4, off ? 4 : unit, &b));
    TU_OK(lgpu_buf_write(b, off, t->w, t->wb));
    TU_OK(lgpu_buf_create(oh_dev, t->sb, 4, &side));
    TU_OK(lgpu_buf_write(side, 0, t->side, t->sb));
    lgpu_buf_set_side(b, side, (uint32_t)t->ct);
    return b;
}

/* Sets LGPU_NO_SUBGROUP (the ops read it at each call) so the shared-memory
 * reduction variants run; on(false) restores the default. */
static inline void oh_force_no_subgroup(bool on) {
    if (on)
        setenv("LGPU_NO_SUBGROUP", "1", 1);
    else
        unsetenv("LGPU_NO_SUBGROUP");
}

#endif
