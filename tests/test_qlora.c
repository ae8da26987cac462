/* QLoRA on stories260K: the seven projections of every layer quantized to
 * NF4 at load (lgpu_model_params.quantize_nf4; ffn_down's K = 172 makes
 * blocks run across rows), the rest as in the file.
 *   - the load: which tensors became NF4, bytes per weight;
 *   - the dequantized model: the NF4 values read back from the device and
 *     dequantized by the quant module, written as an F32 GGUF; its logits
 *     (an ordinary F32 model) equal the NF4 model's within float rounding;
 *   - one training step against tests/torch/lora_ref.py on that GGUF: the
 *     loss and all 70 LoRA gradients in float64 autograd (the training
 *     graph unchanged, through NF4 matmul and matmul_backward), on the
 *     default device and on the C path with compute type BF16;
 *   - trainer steps on an NF4 base: the loss falls (the device under test,
 *     8 steps; the C path, 30, against LoRA on the F32 base: the gap is
 *     logged), and the saved adapter carries the BitsAndBytesConfig
 *     (adapter_config.json and quantization_config.json);
 *   - a Q4_0 base under quantize_nf4 stays Q4_0. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "format/safetensors_write.h"
#include "lgpu/convert.h"
#include "lgpu/gguf.h"
#include "lgpu/lora.h"
#include "lgpu/train.h"
#include "model/llama_internal.h"
#include "quant/nf4.h"
#include "train/graph.h"
#include "test_util.h"

#define B 2
#define T 13
#define M (B * T)
#define RANK 4

static lgpu_model *load(const char *path, const char *device, bool nf4, int ct) {
    lgpu_model *m = NULL;
    lgpu_model_params mp = {.path = path, .device = device, .quantize_nf4 = nf4, .nf4_compute_type = ct};
    TU_OK(lgpu_model_create(&mp, &m));
    return m;
}

static const lgpu_wt *proj(const lgpu_model *m, uint32_t l, int i) {
    const lgpu_layer_w *w = &m->layers[l];
    const lgpu_wt *all[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
    return all[i];
}

static const char *const proj_names[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

/* An NF4 weight read back from the device and dequantized as the ops
 * multiply it (rounded to its compute type): rows x cols floats. */
static float *read_nf4(const lgpu_wt *w) {
    int64_t n = (int64_t)w->rows * w->cols;
    size_t wb = lgpu_nf4_bytes(w->type, n), sb = lgpu_nf4_side_bytes(w->type, n);
    uint8_t *blocks = malloc(wb);
    lgpu_nf4_side *side = malloc(sb);
    float *v = malloc((size_t)n * 4);
    TU_OK(lgpu_buf_read(w->buf, 0, blocks, wb));
    TU_OK(lgpu_buf_read(lgpu_buf_side(w->buf), 0, side, sb));
    TU_OK(lgpu_nf4_dequantize(w->type, blocks, side, 0, 0, n, v, true));
    free(blocks), free(side);
    return v;
}

/* `src` with every projection replaced by the NF4 model's dequantized F32
 * values: what the reference reads. */
static void write_dequantized(const lgpu_model *m, const char *src, const char *dst) {
    lgpu_gguf *g;
    lgpu_gguf_writer *w;
    TU_OK(lgpu_gguf_create(src, &g));
    TU_OK(lgpu_gguf_writer_create(&w));
    for (int64_t i = 0; i < lgpu_gguf_n_kv(g); i++) TU_OK(lgpu_gguf_writer_copy_kv(w, g, i));
    float *owned[64] = {0};
    int n_owned = 0;
    for (int64_t i = 0; i < lgpu_gguf_n_tensors(g); i++) {
        const lgpu_gguf_tensor *t = lgpu_gguf_tensor_at(g, i);
        uint32_t l;
        char kind[32];
        const void *data = t->data;
        int type = t->type;
        if (sscanf(t->name, "blk.%u.%31[^.].weight", &l, kind) == 2)
            for (int p = 0; p < 7; p++)
                if (!strcmp(kind, proj_names[p]) && lgpu_type_is_nf4(proj(m, l, p)->type)) {
                    assert_true(n_owned < 64);
                    data = owned[n_owned++] = read_nf4(proj(m, l, p));
                    type = LGPU_TYPE_F32;
                }
        TU_OK(lgpu_gguf_writer_add_tensor(w, t->name, type, t->n_dims, t->ne, data));
    }
    TU_OK(lgpu_gguf_writer_write_file(w, dst));
    lgpu_gguf_writer_destroy(w);
    lgpu_gguf_destroy(g);
    for (int i = 0; i < n_owned; i++) free(owned[i]);
}

/* ------------------------------------------------------------ load */

static void test_qlora_load(void **state) {
    (void)state;
    const char *path = tu_model_path("stories260K.gguf");
    lgpu_model *f = load(path, NULL, false, 0), *q = load(path, NULL, true, LGPU_TYPE_F32);
    lgpu_model_nf4_info info = lgpu_model_nf4(q);
    assert_int_equal(info.n_nf4, 35);
    assert_int_equal(info.n_kept_4bit, 0);
    assert_true(info.double_quant);
    assert_int_equal(lgpu_model_nf4(f).n_nf4, 0);
    for (uint32_t l = 0; l < 5; l++) {
        for (int p = 0; p < 7; p++) assert_int_equal(proj(q, l, p)->type, LGPU_TYPE_NF4);
        assert_int_equal(q->layers[l].attn_norm.type, LGPU_TYPE_F32);
    }
    assert_int_equal(q->tok_embd.type, LGPU_TYPE_F32);
    assert_int_equal(q->output.type, LGPU_TYPE_F32);
    assert_true(lgpu_model_n_params(q) == lgpu_model_n_params(f));
    /* projections: 5 x (2 x 64 x 64 + 2 x 32 x 64 + 3 x 172 x 64) = 226560 values, in 3540 blocks of 33
     * bytes (4.125 bits a weight); per matrix 4 bytes of padding and its side table (1040 + 4 bytes) */
    size_t proj_f32 = 226560 * 4, other = lgpu_model_weight_bytes(f) - proj_f32;
    size_t nf4 = lgpu_model_weight_bytes(q) - other, want = 0;
    const uint32_t shapes[7][2] = {{64, 64}, {32, 64}, {32, 64}, {64, 64}, {172, 64}, {172, 64}, {64, 172}};
    for (int p = 0; p < 7; p++) {
        int64_t n = (int64_t)shapes[p][0] * shapes[p][1];
        want += 5 * (lgpu_nf4_bytes(LGPU_TYPE_NF4, n) + 4 + lgpu_nf4_side_bytes(LGPU_TYPE_NF4, n));
    }
    print_message("projections: %zu bytes F32, %zu NF4 (blocks: %.3f bits a weight; with 35 side tables of ~1 KB, "
                  "%.3f)\n", proj_f32, nf4, 8.0 * 3540 * 33 / 226560, 8.0 * (double)nf4 / 226560);
    assert_int_equal(nf4, want);
    lgpu_model *nodq;
    lgpu_model_params mp = {.path = path, .quantize_nf4 = true, .nf4_no_double_quant = true};
    TU_OK(lgpu_model_create(&mp, &nodq));
    assert_int_equal(proj(nodq, 0, 6)->type, LGPU_TYPE_NF4_NODQ);
    assert_false(lgpu_model_nf4(nodq).double_quant);
    mp.nf4_compute_type = LGPU_TYPE_Q8_0;
    lgpu_model *bad = NULL;
    assert_int_equal(lgpu_model_create(&mp, &bad), LGPU_EINVAL);
    lgpu_model_destroy(nodq);
    lgpu_model_destroy(f);
    lgpu_model_destroy(q);
}

/* A base already in Q4_0 keeps its projections: quantize_nf4 does not
 * re-quantize a 4-bit GGUF type. */
static void test_qlora_q4_0_base(void **state) {
    (void)state;
    char dir[512], out[600];
    assert_non_null(tu_tmpdir_create("qlora-q4", dir, sizeof dir));
    snprintf(out, sizeof out, "%s/q4_0.gguf", dir);
    TU_OK(lgpu_quantize_gguf(tu_model_path("stories260K.gguf"), out, LGPU_TYPE_Q4_0, NULL, NULL));
    lgpu_model *q = load(out, NULL, true, LGPU_TYPE_F32);
    lgpu_model_nf4_info info = lgpu_model_nf4(q);
    print_message("Q4_0 base: %u projections kept, %u made NF4\n", info.n_kept_4bit, info.n_nf4);
    assert_int_equal(info.n_nf4 + info.n_kept_4bit, 35);
    assert_true(info.n_kept_4bit > 0);
    for (uint32_t l = 0; l < 5; l++)
        for (int p = 0; p < 7; p++) {
            int t = proj(q, l, p)->type;
            assert_true(t == LGPU_TYPE_Q4_0 || t == LGPU_TYPE_NF4);
        }
    lgpu_model_destroy(q);
    tu_tmpdir_remove(dir);
}

/* ------------------------------------------------------------ logits */

static void logits_of(lgpu_model *m, const int32_t *tok, int n, float *out) {
    lgpu_ctx *c;
    lgpu_ctx_params cp = lgpu_ctx_params_default();
    TU_OK(lgpu_ctx_create(m, &cp, &c));
    int s;
    TU_OK(lgpu_seq_create(c, &s));
    int32_t seq[16], pos[16];
    int8_t want[16];
    for (int i = 0; i < n; i++) seq[i] = s, pos[i] = i, want[i] = 1;
    lgpu_batch b = {n, tok, seq, pos, want};
    TU_OK(lgpu_decode(c, &b, out));
    lgpu_ctx_destroy(c);
}

static void test_qlora_logits(void **state) {
    (void)state;
    char dir[512], deq[600];
    assert_non_null(tu_tmpdir_create("qlora-logits", dir, sizeof dir));
    snprintf(deq, sizeof deq, "%s/dequantized.gguf", dir);
    const int32_t tok[8] = {1, 403, 407, 261, 378, 395, 269, 301};
    for (int dev = 0; dev < 2; dev++) {
        const char *device = dev ? "cpu" : NULL;
        lgpu_model *q = load(tu_model_path("stories260K.gguf"), device, true, dev ? LGPU_TYPE_BF16 : LGPU_TYPE_F32);
        write_dequantized(q, tu_model_path("stories260K.gguf"), deq);
        lgpu_model *d = load(deq, device, false, 0), *f = load(tu_model_path("stories260K.gguf"), device, false, 0);
        float *lq = malloc(8 * 512 * 4), *ld = malloc(8 * 512 * 4), *lf = malloc(8 * 512 * 4);
        logits_of(q, tok, 8, lq);
        logits_of(d, tok, 8, ld);
        logits_of(f, tok, 8, lf);
        double nmse_d = tu_nmse(lq, ld, 8 * 512), nmse_f = tu_nmse(lq, lf, 8 * 512);
        print_message("%s: NF4 logits vs the dequantized F32 model NMSE %.3g; vs the original F32 model %.3g "
                      "(the quantization)\n", lgpu_dev_name(lgpu_model_dev(q)), nmse_d, nmse_f);
        assert_true(nmse_d < 1e-10);
        assert_true(nmse_f > 1e-6 && nmse_f < 0.1);
        free(lq), free(ld), free(lf);
        lgpu_model_destroy(q), lgpu_model_destroy(d), lgpu_model_destroy(f);
    }
    tu_tmpdir_remove(dir);
}

/* ------------------------------------------------------------ one step vs torch */

static bool have_torch(void) {
    return access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import torch' 2>/dev/null") == 0;
}

static double f64_at(const lgpu_st_tensor *t, size_t i) {
    double v;
    memcpy(&v, (const uint8_t *)t->data + 8 * i, 8);
    return v;
}

/* HF row order of q/k B matrices (GGUF row h*hd + 2i + a is HF row h*hd + a*hd/2 + i). */
static void to_hf_rows(const float *src, float *dst, uint32_t rows, uint32_t cols, uint32_t heads) {
    uint32_t hd = rows / heads;
    for (uint32_t r = 0; r < rows; r++) {
        uint32_t h = r / hd, j = r % hd, i = j / 2, a = j % 2;
        memcpy(dst + ((size_t)h * hd + a * (hd / 2) + i) * cols, src + (size_t)r * cols, cols * sizeof *dst);
    }
}

static void step_vs_torch(const char *device, int ct) {
    if (!have_torch()) {
        print_message("SKIP: /usr/bin/python3 cannot import torch (Debian package python3-torch)\n");
        skip();
    }
    char dir[512], deq[600], adir[600], in_path[600], out_path[600], cmd[4096];
    assert_non_null(tu_tmpdir_create("qlora-step", dir, sizeof dir));
    lgpu_model *m = load(tu_model_path("stories260K.gguf"), device, true, ct);
    snprintf(deq, sizeof deq, "%s/dequantized.gguf", dir);
    write_dequantized(m, tu_model_path("stories260K.gguf"), deq);

    lgpu_lora *a;
    lgpu_lora_params lp = {.rank = RANK, .alpha = 8, .seed = 7};
    TU_OK(lgpu_lora_create(m, &lp, &a));
    tu_rng r;
    tu_rng_seed(&r, 4321);
    for (uint32_t l = 0; l < 5; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++)
            for (int b = 0; b < 2; b++) {
                uint32_t out, in;
                TU_OK(lgpu_lora_target_shape(a, (lgpu_lora_target)t, &out, &in));
                size_t n = (size_t)RANK * (b ? out : in);
                float *v = malloc(n * sizeof *v);
                tu_fill_uniform(&r, v, n, -0.2f, 0.2f);
                TU_OK(lgpu_lora_set(a, l, (lgpu_lora_target)t, b, v));
                free(v);
            }
    int32_t tokens[M], targets[M], labels[M];
    uint32_t counted = 0;
    for (int i = 0; i < M; i++) tokens[i] = (int32_t)(tu_rng_u32(&r) % 512);
    for (int i = 0; i < M; i++) {
        int t = i % T;
        targets[i] = t >= 2 && t + 1 < T ? tokens[i + 1] : -1;
        counted += targets[i] >= 0;
        labels[i] = targets[i] >= 0 ? targets[i] : -100;
    }
    lgpu_train_graph *g;
    TU_OK(lgpu_train_graph_create(a, B, T, 0, &g));
    double loss_sum;
    uint32_t c;
    TU_OK(lgpu_train_graph_run(g, tokens, targets, true, 1.0f / (float)counted, NULL, &loss_sum, &c)); /* no dropout */
    assert_int_equal(c, counted);
    double loss = loss_sum / counted;

    snprintf(adir, sizeof adir, "%s/adapter", dir);
    TU_OK(lgpu_lora_save(a, adir, "stories260K"));
    snprintf(in_path, sizeof in_path, "%s/inputs.safetensors", dir);
    lgpu_st_writer *w;
    TU_OK(lgpu_st_writer_create(&w));
    int64_t shape[2] = {B, T};
    TU_OK(lgpu_st_writer_add(w, "tokens", "I32", 2, shape, tokens, sizeof tokens));
    TU_OK(lgpu_st_writer_add(w, "labels", "I32", 2, shape, labels, sizeof labels));
    TU_OK(lgpu_st_writer_write(w, in_path));
    lgpu_st_writer_destroy(w);
    snprintf(out_path, sizeof out_path, "%s/out.safetensors", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --model %s --adapter %s --inputs %s --out %s",
             tu_source_path("tests/torch/lora_ref.py"), deq, adir, in_path, out_path);
    print_message("%s\n", cmd);
    assert_int_equal(system(cmd), 0);

    lgpu_safetensors *ref;
    TU_OK(lgpu_safetensors_create(out_path, &ref));
    double ref_loss = f64_at(lgpu_safetensors_find(ref, "loss"), 0);
    print_message("%s, NF4 base (compute %s): loss %.9f, torch float64 on the dequantized weights %.9f (rel %.2e)\n",
                  lgpu_dev_name(lgpu_model_dev(m)), lgpu_type_name(ct), loss, ref_loss,
                  fabs(loss - ref_loss) / ref_loss);
    assert_true(fabs(loss - ref_loss) <= 1e-5 * ref_loss);
    double worst = 0, worst_nmse = 0;
    int n_checked = 0;
    for (uint32_t l = 0; l < 5; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++)
            for (int b = 0; b < 2; b++) {
                const lgpu_lora_mat *mt = &a->layer[l].mat[t];
                uint32_t rows = b ? mt->out : RANK, cols = b ? RANK : mt->in;
                size_t n = (size_t)rows * cols;
                float *gv = malloc(n * 4), *gh = malloc(n * 4);
                TU_OK(lgpu_buf_read(lgpu_train_graph_grad(g, l), b ? mt->off_b : mt->off_a, gv, n * 4));
                uint32_t heads = !b ? 0 : t == LGPU_LORA_Q ? 8 : t == LGPU_LORA_K ? 4 : 0;
                if (heads) to_hf_rows(gv, gh, rows, cols, heads);
                else memcpy(gh, gv, n * 4);
                char name[160];
                snprintf(name, sizeof name, "base_model.model.model.layers.%u.%s.%s.lora_%c.weight.grad", l,
                         t <= LGPU_LORA_O ? "self_attn" : "mlp", lgpu_lora_target_peft_name((lgpu_lora_target)t),
                         b ? 'B' : 'A');
                const lgpu_st_tensor *rt = lgpu_safetensors_find(ref, name);
                assert_non_null(rt);
                double maxref = 0, maxerr = 0, se = 0, sr = 0;
                for (size_t i = 0; i < n; i++) {
                    double rv = f64_at(rt, i), e = fabs(gh[i] - rv);
                    maxref = fmax(maxref, fabs(rv)), maxerr = fmax(maxerr, e);
                    se += e * e, sr += rv * rv;
                }
                double rel = maxerr / (maxref > 0 ? maxref : 1), nmse = sr > 0 ? se / sr : se;
                worst = fmax(worst, rel), worst_nmse = fmax(worst_nmse, nmse);
                if (!(rel <= 2e-4 && nmse <= 1e-8)) fail_msg("%s: rel %.3g, NMSE %.3g", name, rel, nmse);
                n_checked++;
                free(gv), free(gh);
            }
    print_message("%d gradients: worst relative error %.2e, worst NMSE %.2e (tolerance 2e-4, 1e-8)\n", n_checked,
                  worst, worst_nmse);
    lgpu_safetensors_destroy(ref);
    lgpu_train_graph_destroy(g);
    lgpu_lora_destroy(a);
    lgpu_model_destroy(m);
    tu_tmpdir_remove(dir);
}

static void test_qlora_step_default(void **state) { step_vs_torch(NULL, LGPU_TYPE_F32); }
static void test_qlora_step_cpu_bf16(void **state) { step_vs_torch("cpu", LGPU_TYPE_BF16); }

/* ------------------------------------------------------------ training */

typedef struct {
    double first, last;
    double first_val, last_val;
    int n;
} run_log;

static int on_progress(void *ud, const lgpu_train_progress *p) {
    run_log *r = ud;
    if (p->event == LGPU_TRAIN_STEP) {
        if (!r->n++) r->first = p->loss;
        r->last = p->loss;
    } else if (p->event == LGPU_TRAIN_EVAL) {
        if (isnan(r->first_val)) r->first_val = p->val_loss;
        r->last_val = p->val_loss;
    }
    return 0;
}

static run_log train(lgpu_model *m, const char *out, uint64_t steps) {
    lgpu_train_params p = lgpu_train_params_default();
    p.train_file = tu_source_path("datasets/stories-instruct/train.jsonl");
    /* short runs (lavapipe) skip validation: its passes would cost more than the steps */
    p.val_file = steps >= 20 ? tu_source_path("datasets/stories-instruct/val.jsonl") : NULL;
    p.output_dir = out;
    p.seq_len = 64;
    p.micro_batch = 2;
    p.pack = true;
    p.max_steps = steps;
    p.lr = 2e-3f;
    p.lora.rank = 4;
    p.lora.alpha = 8;
    p.eval_every = steps / 2;
    lgpu_trainer *t;
    double t0 = lgpu_now_s();
    TU_OK(lgpu_trainer_create(m, &p, &t));
    run_log r = {.first_val = NAN};
    TU_OK(lgpu_trainer_run(t, on_progress, &r));
    lgpu_trainer_destroy(t);
    print_message("  (%llu steps in %.1f s)\n", (unsigned long long)steps, lgpu_now_s() - t0);
    return r;
}

static json_t *load_json(const char *dir, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) fail_msg("%s: %s", path, err.text);
    return j;
}

static void check_bnb(json_t *q, bool dq, const char *ct) {
    assert_non_null(q);
    assert_true(json_is_true(json_object_get(q, "load_in_4bit")));
    assert_true(json_is_false(json_object_get(q, "load_in_8bit")));
    assert_string_equal(json_string_value(json_object_get(q, "bnb_4bit_quant_type")), "nf4");
    assert_true(json_boolean_value(json_object_get(q, "bnb_4bit_use_double_quant")) == dq);
    assert_string_equal(json_string_value(json_object_get(q, "bnb_4bit_compute_dtype")), ct);
    assert_string_equal(json_string_value(json_object_get(q, "quant_method")), "bitsandbytes");
}

/* QLoRA trains: 8 steps on the device under test (lavapipe's time is
 * what bounds it) with the loss falling; then on the C path 30 steps each
 * on the NF4 base (bf16 compute, as QLoRA recipes) and on the F32 base, the
 * gap between their validation losses logged and bounded. */
static void test_qlora_training(void **state) {
    (void)state;
    char dir[512], out[600];
    assert_non_null(tu_tmpdir_create("qlora-train", dir, sizeof dir));
    snprintf(out, sizeof out, "%s/device", dir);
    lgpu_model *q = load(tu_model_path("stories260K.gguf"), NULL, true, LGPU_TYPE_BF16);
    run_log rd = train(q, out, 8);
    print_message("%s, QLoRA: loss %.3f -> %.3f over %d steps\n", lgpu_dev_name(lgpu_model_dev(q)), rd.first,
                  rd.last, rd.n);
    assert_int_equal(rd.n, 8);
    assert_true(rd.last < rd.first - 0.3);

    /* the saved configuration: PEFT's file and the BitsAndBytesConfig beside it */
    snprintf(out, sizeof out, "%s/device/adapter", dir);
    json_t *ac = load_json(out, "adapter_config.json"), *qc = load_json(out, "quantization_config.json");
    check_bnb(json_object_get(ac, "quantization_config"), true, "bfloat16");
    check_bnb(qc, true, "bfloat16");
    assert_true(json_equal(json_object_get(ac, "quantization_config"), qc));
    json_decref(ac), json_decref(qc);
    /* the adapter loads back on the NF4 base */
    lgpu_lora *a;
    lgpu_lora_params lp = {.path = out};
    TU_OK(lgpu_lora_create(q, &lp, &a));
    lgpu_lora_destroy(a);
    lgpu_model_destroy(q);

    q = load(tu_model_path("stories260K.gguf"), "cpu", true, LGPU_TYPE_BF16);
    lgpu_model *f = load(tu_model_path("stories260K.gguf"), "cpu", false, 0);
    snprintf(out, sizeof out, "%s/qlora", dir);
    run_log rq = train(q, out, 30);
    snprintf(out, sizeof out, "%s/lora", dir);
    run_log rf = train(f, out, 30);
    print_message("C path, QLoRA (NF4, double quant, bf16 compute): loss %.3f -> %.3f, validation %.3f -> %.3f\n",
                  rq.first, rq.last, rq.first_val, rq.last_val);
    print_message("C path, LoRA on F32:                             loss %.3f -> %.3f, validation %.3f -> %.3f\n",
                  rf.first, rf.last, rf.first_val, rf.last_val);
    print_message("gap (QLoRA - LoRA) in the final validation loss: %+.4f\n", rq.last_val - rf.last_val);
    assert_true(rq.last < rq.first - 0.3);
    assert_true(fabs(rq.last_val - rf.last_val) < 0.25);
    /* a plain base's adapter has no quantization config */
    snprintf(out, sizeof out, "%s/lora/adapter", dir);
    ac = load_json(out, "adapter_config.json");
    assert_null(json_object_get(ac, "quantization_config"));
    json_decref(ac);
    char path[700];
    snprintf(path, sizeof path, "%s/quantization_config.json", out);
    assert_int_not_equal(access(path, F_OK), 0);
    lgpu_model_destroy(q);
    lgpu_model_destroy(f);
    tu_tmpdir_remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qlora_load),         cmocka_unit_test(test_qlora_q4_0_base),
        cmocka_unit_test(test_qlora_logits),       cmocka_unit_test(test_qlora_step_default),
        cmocka_unit_test(test_qlora_step_cpu_bf16), cmocka_unit_test(test_qlora_training),
    };
    if (getenv("LGPU_TEST_FILTER")) cmocka_set_test_filter(getenv("LGPU_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
