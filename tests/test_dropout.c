/* lgpu_op_dropout (LoRA dropout): the generator against Random123's known
 * answers, a mask checked by hand from them, the op on the selected device
 * bit for bit against its C twin (three runs identical, any thread count),
 * the kept fraction within a few standard deviations of 1 - p (per Philox
 * word and for neighbouring pairs too), p = 0 as the identity, seeds
 * (the same mask for the same seed, another for another), accumulate, in
 * place, and the glue's errors. */
#include <math.h>

#include "ops_harness.h"

/* ---- the generator: Random123's tests/kat_vectors, the three
 * "philox4x32 10" lines (ctr[4] key[2] -> result[4]) ---- */
static void test_philox_known_answers(void **state) {
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        lgpu_ref_philox4x32_10(kat[k], kat[k] + 4, out);
        assert_memory_equal(out, kat[k] + 6, sizeof out);
    }
}

/* ---- running the op ---- */

typedef struct {
    lgpu_dropout_params p;
    lgpu_buf *x, *y;    /* y may be x (in place) */
    const float *y0;    /* y's contents before each run (accumulate, in place); NULL: poisoned */
} dr_case;

static void dr_reset(oh_case *c) {
    dr_case *k = c->ctx;
    if (k->y0) TU_OK(lgpu_buf_write(k->y, 0, k->y0, (size_t)k->p.n * 4));
    else oh_poison(k->y, (size_t)k->p.n * 4);
}

static int dr_record(oh_case *c, lgpu_exec *ex) {
    dr_case *k = c->ctx;
    return lgpu_op_dropout(ex, &k->p, oh_ref(k->x), oh_ref(k->y));
}

/* The op on the device (three runs, bit-identical) into got. y0: y before
 * (accumulate; NULL otherwise); in_place: x is y (and y0 is x). */
static void run_dropout(const lgpu_dropout_params *p, const float *x, const float *y0, bool in_place, float *got) {
    size_t bytes = (size_t)p->n * 4;
    dr_case k = {.p = *p, .y0 = in_place ? x : y0};
    k.y = oh_buf(NULL, bytes);
    k.x = in_place ? k.y : oh_buf(x, bytes);
    oh_case c = {.reset = dr_reset, .record = dr_record, .out = k.y, .out_bytes = bytes, .ctx = &k};
    oh_run3(&c, got);
    if (!in_place) lgpu_buf_destroy(k.x);
    lgpu_buf_destroy(k.y);
}

/* The twin with `threads` threads: y = y0 (or poison) first. */
static void twin(const lgpu_dropout_params *p, const float *x, const float *y0, float *y, int threads) {
    if (y0) memcpy(y, y0, (size_t)p->n * 4);
    else memset(y, 0xff, (size_t)p->n * 4);
    lgpu_ref_dropout(p, x, y, threads);
}

static float *ones(uint32_t n) {
    float *v = oh_alloc((size_t)n * 4);
    for (uint32_t i = 0; i < n; i++) v[i] = 1.0f;
    return v;
}

/* Seed 0: group 0 is Philox of counter 0 under key 0, the first known
 * answer: words 6627e8d5 e169c58d bc57ac4c 9b00dbd8. With p = 0.5
 * (threshold 0x80000000) element 0 goes, 1..3 stay (x 2). With p = 0.4f
 * the threshold is ceil(0.4f 2^32) = 1717986944 (0.4f = 13421773 2^-25),
 * just above 0x6627e8d5 = 1713891541: element 0 still goes; with p = 0.39
 * (threshold ceil(0.39f 2^32) = 1675037184) it stays. */
static void test_hand_checked(void **state) {
    const float x[4] = {1.5f, -2.0f, 3.25f, 0.5f};
    float got[4], want[4];
    lgpu_dropout_params p = lgpu_dropout_params_make(4, 0.5f, 0, false);
    assert_int_equal(p.threshold, 0x80000000u);
    assert_true(p.scale == 2.0f);
    run_dropout(&p, x, NULL, false, got);
    const float half[4] = {0.0f, -4.0f, 6.5f, 1.0f};
    assert_memory_equal(got, half, sizeof got);
    p = lgpu_dropout_params_make(4, 0.4f, 0, false);
    assert_int_equal(p.threshold, 1717986944u);
    run_dropout(&p, x, NULL, false, got);
    for (int i = 0; i < 4; i++) want[i] = i == 0 ? 0.0f : x[i] * p.scale;
    assert_memory_equal(got, want, sizeof got);
    p = lgpu_dropout_params_make(4, 0.39f, 0, false);
    assert_int_equal(p.threshold, 1675037184u);
    run_dropout(&p, x, NULL, false, got);
    for (int i = 0; i < 4; i++) want[i] = x[i] * p.scale;
    assert_memory_equal(got, want, sizeof got);
    /* a 64-bit seed is Philox's key (low word first): the third known
     * answer's key, on our counter 0, through the generator checked above */
    p = lgpu_dropout_params_make(4, 0.5f, 0x299f31d0a4093822ull, false);
    assert_int_equal(p.seed_lo, 0xa4093822u);
    assert_int_equal(p.seed_hi, 0x299f31d0u);
    uint32_t ctr[4] = {0, 0, 0, 0}, key[2] = {0xa4093822u, 0x299f31d0u}, bits[4];
    lgpu_ref_philox4x32_10(ctr, key, bits);
    run_dropout(&p, x, NULL, false, got);
    for (int i = 0; i < 4; i++) want[i] = bits[i] >= 0x80000000u ? x[i] * 2.0f : 0.0f;
    assert_memory_equal(got, want, sizeof got);
}

/* The device against the twin at odd sizes, several p, both modes, bit for
 * bit; the twin's bits do not depend on its thread count. */
static void test_shader_vs_twin(void **state) {
    const uint32_t sizes[] = {1, 3, 4, 5, 255, 1023, 16385, 100003};
    const float ps[] = {0.0f, 0.05f, 0.1f, 0.5f, 0.9f};
    tu_rng r;
    tu_rng_seed(&r, 77);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++)
            for (int acc = 0; acc < 2; acc++) {
                uint32_t n = sizes[si];
                size_t bytes = (size_t)n * 4;
                float *x = oh_alloc(bytes), *y0 = oh_alloc(bytes), *got = oh_alloc(bytes), *w1 = oh_alloc(bytes),
                      *w8 = oh_alloc(bytes);
                tu_fill_uniform(&r, x, n, -3.0f, 3.0f);
                tu_fill_uniform(&r, y0, n, -1.0f, 1.0f);
                uint64_t seed = ((uint64_t)tu_rng_u32(&r) << 32) | tu_rng_u32(&r);
                lgpu_dropout_params p = lgpu_dropout_params_make(n, ps[pi], seed, acc);
                run_dropout(&p, x, acc ? y0 : NULL, false, got);
                twin(&p, x, acc ? y0 : NULL, w1, 1);
                twin(&p, x, acc ? y0 : NULL, w8, 8);
                assert_memory_equal(w1, w8, bytes);
                if (memcmp(got, w1, bytes)) {
                    tu_compare("dropout vs twin", got, w1, n, 0, 0);
                    print_error("n %u p %g accumulate %d seed %016llx\n", n, ps[pi], acc, (unsigned long long)seed);
                    fail();
                }
                free(x), free(y0), free(got), free(w1), free(w8);
            }
}

/* Kept fraction over 2^20 elements (on the device): within 5 standard
 * deviations of 1 - p overall, for each of Philox's 4 words (i % 4), and for
 * pairs of neighbours kept together ((1 - p)^2), over several p and seeds;
 * every kept value is x / (1 - p) exactly. */
static void test_kept_fraction(void **state) {
    const uint32_t n = 1u << 20;
    const float ps[] = {0.01f, 0.05f, 0.1f, 0.3f, 0.5f, 0.9f};
    float *x = ones(n), *got = oh_alloc((size_t)n * 4);
    for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++)
        for (uint64_t seed = 1; seed <= 2; seed++) {
            double q = 1.0 - ps[pi];
            lgpu_dropout_params p = lgpu_dropout_params_make(n, ps[pi], seed * 0x9E3779B97F4A7C15ull, false);
            run_dropout(&p, x, NULL, false, got);
            uint64_t kept = 0, lane[4] = {0}, pairs = 0;
            for (uint32_t i = 0; i < n; i++) {
                bool k = got[i] != 0.0f;
                if (k) assert_true(got[i] == p.scale);
                kept += k;
                lane[i % 4] += k;
                if (i + 1 < n && k && got[i + 1] != 0.0f) pairs++;
            }
            double sd = sqrt(n * q * (1 - q)), dev = ((double)kept - n * q) / sd;
            print_message("p %.2f seed %llu: kept %.5f (want %.5f, %+.2f sd)\n", ps[pi], (unsigned long long)seed,
                          (double)kept / n, q, dev);
            assert_true(fabs(dev) <= 5);
            for (int l = 0; l < 4; l++) {
                double m = n / 4.0, d = ((double)lane[l] - m * q) / sqrt(m * q * (1 - q));
                assert_true(fabs(d) <= 5);
            }
            double q2 = q * q, pd = ((double)pairs - (n - 1) * q2) / sqrt((n - 1) * q2 * (1 - q2));
            assert_true(fabs(pd) <= 6); /* overlapping pairs: a little more spread */
        }
    free(x);
    free(got);
}

/* p = 0: y = x exactly (and y + x when accumulating), whatever the seed. */
static void test_p0_identity(void **state) {
    const uint32_t n = 10007;
    float *x = oh_alloc(n * 4), *y0 = oh_alloc(n * 4), *got = oh_alloc(n * 4), *want = oh_alloc(n * 4);
    tu_rng r;
    tu_rng_seed(&r, 5);
    tu_fill_uniform(&r, x, n, -1e3f, 1e3f);
    tu_fill_uniform(&r, y0, n, -1.0f, 1.0f);
    lgpu_dropout_params p = lgpu_dropout_params_make(n, 0.0f, 0xdeadbeefcafef00dull, false);
    assert_int_equal(p.threshold, 0);
    assert_true(p.scale == 1.0f);
    run_dropout(&p, x, NULL, false, got);
    assert_memory_equal(got, x, n * 4);
    p.accumulate = 1;
    run_dropout(&p, x, y0, false, got);
    for (uint32_t i = 0; i < n; i++) want[i] = y0[i] + x[i];
    assert_memory_equal(got, want, n * 4);
    free(x), free(y0), free(got), free(want);
}

/* The same seed gives the same mask (also in another exec and buffer); a
 * seed differing in the low word only, or the high word only, gives another:
 * two independent masks agree on p^2 + (1-p)^2 of the elements. */
static void test_seeds(void **state) {
    const uint32_t n = 65536;
    const float pr = 0.5f;
    float *x = ones(n), *a = oh_alloc(n * 4), *b = oh_alloc(n * 4);
    const uint64_t seed = 0x0123456789abcdefull;
    lgpu_dropout_params p = lgpu_dropout_params_make(n, pr, seed, false);
    run_dropout(&p, x, NULL, false, a);
    run_dropout(&p, x, NULL, false, b);
    assert_memory_equal(a, b, n * 4);
    const uint64_t others[] = {seed ^ 1, seed ^ (1ull << 32), seed + 1};
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
        lgpu_dropout_params q = lgpu_dropout_params_make(n, pr, others[k], false);
        run_dropout(&q, x, NULL, false, b);
        uint32_t same = 0;
        for (uint32_t i = 0; i < n; i++) same += (a[i] != 0) == (b[i] != 0);
        double want = pr * pr + (1 - pr) * (1 - pr), sd = sqrt(n * want * (1 - want));
        print_message("seed %016llx vs %016llx: masks agree on %.4f (independent: %.4f)\n", (unsigned long long)seed,
                      (unsigned long long)others[k], (double)same / n, want);
        assert_true(fabs(same - n * want) <= 5 * sd);
    }
    free(x), free(a), free(b);
}

/* accumulate: y = y0 + (keep ? x / (1 - p) : 0), the mask being the one the
 * plain op draws for the same seed; in place (y is x), both modes. */
static void test_accumulate_and_in_place(void **state) {
    const uint32_t n = 4099;
    float *x = oh_alloc(n * 4), *y0 = oh_alloc(n * 4), *mask = oh_alloc(n * 4), *got = oh_alloc(n * 4),
          *want = oh_alloc(n * 4), *one = ones(n);
    tu_rng r;
    tu_rng_seed(&r, 11);
    tu_fill_uniform(&r, x, n, -2.0f, 2.0f);
    tu_fill_uniform(&r, y0, n, -1.0f, 1.0f);
    lgpu_dropout_params p = lgpu_dropout_params_make(n, 0.25f, 42, false);
    run_dropout(&p, one, NULL, false, mask); /* the mask itself: 0 or 1 / (1 - p) */
    for (uint32_t i = 0; i < n; i++) assert_true(mask[i] == 0.0f || mask[i] == p.scale);
    p.accumulate = 1;
    run_dropout(&p, x, y0, false, got);
    for (uint32_t i = 0; i < n; i++) want[i] = y0[i] + (mask[i] != 0.0f ? x[i] * p.scale : 0.0f);
    assert_memory_equal(got, want, n * 4);
    run_dropout(&p, x, NULL, true, got); /* y = x + dropout(x) */
    for (uint32_t i = 0; i < n; i++) want[i] = x[i] + (mask[i] != 0.0f ? x[i] * p.scale : 0.0f);
    assert_memory_equal(got, want, n * 4);
    p.accumulate = 0;
    run_dropout(&p, x, NULL, true, got); /* y = dropout(x) in place */
    for (uint32_t i = 0; i < n; i++) want[i] = mask[i] != 0.0f ? x[i] * p.scale : 0.0f;
    assert_memory_equal(got, want, n * 4);
    free(x), free(y0), free(mask), free(got), free(want), free(one);
}

static void test_errors(void **state) {
    lgpu_buf *b;
    TU_OK(lgpu_buf_create(oh_dev, 4096, 4, &b));
    lgpu_exec *ex;
    TU_OK(lgpu_exec_create(oh_dev, &ex));
    TU_OK(lgpu_exec_begin(ex));
    lgpu_dropout_params p = {.n = 64}; /* scale left 0 */
    assert_int_equal(lgpu_op_dropout(ex, &p, lgpu_ref_at(b, 0), lgpu_ref_at(b, 1024)), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "dropout: scale"));
    p = lgpu_dropout_params_make(64, 1.0f, 0, false); /* p = 1: scale inf */
    assert_int_equal(lgpu_op_dropout(ex, &p, lgpu_ref_at(b, 0), lgpu_ref_at(b, 1024)), LGPU_EINVAL);
    p = lgpu_dropout_params_make(64, 0.1f, 0, false);
    p.accumulate = 2;
    assert_int_equal(lgpu_op_dropout(ex, &p, lgpu_ref_at(b, 0), lgpu_ref_at(b, 1024)), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "dropout: accumulate"));
    p.accumulate = 0;
    p.n = 512; /* 2048 bytes from 256 overlap [0, 2048) elsewhere */
    assert_int_equal(lgpu_op_dropout(ex, &p, lgpu_ref_at(b, 0), lgpu_ref_at(b, 256)), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "overlaps"));
    p.n = 1000; /* 4000 bytes from 1024 run past the buffer */
    assert_int_equal(lgpu_op_dropout(ex, &p, lgpu_ref_at(b, 0), lgpu_ref_at(b, 1024)), LGPU_ERANGE);
    assert_non_null(strstr(lgpu_last_error(), "dropout"));
    p.n = 0; /* nothing to do */
    TU_OK(lgpu_op_dropout(ex, &p, lgpu_ref_at(b, 0), lgpu_ref_at(b, 0)));
    TU_OK(lgpu_exec_submit(ex));
    lgpu_exec_destroy(ex);
    lgpu_buf_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_hand_checked),
        cmocka_unit_test(test_shader_vs_twin),
        cmocka_unit_test(test_kept_fraction),
        cmocka_unit_test(test_p0_identity),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_accumulate_and_in_place),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, oh_setup, oh_teardown);
}
