/* lgpu_op_lora (the per-row LoRA update of unmerged adapters) on the device
 * under test (LGPU_DEVICE; lavapipe in CI) and its C twin against a double
 * oracle written here: odd shapes, ranks above the workgroup size, stacks
 * with empty slots, adapters that skip the projection, rows listed out of
 * order and rows left out (untouched bits), a row alone equal to the same
 * row in a batch (bits), bit-identical reruns, a hand-computed case and bad
 * lists. */
#include "ops_harness.h"

enum { MAXA = 4, TSTRIDE = 3 };

typedef struct lcase {
    lgpu_lora_op_params p;
    lgpu_buf *x, *w, *tab, *rows, *y;
    const float *y0;
    size_t yb;
} lcase;

static void l_reset(oh_case *c) {
    const lcase *k = c->ctx;
    TU_OK(lgpu_buf_write(k->y, 0, k->y0, k->yb));
}

static int l_record(oh_case *c, lgpu_exec *ex) {
    const lcase *k = c->ctx;
    return lgpu_op_lora(ex, &k->p, oh_ref(k->x), oh_ref(k->w), oh_ref(k->tab), oh_ref(k->rows), oh_ref(k->y));
}

/* The contract in double. */
static void oracle(const lgpu_lora_op_params *p, const float *x, const float *w, const int32_t *tab,
                   const int32_t *rows, const float *y0, float *y) {
    size_t ny = (size_t)(p->n_tokens - 1) * p->y_stride + p->out;
    memcpy(y, y0, ny * sizeof *y);
    const uint32_t words = 1 + 2 * p->n_stack;
    for (uint32_t e = 0; e < p->n_rows; e++) {
        const int32_t *r = rows + (size_t)e * words;
        const float *xr = x + (size_t)r[0] * p->x_stride;
        float *yr = y + (size_t)r[0] * p->y_stride;
        for (uint32_t k = 0; k < p->n_stack; k++) {
            int32_t a = r[1 + 2 * k];
            if (a < 0) continue;
            float s;
            memcpy(&s, &r[2 + 2 * k], 4);
            const int32_t *t = tab + ((size_t)a * p->table_stride + p->table_index) * 4;
            uint32_t rank = (uint32_t)t[2];
            double u[LGPU_LORA_OP_MAX_RANK];
            for (uint32_t j = 0; j < rank; j++) {
                u[j] = 0;
                for (uint32_t i = 0; i < p->in; i++) u[j] += (double)w[t[0] + (size_t)j * p->in + i] * xr[i];
            }
            for (uint32_t o = 0; o < p->out; o++) {
                double acc = 0;
                for (uint32_t j = 0; j < rank; j++) acc += (double)w[t[1] + (size_t)o * rank + j] * u[j];
                yr[o] = (float)(yr[o] + s * acc);
            }
        }
    }
}

typedef struct shape {
    uint32_t in, out, T, n_adapters, n_stack;
    uint32_t ranks[MAXA]; /* rank of each adapter for this projection (0: not adapted) */
} shape;

/* Builds a random case: adapters' matrices packed in w (with gaps), rows
 * listing every other token in reverse order with random stacks. Runs the
 * device op (3 runs, bit-identical), the twin, and the oracle. */
static void run_case(const shape *sh, uint64_t seed) {
    tu_rng r;
    tu_rng_seed(&r, seed);
    const uint32_t xs = sh->in + 3, ys = sh->out + 1, T = sh->T, S = sh->n_stack;
    /* the table: entry (a, TSTRIDE-1) is ours; the others hold junk */
    int32_t tab[MAXA * TSTRIDE * 4];
    for (size_t i = 0; i < sizeof tab / 4; i++) tab[i] = (int32_t)(tu_rng_u32(&r) | 0x40000000u);
    uint32_t off = 5;
    for (uint32_t a = 0; a < sh->n_adapters; a++) {
        int32_t *t = tab + ((size_t)a * TSTRIDE + TSTRIDE - 1) * 4;
        uint32_t rk = sh->ranks[a];
        t[0] = (int32_t)off;
        off += rk * sh->in + 7;
        t[1] = (int32_t)off;
        off += rk * sh->out + 2;
        t[2] = (int32_t)rk;
        t[3] = 0;
    }
    const uint32_t w_size = off;
    size_t xn = (size_t)T * xs, yn = (size_t)(T - 1) * ys + sh->out;
    float *x = oh_alloc(xn * 4), *w = oh_alloc((size_t)w_size * 4), *y0 = oh_alloc(yn * 4);
    float *want = oh_alloc(yn * 4), *got = oh_alloc(yn * 4), *twin = oh_alloc(yn * 4);
    tu_fill_uniform(&r, x, xn, -1, 1);
    tu_fill_uniform(&r, w, w_size, -0.5f, 0.5f);
    tu_fill_uniform(&r, y0, yn, -2, 2);
    const uint32_t words = 1 + 2 * S, n_rows = (T + 1) / 2;
    int32_t *rows = oh_alloc((size_t)n_rows * words * 4);
    for (uint32_t e = 0; e < n_rows; e++) {
        int32_t *re = rows + (size_t)e * words;
        re[0] = (int32_t)(T - 1 - 2 * e);
        for (uint32_t k = 0; k < S; k++) {
            uint32_t pick = tu_rng_u32(&r) % (sh->n_adapters + 1);
            re[1 + 2 * k] = pick == sh->n_adapters ? -1 : (int32_t)pick;
            float s = tu_rng_uniform(&r, -2, 2);
            memcpy(&re[2 + 2 * k], &s, 4);
        }
    }
    lcase k = {.p = {.n_rows = n_rows, .n_tokens = T, .in = sh->in, .out = sh->out, .x_stride = xs, .y_stride = ys,
                     .n_stack = S, .n_adapters = sh->n_adapters, .table_stride = TSTRIDE,
                     .table_index = TSTRIDE - 1, .w_size = w_size},
               .y0 = y0, .yb = yn * 4};
    oracle(&k.p, x, w, tab, rows, y0, want);
    memcpy(twin, y0, yn * 4);
    lgpu_ref_lora(&k.p, x, w, tab, rows, twin, 3);
    k.x = oh_buf(x, xn * 4);
    k.w = oh_buf(w, (size_t)w_size * 4);
    k.tab = oh_buf(tab, (size_t)sh->n_adapters * TSTRIDE * 16);
    k.rows = oh_buf(rows, (size_t)n_rows * words * 4);
    k.y = oh_buf(y0, yn * 4);
    oh_case c = {.reset = l_reset, .record = l_record, .out = k.y, .out_bytes = yn * 4, .ctx = &k};
    oh_run3(&c, got);
    char what[96];
    snprintf(what, sizeof what, "lora in %u out %u T %u stack %u", sh->in, sh->out, T, S);
    fprintf(stderr, "%s:\n", what);
    /* float sums of up to in + rank products of values below 1: a few ulps of
     * the largest partial sums */
    double atol = 2e-6 * (sh->in + 64), rtol = 1e-5;
    assert_int_equal(oh_compare("device vs double", got, want, yn, atol, rtol), 0);
    assert_int_equal(oh_compare("twin vs double", twin, want, yn, atol, rtol), 0);
    /* rows not listed are untouched, to the bit */
    for (uint32_t m = 0; m < T; m++)
        if ((T - 1 - m) % 2)
            assert_memory_equal(got + (size_t)m * ys, y0 + (size_t)m * ys, sh->out * 4);

    /* the first listed row alone gives the same bits as in the batch */
    lcase one = k;
    one.p.n_rows = 1;
    float *alone = oh_alloc(yn * 4);
    oh_case c1 = {.reset = l_reset, .record = l_record, .out = k.y, .out_bytes = yn * 4, .ctx = &one};
    oh_run3(&c1, alone);
    uint32_t m0 = (uint32_t)rows[0];
    assert_memory_equal(alone + (size_t)m0 * ys, got + (size_t)m0 * ys, sh->out * 4);

    lgpu_buf *bufs[] = {k.x, k.w, k.tab, k.rows, k.y};
    for (int i = 0; i < 5; i++) lgpu_buf_destroy(bufs[i]);
    free(x), free(w), free(y0), free(want), free(got), free(twin), free(rows), free(alone);
}

static void test_lora_shapes(void **state) {
    (void)state;
    const shape shapes[] = {
        {1, 1, 1, 1, 1, {1}},
        {31, 155, 7, 2, 1, {3, 0}},         /* the second adapter skips this projection */
        {64, 172, 9, 3, 2, {4, 8, 1}},      /* stories260K's up/gate with two stacked adapters */
        {172, 64, 5, 2, 3, {16, 5}},
        {300, 257, 4, 2, 2, {300, 2}},      /* rank above the workgroup: two rank blocks */
        {4097, 33, 3, 1, 1, {6}},
        {40, 50, 33, 4, 4, {1, 2, 3, 1024}},/* the largest rank */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_case(&shapes[i], 11 + i);
}

/* One row, one adapter, by hand: x = (1, 2), A = [[1, 0], [0, 1], [1, 1]]
 * (rank 3), B = [[1, 0, 0], [0, 1, 1]], s = 0.5: u = (1, 2, 3),
 * B u = (1, 5), y = y0 + 0.5 (1, 5). */
static void test_lora_hand(void **state) {
    (void)state;
    float x[2] = {1, 2}, w[12] = {1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1}, y0[2] = {10, 20}, got[2];
    float s = 0.5f;
    int32_t tab[4] = {0, 6, 3, 0}, rows[3] = {0, 0, 0};
    memcpy(&rows[2], &s, 4);
    lcase k = {.p = {.n_rows = 1, .n_tokens = 1, .in = 2, .out = 2, .x_stride = 2, .y_stride = 2, .n_stack = 1,
                     .n_adapters = 1, .table_stride = 1, .table_index = 0, .w_size = 12},
               .y0 = y0, .yb = sizeof y0};
    k.x = oh_buf(x, sizeof x), k.w = oh_buf(w, sizeof w), k.tab = oh_buf(tab, sizeof tab);
    k.rows = oh_buf(rows, sizeof rows), k.y = oh_buf(y0, sizeof y0);
    oh_case c = {.reset = l_reset, .record = l_record, .out = k.y, .out_bytes = sizeof y0, .ctx = &k};
    oh_run3(&c, got);
    assert_true(got[0] == 10.5f && got[1] == 22.5f);
    lgpu_buf *bufs[] = {k.x, k.w, k.tab, k.rows, k.y};
    for (int i = 0; i < 5; i++) lgpu_buf_destroy(bufs[i]);
}

/* Bad parameters fail with a detail; on the host, bad entries are rejected
 * before anything is written, on Vulkan the shader skips them. */
static void test_lora_errors(void **state) {
    (void)state;
    float x[4] = {1, 2, 3, 4}, w[8] = {1, 1, 1, 1, 1, 1, 1, 1}, y0[4] = {0, 0, 0, 0}, got[4];
    int32_t tab[4] = {0, 2, 1, 0}, rows[3] = {5, 0, 0};
    lgpu_buf *bx = oh_buf(x, sizeof x), *bw = oh_buf(w, sizeof w), *bt = oh_buf(tab, sizeof tab);
    lgpu_buf *br = oh_buf(rows, sizeof rows), *by = oh_buf(y0, sizeof y0);
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    lgpu_lora_op_params p = {.n_rows = 1, .n_tokens = 2, .in = 2, .out = 2, .x_stride = 2, .y_stride = 2, .n_stack = 1,
                             .n_adapters = 1, .table_stride = 1, .table_index = 0, .w_size = 8};
    lgpu_lora_op_params bad = p;
    bad.x_stride = 1;
    TU_OK(lgpu_exec_begin(ex));
    assert_int_equal(lgpu_op_lora(ex, &bad, oh_ref(bx), oh_ref(bw), oh_ref(bt), oh_ref(br), oh_ref(by)), LGPU_EINVAL);
    bad = p;
    bad.n_tokens = 3; /* x holds 2 rows */
    assert_int_equal(lgpu_op_lora(ex, &bad, oh_ref(bx), oh_ref(bw), oh_ref(bt), oh_ref(br), oh_ref(by)), LGPU_ERANGE);
    /* row 5 of 2 tokens */
    int st = lgpu_op_lora(ex, &p, oh_ref(bx), oh_ref(bw), oh_ref(bt), oh_ref(br), oh_ref(by));
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) {
        assert_int_equal(st, LGPU_ERANGE);
        assert_non_null(strstr(lgpu_last_error(), "row 5"));
    } else {
        TU_OK(st);
    }
    /* adapter 0's B beyond w */
    rows[0] = 1;
    tab[1] = 7;
    TU_OK(lgpu_buf_write(br, 0, rows, sizeof rows));
    TU_OK(lgpu_buf_write(bt, 0, tab, sizeof tab));
    st = lgpu_op_lora(ex, &p, oh_ref(bx), oh_ref(bw), oh_ref(bt), oh_ref(br), oh_ref(by));
    if (lgpu_dev_kind_of(oh_dev) == LGPU_DEV_CPU) assert_int_equal(st, LGPU_ERANGE);
    else TU_OK(st);
    TU_OK(lgpu_exec_submit(ex));
    TU_OK(lgpu_buf_read(by, 0, got, sizeof got));
    assert_memory_equal(got, y0, sizeof y0); /* nothing written */
    lgpu_exec_destroy(ex);
    lgpu_buf *bufs[] = {bx, bw, bt, br, by};
    for (int i = 0; i < 5; i++) lgpu_buf_destroy(bufs[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lora_hand),
        cmocka_unit_test(test_lora_shapes),
        cmocka_unit_test(test_lora_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
