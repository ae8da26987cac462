/* Learning-rate schedules (engine/train/schedule.h) against values computed
 * by hand from transformers' get_{constant,linear,cosine}_schedule_with_warmup
 * (num_cycles 0.5): lr 1e-3, 10 warmup steps, 110 steps in all (steps 0..109,
 * counted from 0 as transformers does). No device. */
#include <math.h>
#include <stdio.h>

#include "test_util.h"
#include "train/schedule.h"

/* Within one float rounding of the exact value. */
static void check(const lgpu_lr_schedule *s, uint64_t step, double want) {
    float got = lgpu_lr_at(s, step);
    if (!(fabs((double)got - want) <= 6e-8 * fabs(want))) {
        print_error("%s step %llu: lr %.9g, want %.9g\n", lgpu_lr_kind_name(s->kind), (unsigned long long)step, got,
                    want);
        fail();
    }
}

/* Warmup, the same for all three: lr * step / 10. Step 0 runs at lr 0. */
static void check_warmup(const lgpu_lr_schedule *s) {
    check(s, 0, 0.0);      /* warmup start */
    check(s, 1, 1e-4);     /* 1/10 */
    check(s, 5, 5e-4);     /* middle */
    check(s, 9, 9e-4);     /* last warmup step */
    check(s, 10, 1e-3);    /* warmup end: the peak */
}

static void test_constant(void **state) {
    (void)state;
    lgpu_lr_schedule s = {LGPU_LR_CONSTANT, 1e-3, 10, 110};
    check_warmup(&s);
    check(&s, 60, 1e-3);
    check(&s, 109, 1e-3);
    check(&s, 1000000, 1e-3);
    s.warmup_steps = 0; /* no warmup: the peak from step 0 */
    check(&s, 0, 1e-3);
}

/* after warmup: lr * (110 - step) / 100 */
static void test_linear(void **state) {
    (void)state;
    lgpu_lr_schedule s = {LGPU_LR_LINEAR, 1e-3, 10, 110};
    check_warmup(&s);
    check(&s, 35, 7.5e-4);  /* 75/100 */
    check(&s, 60, 5e-4);    /* mid-decay: 50/100 */
    check(&s, 109, 1e-5);   /* last step: 1/100 */
    check(&s, 110, 0.0);    /* the end */
    check(&s, 200, 0.0);    /* past it: clamped at 0 */
    s.warmup_steps = 0;     /* 110 - step over 110 */
    check(&s, 0, 1e-3);
    check(&s, 55, 5e-4);
    s = (lgpu_lr_schedule){LGPU_LR_LINEAR, 1e-3, 10, 10}; /* all warmup: max(1, 0) */
    check(&s, 10, 0.0);
}

/* after warmup: progress = (step - 10) / 100, lr * 0.5 * (1 + cos(pi * progress)) */
static void test_cosine(void **state) {
    (void)state;
    lgpu_lr_schedule s = {LGPU_LR_COSINE, 1e-3, 10, 110};
    check_warmup(&s);
    check(&s, 35, 8.53553390593e-4); /* progress 0.25: (1 + cos(pi/4)) / 2 = 0.853553390593 */
    check(&s, 60, 5e-4);             /* mid-decay: (1 + cos(pi/2)) / 2 = 0.5 */
    check(&s, 85, 1.46446609407e-4); /* 0.75: (1 - cos(pi/4)) / 2 */
    check(&s, 109, 2.46719817e-7);   /* last step, 0.99: sin^2(0.005 pi) = 0.0157073173^2 */
    check(&s, 110, 0.0);             /* the end: (1 + cos(pi)) / 2 = 0 (to ~1e-17) */
    s.warmup_steps = 0;
    check(&s, 0, 1e-3);
}

static void test_names(void **state) {
    (void)state;
    assert_int_equal(lgpu_lr_kind_parse("constant"), LGPU_LR_CONSTANT);
    assert_int_equal(lgpu_lr_kind_parse("linear"), LGPU_LR_LINEAR);
    assert_int_equal(lgpu_lr_kind_parse("cosine"), LGPU_LR_COSINE);
    assert_int_equal(lgpu_lr_kind_parse("Cosine"), -1);
    assert_int_equal(lgpu_lr_kind_parse(NULL), -1);
    assert_string_equal(lgpu_lr_kind_name(LGPU_LR_LINEAR), "linear");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
