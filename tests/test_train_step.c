/* One whole training step of a real LLaMA (stories260K: 5 layers, GQA 8/4,
 * head_dim 8) with a LoRA adapter on all seven projections, against an
 * independent reference: tests/torch/lora_ref.py builds the same model in
 * PyTorch (Hugging Face layout, rotate_half RoPE, PEFT's LoRA) from the same
 * GGUF and the same PEFT adapter file our writer produced, and computes the
 * loss and every LoRA gradient with autograd in float64. This checks the
 * training graph (forward, chunked loss, every backward op in place) and the
 * PEFT writer's q/k row order at once. With LoRA dropout, the reference is
 * given our masks (the twin of the dropout op, from the seeds the graph
 * derives) and applies them as PEFT's lora_dropout does. Also: the loss
 * against central finite differences of our own forward (without dropout:
 * with random masks a difference quotient means nothing), and bit-identical
 * reruns. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "format/safetensors_write.h"
#include "lgpu/lora.h"
#include "ref/ref_ops.h"
#include "train/graph.h"
#include "test_util.h"

#define B 2
#define T 13
#define M (B * T)
#define RANK 4
#define DROPOUT 0.3f

/* The micro-batch the dropout cases compute: some step of some run. */
static const lgpu_train_mb_key KEY = {.seed = 1234, .step = 3, .micro = 1};

typedef struct fixture {
    lgpu_model *m;
    lgpu_lora *a;
    lgpu_train_graph *g;
    int32_t tokens[M], targets[M];
    uint32_t counted;
    char dir[512];
} fixture;

/* Random A and B (B nonzero, so dA is too), tokens of the vocabulary, and
 * targets = next token except a masked prompt and each row's last token. */
static void setup_fixture(fixture *f, const char *device, uint32_t vocab_chunk, float dropout) {
    memset(f, 0, sizeof *f);
    lgpu_model_params mp = {.path = tu_model_path("stories260K.gguf"), .device = device};
    TU_OK(lgpu_model_create(&mp, &f->m));
    lgpu_lora_params lp = {.rank = RANK, .alpha = 8, .dropout = dropout, .seed = 7};
    TU_OK(lgpu_lora_create(f->m, &lp, &f->a));
    tu_rng r;
    tu_rng_seed(&r, 1234);
    for (uint32_t l = 0; l < lgpu_model_hparams(f->m)->n_layers; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
            uint32_t out, in;
            TU_OK(lgpu_lora_target_shape(f->a, (lgpu_lora_target)t, &out, &in));
            size_t n = (size_t)RANK * (out > in ? out : in);
            float *v = malloc(n * sizeof *v);
            tu_fill_uniform(&r, v, n, -0.2f, 0.2f);
            TU_OK(lgpu_lora_set(f->a, l, (lgpu_lora_target)t, false, v));
            tu_fill_uniform(&r, v, n, -0.2f, 0.2f);
            TU_OK(lgpu_lora_set(f->a, l, (lgpu_lora_target)t, true, v));
            free(v);
        }
    for (int i = 0; i < M; i++) f->tokens[i] = (int32_t)(tu_rng_u32(&r) % 512);
    f->counted = 0;
    for (int i = 0; i < M; i++) {
        int t = i % T;
        f->targets[i] = t >= 3 + i / T && t + 1 < T ? f->tokens[i + 1] : -1;
        f->counted += f->targets[i] >= 0;
    }
    TU_OK(lgpu_train_graph_create(f->a, B, T, vocab_chunk, &f->g));
}

static void teardown_fixture(fixture *f) {
    lgpu_train_graph_destroy(f->g);
    lgpu_lora_destroy(f->a);
    lgpu_model_destroy(f->m);
    if (f->dir[0]) tu_tmpdir_remove(f->dir);
}

/* Our gradient of one matrix, F32 (rows, cols) in the adapter's layout. */
static void our_grad(fixture *f, uint32_t l, lgpu_lora_target t, bool b, float *dst) {
    const lgpu_lora_mat *mt = &f->a->layer[l].mat[t];
    size_t n = (size_t)RANK * (b ? mt->out : mt->in);
    TU_OK(lgpu_buf_read(lgpu_train_graph_grad(f->g, l), b ? mt->off_b : mt->off_a, dst, n * sizeof *dst));
}

/* HF row order of q/k B matrices (an independent copy of the permutation:
 * GGUF row h*hd + 2i + a is HF row h*hd + a*hd/2 + i). */
static void to_hf_rows(const float *src, float *dst, uint32_t rows, uint32_t cols, uint32_t heads) {
    uint32_t hd = rows / heads;
    for (uint32_t r = 0; r < rows; r++) {
        uint32_t h = r / hd, j = r % hd, i = j / 2, a = j % 2;
        memcpy(dst + ((size_t)h * hd + a * (hd / 2) + i) * cols, src + (size_t)r * cols, cols * sizeof *dst);
    }
}

static bool have_torch(void) {
    return access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import torch' 2>/dev/null") == 0;
}

/* The dropout mask of layer l's target t for micro-batch KEY, (M, in): what
 * the graph's dropout op multiplies (0 or 1 / (1 - p)), from its twin run
 * on ones with the seed the graph derives. */
static float *dropout_mask(fixture *f, uint32_t l, lgpu_lora_target t) {
    uint32_t n = M * f->a->layer[l].mat[t].in;
    float *one = malloc(n * sizeof *one), *mask = malloc(n * sizeof *mask);
    for (uint32_t i = 0; i < n; i++) one[i] = 1.0f;
    lgpu_dropout_params p = lgpu_dropout_params_make(n, f->a->dropout, lgpu_train_dropout_seed(&KEY, l, t), false);
    lgpu_ref_dropout(&p, one, mask, 1);
    free(one);
    return mask;
}

/* lora_ref.py on the fixture's batch; with dropout, our masks go in the
 * inputs as dropout.layers.N.MODULE (B, T, in). */
static void run_reference(fixture *f, const char *out_path) {
    char in_path[600], cmd[4096];
    snprintf(in_path, sizeof in_path, "%s/inputs.safetensors", f->dir);
    int32_t labels[M];
    for (int i = 0; i < M; i++) labels[i] = f->targets[i] >= 0 ? f->targets[i] : -100;
    lgpu_st_writer *w;
    TU_OK(lgpu_st_writer_create(&w));
    int64_t shape[2] = {B, T};
    TU_OK(lgpu_st_writer_add(w, "tokens", "I32", 2, shape, f->tokens, sizeof f->tokens));
    TU_OK(lgpu_st_writer_add(w, "labels", "I32", 2, shape, labels, sizeof labels));
    float *masks[64][LGPU_LORA_N_TARGETS] = {{0}};
    uint32_t L = lgpu_model_hparams(f->m)->n_layers;
    assert_true(L <= 64);
    for (uint32_t l = 0; f->a->dropout > 0 && l < L; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
            uint32_t in = f->a->layer[l].mat[t].in;
            char name[96];
            snprintf(name, sizeof name, "dropout.layers.%u.%s", l, lgpu_lora_target_peft_name((lgpu_lora_target)t));
            masks[l][t] = dropout_mask(f, l, (lgpu_lora_target)t);
            int64_t mshape[3] = {B, T, in};
            TU_OK(lgpu_st_writer_add(w, name, "F32", 3, mshape, masks[l][t], (size_t)M * in * sizeof(float)));
        }
    TU_OK(lgpu_st_writer_write(w, in_path));
    lgpu_st_writer_destroy(w);
    for (uint32_t l = 0; l < L; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) free(masks[l][t]);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --model %s --adapter %s/adapter --inputs %s --out %s",
             tu_source_path("tests/torch/lora_ref.py"), tu_model_path("stories260K.gguf"), f->dir, in_path, out_path);
    print_message("%s\n", cmd);
    assert_int_equal(system(cmd), 0);
}

static double f64_at(const lgpu_st_tensor *t, size_t i) {
    double v;
    memcpy(&v, (const uint8_t *)t->data + 8 * i, 8);
    return v;
}

static void step_vs_torch(const char *device, uint32_t vocab_chunk, float dropout) {
    if (!have_torch()) {
        print_message("SKIP: /usr/bin/python3 cannot import torch (Debian package python3-torch)\n");
        skip();
    }
    fixture f;
    setup_fixture(&f, device, vocab_chunk, dropout);
    assert_non_null(tu_tmpdir_create("train-step", f.dir, sizeof f.dir));
    double loss_sum;
    uint32_t counted;
    TU_OK(lgpu_train_graph_run(f.g, f.tokens, f.targets, true, 1.0f / (float)f.counted, dropout > 0 ? &KEY : NULL,
                               &loss_sum, &counted));
    assert_int_equal(counted, f.counted);
    double loss = loss_sum / counted;

    char adir[600], out_path[600];
    snprintf(adir, sizeof adir, "%s/adapter", f.dir);
    TU_OK(lgpu_lora_save(f.a, adir, "stories260K"));
    snprintf(out_path, sizeof out_path, "%s/out.safetensors", f.dir);
    run_reference(&f, out_path);
    lgpu_safetensors *ref;
    TU_OK(lgpu_safetensors_create(out_path, &ref));
    const lgpu_st_tensor *tl = lgpu_safetensors_find(ref, "loss");
    assert_non_null(tl);
    double ref_loss = f64_at(tl, 0);
    print_message("%s%s: loss %.9f, torch float64 %.9f (rel %.2e)\n", lgpu_dev_name(lgpu_model_dev(f.m)),
                  dropout > 0 ? " with LoRA dropout" : "", loss, ref_loss, fabs(loss - ref_loss) / ref_loss);
    /* F32 forward vs F64: a few ulps per op over 5 layers */
    assert_true(fabs(loss - ref_loss) <= 1e-5 * ref_loss);

    /* Every gradient: relative to the largest entry of its matrix. */
    const lgpu_hparams *hp = lgpu_model_hparams(f.m);
    double worst = 0, worst_nmse = 0;
    char worst_name[160] = "";
    int n_checked = 0;
    for (uint32_t l = 0; l < hp->n_layers; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++)
            for (int b = 0; b < 2; b++) {
                const lgpu_lora_mat *mt = &f.a->layer[l].mat[t];
                uint32_t rows = b ? mt->out : RANK, cols = b ? RANK : mt->in;
                size_t n = (size_t)rows * cols;
                float *g = malloc(n * sizeof *g), *gh = malloc(n * sizeof *gh);
                our_grad(&f, l, (lgpu_lora_target)t, b, g);
                uint32_t heads = !b ? 0 : t == LGPU_LORA_Q ? hp->n_heads : t == LGPU_LORA_K ? hp->n_kv_heads : 0;
                if (heads) to_hf_rows(g, gh, rows, cols, heads);
                else memcpy(gh, g, n * sizeof *g);
                char name[160];
                snprintf(name, sizeof name, "base_model.model.model.layers.%u.%s.%s.lora_%c.weight.grad", l,
                         t <= LGPU_LORA_O ? "self_attn" : "mlp", lgpu_lora_target_peft_name((lgpu_lora_target)t),
                         b ? 'B' : 'A');
                const lgpu_st_tensor *rt = lgpu_safetensors_find(ref, name);
                assert_non_null(rt);
                assert_int_equal(rt->nbytes, n * 8);
                double maxref = 0, maxerr = 0, se = 0, sr = 0;
                for (size_t i = 0; i < n; i++) {
                    double rv = f64_at(rt, i), e = fabs(gh[i] - rv);
                    maxref = fmax(maxref, fabs(rv));
                    maxerr = fmax(maxerr, e);
                    se += e * e;
                    sr += rv * rv;
                }
                double rel = maxerr / (maxref > 0 ? maxref : 1), nmse = sr > 0 ? se / sr : se;
                if (rel > worst) {
                    worst = rel;
                    snprintf(worst_name, sizeof worst_name, "%s", name);
                }
                worst_nmse = fmax(worst_nmse, nmse);
                assert_true(maxref > 0); /* B != 0: every gradient is live */
                if (!(rel <= 2e-4 && nmse <= 1e-8)) {
                    print_error("%s: worst error %.3g of max |g| %.3g (rel %.3g), NMSE %.3g\n", name, maxerr, maxref,
                                rel, nmse);
                    fail();
                }
                n_checked++;
                free(g);
                free(gh);
            }
    print_message("%d gradients: worst relative error %.2e (%s), worst NMSE %.2e (tolerance 2e-4, 1e-8)\n",
                  n_checked, worst, worst_name, worst_nmse);
    lgpu_safetensors_destroy(ref);
    teardown_fixture(&f);
}

static void test_step_vs_torch_default(void **state) { step_vs_torch(NULL, 0, 0); }
static void test_step_vs_torch_cpu(void **state) { step_vs_torch("cpu", 0, 0); }
/* the vocabulary in two chunks of 256: the chunked loss and its backward */
static void test_step_vs_torch_chunked(void **state) { step_vs_torch(NULL, 256, 0); }
/* LoRA dropout p = 0.3 on all seven projections, our masks given to torch */
static void test_step_vs_torch_dropout(void **state) { step_vs_torch(NULL, 0, DROPOUT); }
static void test_step_vs_torch_dropout_cpu(void **state) { step_vs_torch("cpu", 0, DROPOUT); }

/* Dropout's bookkeeping: the same key gives the same bits, another step
 * other masks; a run without backward (evaluation) drops nothing, so its
 * loss is the dropout-free graph's bit for bit; a key is required. */
static void test_dropout_runs(void **state) {
    fixture f, f0;
    setup_fixture(&f, NULL, 0, DROPOUT);
    setup_fixture(&f0, NULL, 0, 0);
    float scale = 1.0f / (float)f.counted;
    const lgpu_lora_mat *mt = &f.a->layer[1].mat[LGPU_LORA_UP];
    size_t na = (size_t)RANK * mt->in;
    float *g1 = malloc(na * 4), *g2 = malloc(na * 4);
    double s1, s2, s3, e, e0;
    uint32_t c;
    TU_OK(lgpu_train_graph_run(f.g, f.tokens, f.targets, true, scale, &KEY, &s1, &c));
    our_grad(&f, 1, LGPU_LORA_UP, false, g1);
    TU_OK(lgpu_train_graph_zero_grad(f.g));
    TU_OK(lgpu_train_graph_run(f.g, f.tokens, f.targets, true, scale, &KEY, &s2, &c));
    our_grad(&f, 1, LGPU_LORA_UP, false, g2);
    assert_true(s1 == s2);
    assert_memory_equal(g1, g2, na * 4);
    lgpu_train_mb_key next = KEY;
    next.step++;
    TU_OK(lgpu_train_graph_zero_grad(f.g));
    TU_OK(lgpu_train_graph_run(f.g, f.tokens, f.targets, true, scale, &next, &s3, &c));
    our_grad(&f, 1, LGPU_LORA_UP, false, g2);
    assert_true(s3 != s1);
    assert_true(memcmp(g1, g2, na * 4) != 0);
    TU_OK(lgpu_train_graph_run(f.g, f.tokens, f.targets, false, scale, NULL, &e, &c));
    TU_OK(lgpu_train_graph_run(f0.g, f0.tokens, f0.targets, false, scale, NULL, &e0, &c));
    print_message("loss sums: training %.6f (step %llu), %.6f (step %llu); evaluation %.6f, without dropout %.6f\n",
                  s1, (unsigned long long)KEY.step, s3, (unsigned long long)next.step, e, e0);
    assert_true(e == e0);
    assert_true(e != s1);
    assert_int_equal(lgpu_train_graph_run(f.g, f.tokens, f.targets, true, scale, NULL, &s1, &c), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "dropout"));
    /* every seed of the step differs: 7 targets x 5 layers x 2 micro-batches */
    uint64_t seeds[2 * 5 * LGPU_LORA_N_TARGETS];
    int n = 0;
    for (uint32_t mb = 0; mb < 2; mb++)
        for (uint32_t l = 0; l < 5; l++)
            for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
                lgpu_train_mb_key k = {KEY.seed, KEY.step, mb};
                seeds[n] = lgpu_train_dropout_seed(&k, l, (lgpu_lora_target)t);
                for (int j = 0; j < n; j++) assert_true(seeds[j] != seeds[n]);
                n++;
            }
    free(g1);
    free(g2);
    teardown_fixture(&f);
    teardown_fixture(&f0);
}

/* Central differences of our own loss for a few adapter entries, and
 * bit-identical gradients on a rerun. */
static void test_step_finite_differences(void **state) {
    fixture f;
    setup_fixture(&f, NULL, 0, 0);
    double s0;
    uint32_t c;
    float scale = 1.0f / (float)f.counted;
    TU_OK(lgpu_train_graph_run(f.g, f.tokens, f.targets, true, scale, NULL, &s0, &c));
    const lgpu_lora_mat *mt = &f.a->layer[2].mat[LGPU_LORA_V];
    size_t na = (size_t)RANK * mt->in, nb = (size_t)RANK * mt->out;
    float *ga = malloc(na * 4), *gb = malloc(nb * 4), *ga2 = malloc(na * 4), *gb2 = malloc(nb * 4);
    our_grad(&f, 2, LGPU_LORA_V, false, ga);
    our_grad(&f, 2, LGPU_LORA_V, true, gb);
    /* rerun: the same bits */
    TU_OK(lgpu_train_graph_zero_grad(f.g));
    double s1;
    TU_OK(lgpu_train_graph_run(f.g, f.tokens, f.targets, true, scale, NULL, &s1, &c));
    our_grad(&f, 2, LGPU_LORA_V, false, ga2);
    our_grad(&f, 2, LGPU_LORA_V, true, gb2);
    assert_true(s0 == s1);
    assert_memory_equal(ga, ga2, na * 4);
    assert_memory_equal(gb, gb2, nb * 4);
    /* central differences of the mean loss, in float32: h = 1e-2 keeps the
     * rounding error (~1e-6 of the loss / h) well under the tolerance */
    float *va = malloc(na * 4), *vb = malloc(nb * 4);
    TU_OK(lgpu_lora_get(f.a, 2, LGPU_LORA_V, false, va));
    TU_OK(lgpu_lora_get(f.a, 2, LGPU_LORA_V, true, vb));
    const float h = 1e-2f;
    for (int k = 0; k < 6; k++) {
        bool is_b = k % 2;
        float *v = is_b ? vb : va, *gr = is_b ? gb : ga;
        size_t i = (size_t)(k * 37 + 5) % (is_b ? nb : na);
        float old = v[i];
        double lp, lm;
        v[i] = old + h;
        TU_OK(lgpu_lora_set(f.a, 2, LGPU_LORA_V, is_b, v));
        TU_OK(lgpu_train_graph_run(f.g, f.tokens, f.targets, false, scale, NULL, &lp, &c));
        v[i] = old - h;
        TU_OK(lgpu_lora_set(f.a, 2, LGPU_LORA_V, is_b, v));
        TU_OK(lgpu_train_graph_run(f.g, f.tokens, f.targets, false, scale, NULL, &lm, &c));
        v[i] = old;
        TU_OK(lgpu_lora_set(f.a, 2, LGPU_LORA_V, is_b, v));
        double fd = (lp - lm) / c / (2 * h);
        print_message("layer 2 v_proj lora_%c[%zu]: backward %+.6e, central difference %+.6e\n", is_b ? 'B' : 'A', i,
                      gr[i], fd);
        assert_true(fabs(fd - gr[i]) <= 2e-3 * fabs(fd) + 2e-4);
    }
    free(va);
    free(vb);
    free(ga);
    free(gb);
    free(ga2);
    free(gb2);
    teardown_fixture(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_vs_torch_default),
        cmocka_unit_test(test_step_vs_torch_cpu),
        cmocka_unit_test(test_step_vs_torch_chunked),
        cmocka_unit_test(test_step_vs_torch_dropout),
        cmocka_unit_test(test_step_vs_torch_dropout_cpu),
        cmocka_unit_test(test_dropout_runs),
        cmocka_unit_test(test_step_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
