/* The trainer end to end on stories260K and datasets/stories-instruct:
 * loss falls; 10 steps + resume + 10 steps give the same adapter bits as 20
 * steps; a kill -9 in the middle of a save leaves the previous checkpoint
 * whole and the run resumable to the same bits; the same with LoRA dropout,
 * whose masks are functions of (seed, step, micro-batch); gradient
 * accumulation equals a bigger micro-batch; bad data and a full device are
 * clear errors. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lgpu/train.h"
#include "test_util.h"

static lgpu_model *model(void) {
    lgpu_model *m = NULL;
    lgpu_model_params mp = {.path = tu_model_path("stories260K.gguf")};
    TU_OK(lgpu_model_create(&mp, &m));
    return m;
}

/* Small and quick: packed rows of 64 tokens, 2 per micro-batch. */
static lgpu_train_params small_params(const char *out) {
    lgpu_train_params p = lgpu_train_params_default();
    p.train_file = tu_source_path("datasets/stories-instruct/train.jsonl");
    p.val_file = tu_source_path("datasets/stories-instruct/val.jsonl");
    p.output_dir = out;
    p.seq_len = 64;
    p.micro_batch = 2;
    p.pack = true;
    p.max_steps = 20;
    p.lr = 2e-3f;
    p.lora.rank = 4;
    p.lora.alpha = 8;
    p.save_every = 10;
    p.eval_every = 0;
    return p;
}

/* Every value of the adapter, in order. */
static float *adapter_values(lgpu_lora *a, size_t *n_out) {
    lgpu_model *m = lgpu_lora_model(a);
    size_t n = (size_t)lgpu_lora_n_params(a), k = 0;
    float *v = malloc(n * sizeof *v);
    for (uint32_t l = 0; l < lgpu_model_hparams(m)->n_layers; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
            if (!(lgpu_lora_targets(a) & (1u << t))) continue;
            uint32_t out, in;
            TU_OK(lgpu_lora_target_shape(a, (lgpu_lora_target)t, &out, &in));
            TU_OK(lgpu_lora_get(a, l, (lgpu_lora_target)t, false, v + k));
            k += (size_t)lgpu_lora_rank(a) * in;
            TU_OK(lgpu_lora_get(a, l, (lgpu_lora_target)t, true, v + k));
            k += (size_t)lgpu_lora_rank(a) * out;
        }
    assert_int_equal(k, n);
    *n_out = n;
    return v;
}

typedef struct run_log {
    double first_loss, last_loss, first_val, last_val;
    int n_steps, n_saves;
    uint64_t stop_at; /* >0: ask the trainer to stop after this step */
} run_log;

static int on_progress(void *ud, const lgpu_train_progress *p) {
    run_log *r = ud;
    if (p->event == LGPU_TRAIN_STEP) {
        if (!r->n_steps++) r->first_loss = p->loss;
        r->last_loss = p->loss;
        assert_true(p->tokens_per_s > 0);
        assert_true(p->lr > 0 || p->step == 1);
    } else if (p->event == LGPU_TRAIN_EVAL) {
        if (isnan(r->first_val)) r->first_val = p->val_loss;
        r->last_val = p->val_loss;
    } else if (p->event == LGPU_TRAIN_SAVE) {
        r->n_saves++;
        assert_non_null(p->checkpoint);
    }
    return r->stop_at && p->event == LGPU_TRAIN_STEP && p->step == r->stop_at;
}

/* Trains `p` (resuming from `resume` when given) and returns the adapter's values. */
static float *train(lgpu_model *m, const lgpu_train_params *p, const char *resume, run_log *log, size_t *n) {
    lgpu_trainer *t;
    TU_OK(lgpu_trainer_create(m, p, &t));
    if (resume) TU_OK(lgpu_trainer_resume(t, resume));
    TU_OK(lgpu_trainer_run(t, on_progress, log));
    float *v = adapter_values(lgpu_trainer_lora(t), n);
    lgpu_trainer_destroy(t);
    return v;
}

static void test_loss_falls(void **state) {
    lgpu_model *m = model();
    char dir[512];
    assert_non_null(tu_tmpdir_create("train-loss", dir, sizeof dir));
    lgpu_train_params p = small_params(dir);
    p.max_steps = 30;
    p.eval_every = 15;
    p.save_every = 0;
    run_log log = {.first_val = NAN};
    size_t n;
    float *v = train(m, &p, NULL, &log, &n);
    print_message("loss %.3f -> %.3f over %d steps; validation %.3f -> %.3f\n", log.first_loss, log.last_loss,
                  log.n_steps, log.first_val, log.last_val);
    assert_int_equal(log.n_steps, 30);
    assert_true(log.last_loss < log.first_loss - 0.3);
    assert_true(log.last_val < log.first_val);
    /* the final adapter in both formats, readable */
    char path[700];
    snprintf(path, sizeof path, "%s/adapter/adapter_config.json", dir);
    assert_int_equal(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s/adapter.gguf", dir);
    lgpu_lora *a;
    lgpu_lora_params lp = {.path = path};
    TU_OK(lgpu_lora_create(m, &lp, &a));
    size_t n2;
    float *v2 = adapter_values(a, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(v, v2, n * sizeof *v);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    assert_int_equal(access(path, R_OK), 0);
    free(v);
    free(v2);
    lgpu_lora_destroy(a);
    lgpu_model_destroy(m);
    tu_tmpdir_remove(dir);
}

/* The adapter of a run killed in the middle of its last save and resumed
 * (test_kill_during_save), checked against the uninterrupted run by
 * test_resume_exact, which computes that one anyway. */
static float *killed_values;
static size_t n_killed;
/* test_resume_exact's 20 steps without dropout, which test_resume_dropout's
 * must differ from (else its masks would drop nothing) */
static float *plain_values;
static size_t n_plain;

/* A child dies (SIGKILL) half-way through writing checkpoint-20; the parent
 * finds checkpoint-10 whole and a .tmp folder, and resumes from it. */
static void test_kill_during_save(void **state) {
    char dir[512];
    assert_non_null(tu_tmpdir_create("train-killed", dir, sizeof dir));
    lgpu_train_params p = small_params(dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("LGPU_TRAIN_TEST_CRASH_IN_SAVE", "20", 1);
        lgpu_model *m = NULL;
        lgpu_model_params mp = {.path = tu_model_path("stories260K.gguf")};
        lgpu_trainer *t = NULL;
        if (lgpu_model_create(&mp, &m) || lgpu_trainer_create(m, &p, &t)) _exit(3);
        lgpu_trainer_run(t, NULL, NULL);
        _exit(4); /* not reached: the save at step 20 kills the process */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    char path[700];
    snprintf(path, sizeof path, "%s/checkpoint-10/trainer_state.json", dir);
    assert_int_equal(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s/checkpoint-20", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/checkpoint-20.tmp", dir);
    assert_int_equal(access(path, F_OK), 0);
    lgpu_model *m = model();
    run_log log = {.first_val = NAN};
    killed_values = train(m, &p, dir, &log, &n_killed);
    assert_int_equal(log.n_steps, 10);
    assert_int_not_equal(access(path, F_OK), 0); /* the next save cleaned it */
    lgpu_model_destroy(m);
    tu_tmpdir_remove(dir);
}

/* 20 steps == 10 steps, stop, resume, 10 more == killed in the last save and
 * resumed: bit for bit. */
static void test_resume_exact(void **state) {
    lgpu_model *m = model();
    char d1[512], d2[512];
    assert_non_null(tu_tmpdir_create("train-whole", d1, sizeof d1));
    assert_non_null(tu_tmpdir_create("train-resumed", d2, sizeof d2));
    lgpu_train_params p = small_params(d1);
    run_log whole = {.first_val = NAN};
    size_t n, n2;
    float *ref = train(m, &p, NULL, &whole, &n);
    p.output_dir = d2;
    run_log first = {.first_val = NAN, .stop_at = 10};
    float *half = train(m, &p, NULL, &first, &n2);
    assert_int_equal(first.n_steps, 10);
    free(half);
    run_log second = {.first_val = NAN};
    float *resumed = train(m, &p, d2, &second, &n2);
    assert_int_equal(second.n_steps, 10);
    assert_int_equal(n, n2);
    assert_memory_equal(ref, resumed, n * sizeof *ref);
    print_message("20 steps and 10 + resume + 10: %zu adapter values bit-identical\n", n);
    assert_non_null(killed_values);
    assert_int_equal(n, n_killed);
    assert_memory_equal(ref, killed_values, n * sizeof *ref);
    print_message("killed in the save of step 20, resumed from checkpoint-10: the same %zu values\n", n);
    plain_values = ref;
    n_plain = n;
    free(resumed);
    free(killed_values);
    killed_values = NULL;
    lgpu_model_destroy(m);
    tu_tmpdir_remove(d1);
    tu_tmpdir_remove(d2);
}

/* With LoRA dropout: 20 steps == 10 steps, stop, resume, 10 more, bit for
 * bit; the adapter differs from the dropout-free run's; a checkpoint does
 * not resume under another dropout. (That each micro-batch of a step gets
 * its own masks is test_train_step's: a second micro-batch per step would
 * double this test's time on lavapipe.) */
static void test_resume_dropout(void **state) {
    lgpu_model *m = model();
    char d1[512], d2[512];
    assert_non_null(tu_tmpdir_create("train-drop-whole", d1, sizeof d1));
    assert_non_null(tu_tmpdir_create("train-drop-resumed", d2, sizeof d2));
    lgpu_train_params p = small_params(d1);
    p.lora.dropout = 0.1f;
    run_log whole = {.first_val = NAN};
    size_t n, n2;
    float *ref = train(m, &p, NULL, &whole, &n);
    p.output_dir = d2;
    run_log first = {.first_val = NAN, .stop_at = 10};
    free(train(m, &p, NULL, &first, &n2));
    assert_int_equal(first.n_steps, 10);
    run_log second = {.first_val = NAN};
    float *resumed = train(m, &p, d2, &second, &n2);
    assert_int_equal(second.n_steps, 10);
    assert_int_equal(n, n2);
    assert_memory_equal(ref, resumed, n * sizeof *ref);
    print_message("dropout 0.1: 20 steps and 10 + resume + 10: %zu adapter values bit-identical (loss %.3f -> %.3f)\n",
                  n, whole.first_loss, whole.last_loss);
    assert_non_null(plain_values);
    assert_int_equal(n, n_plain);
    assert_true(memcmp(ref, plain_values, n * sizeof *ref) != 0);
    /* another dropout is another run: refused, naming the field */
    p.lora.dropout = 0.2f;
    lgpu_trainer *t;
    TU_OK(lgpu_trainer_create(m, &p, &t));
    assert_int_equal(lgpu_trainer_resume(t, d2), LGPU_EINVAL);
    print_message("%s\n", lgpu_last_error());
    assert_non_null(strstr(lgpu_last_error(), "lora_dropout"));
    lgpu_trainer_destroy(t);
    free(ref);
    free(resumed);
    free(plain_values);
    plain_values = NULL;
    lgpu_model_destroy(m);
    tu_tmpdir_remove(d1);
    tu_tmpdir_remove(d2);
}

/* micro-batch 1 x 4 accumulated == micro-batch 4, within float rounding
 * (the sums run in another order, so not bit for bit). */
static void test_grad_accum(void **state) {
    lgpu_model *m = model();
    char d1[512], d2[512];
    assert_non_null(tu_tmpdir_create("train-accum", d1, sizeof d1));
    assert_non_null(tu_tmpdir_create("train-big", d2, sizeof d2));
    lgpu_train_params p = small_params(d1);
    p.max_steps = 4;
    p.save_every = 0;
    p.micro_batch = 1;
    p.grad_accum = 4;
    run_log l1 = {.first_val = NAN}, l2 = {.first_val = NAN};
    size_t n, n2;
    float *acc = train(m, &p, NULL, &l1, &n);
    p.output_dir = d2;
    p.micro_batch = 4;
    p.grad_accum = 1;
    float *big = train(m, &p, NULL, &l2, &n2);
    assert_int_equal(n, n2);
    double maxd = 0, maxv = 0;
    for (size_t i = 0; i < n; i++) {
        maxd = fmax(maxd, fabs(acc[i] - big[i]));
        maxv = fmax(maxv, fabs(big[i]));
    }
    print_message("grad_accum 4 x micro-batch 1 vs micro-batch 4: max |diff| %.3g of max |value| %.3g; loss %.6f vs "
                  "%.6f\n", maxd, maxv, l1.last_loss, l2.last_loss);
    assert_true(maxd <= 1e-4 * maxv);
    assert_true(fabs(l1.first_loss - l2.first_loss) <= 1e-5 * l2.first_loss);
    free(acc);
    free(big);
    lgpu_model_destroy(m);
    tu_tmpdir_remove(d1);
    tu_tmpdir_remove(d2);
}

static void test_bad_data(void **state) {
    lgpu_model *m = model();
    char dir[512];
    assert_non_null(tu_tmpdir_create("train-bad", dir, sizeof dir));
    lgpu_train_params p = small_params(dir);
    p.train_file = tu_source_path("tests/data/jsonl/bad_lines.jsonl");
    p.val_file = NULL;
    lgpu_trainer *t = NULL;
    assert_int_equal(lgpu_trainer_create(m, &p, &t), LGPU_EFORMAT);
    assert_null(t);
    print_message("%s\n", lgpu_last_error());
    assert_non_null(strstr(lgpu_last_error(), "bad_lines.jsonl:2"));
    p.skip_invalid = true;
    TU_OK(lgpu_trainer_create(m, &p, &t));
    lgpu_train_data_info info;
    lgpu_trainer_data_info(t, &info);
    assert_true(info.n_skipped > 0);
    /* the data sets as read: the reasons, for the program to print */
    const lgpu_dataset *ds = lgpu_trainer_dataset(t, false);
    assert_non_null(ds);
    assert_null(lgpu_trainer_dataset(t, true)); /* no val_file */
    assert_int_equal(lgpu_dataset_n_skipped(ds), info.n_skipped);
    assert_non_null(strstr(lgpu_dataset_skip_reason(ds, 0), "bad_lines.jsonl:2"));
    lgpu_trainer_destroy(t);
    lgpu_model_destroy(m);
    tu_tmpdir_remove(dir);
}

typedef struct event_log {
    int events[16][2]; /* (event, step) */
    int n;
} event_log;

static int on_event(void *ud, const lgpu_train_progress *p) {
    event_log *e = ud;
    if (e->n < 16) e->events[e->n][0] = p->event, e->events[e->n][1] = (int)p->step, e->n++;
    return 0;
}

/* progress_every_step: a TICK for each step that is not logged; the data
 * options reach the dataset (a forced format, a prompt template). */
static void test_ticks_and_data_options(void **state) {
    lgpu_model *m = model();
    char dir[512];
    assert_non_null(tu_tmpdir_create("train-ticks", dir, sizeof dir));
    lgpu_train_params p = small_params(dir);
    p.val_file = NULL;
    p.max_steps = 3;
    p.log_every = 2;
    p.save_every = 0;
    p.progress_every_step = true;
    p.threads = 1;
    lgpu_trainer *t;
    TU_OK(lgpu_trainer_create(m, &p, &t));
    assert_non_null(lgpu_trainer_dataset(t, false));
    assert_int_equal(lgpu_dataset_format_of(lgpu_trainer_dataset(t, false)), LGPU_DATASET_ALPACA);
    event_log e = {0};
    TU_OK(lgpu_trainer_run(t, on_event, &e));
    lgpu_trainer_destroy(t);
    const int want[][2] = {{LGPU_TRAIN_TICK, 1}, {LGPU_TRAIN_STEP, 2}, {LGPU_TRAIN_STEP, 3}, {LGPU_TRAIN_SAVE, 3}};
    assert_int_equal(e.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(e.events[i][0], want[i][0]);
        assert_int_equal(e.events[i][1], want[i][1]);
    }
    /* alpaca lines read as prompt/completion: every line is bad */
    p.format = LGPU_DATASET_PROMPT_COMPLETION;
    assert_int_equal(lgpu_trainer_create(m, &p, &t), LGPU_EFORMAT);
    print_message("%s\n", lgpu_last_error());
    p.format = LGPU_DATASET_AUTO;
    p.prompt_template = "Q: {instruction} {nosuch}\nA: ";
    assert_int_equal(lgpu_trainer_create(m, &p, &t), LGPU_EINVAL);
    print_message("%s\n", lgpu_last_error());
    p.prompt_template = "Q: {instruction} {input}\nA: ";
    p.prompt_template_no_input = "Q: {instruction}\nA: ";
    TU_OK(lgpu_trainer_create(m, &p, &t));
    lgpu_train_data_info info;
    lgpu_trainer_data_info(t, &info);
    lgpu_trainer_destroy(t);
    lgpu_model_destroy(m);
    tu_tmpdir_remove(dir);
}

/* A device that cannot hold the step: a clear error naming what to lower. */
static void test_out_of_memory(void **state) {
    setenv("LGPU_DEVICE_MEMORY_LIMIT", "8M", 1);
    lgpu_model *m = model();
    unsetenv("LGPU_DEVICE_MEMORY_LIMIT");
    char dir[512];
    assert_non_null(tu_tmpdir_create("train-oom", dir, sizeof dir));
    lgpu_train_params p = small_params(dir);
    p.seq_len = 512;
    p.micro_batch = 16;
    lgpu_trainer *t = NULL;
    assert_int_equal(lgpu_trainer_create(m, &p, &t), LGPU_EDEVMEM);
    print_message("%s\n", lgpu_last_error());
    assert_non_null(strstr(lgpu_last_error(), "--micro-batch"));
    lgpu_model_destroy(m);
    tu_tmpdir_remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        /* first: it forks, and a child must not inherit thread pools */
        cmocka_unit_test(test_kill_during_save),
        cmocka_unit_test(test_loss_falls),    cmocka_unit_test(test_resume_exact),
        cmocka_unit_test(test_resume_dropout),
        cmocka_unit_test(test_grad_accum),
        cmocka_unit_test(test_bad_data),      cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_ticks_and_data_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
