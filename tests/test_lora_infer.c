/* LoRA adapters applied unmerged at inference (lgpu/lora.h, "adapters in
 * use"), on the default device (lavapipe in CI) and on the host C path,
 * with stories260K (5 layers, dim 64, GQA 8/4, hidden 172):
 *   (a) an adapter whose B is 0 gives the plain model's logits, bit for bit;
 *   (b) logits of a random adapter equal tests/torch/lora_ref.py's (PyTorch,
 *       PEFT semantics, float64) for the same PEFT folder;
 *   (c) sequences with different adapters (and one with none, one with two)
 *       decoded in one batch equal each decoded alone;
 *   (d) two stacked adapters with scales equal one adapter holding both
 *       (their ranks concatenated, the scales folded into B);
 *   (e) the same adapter read from its PEFT folder and from its GGUF file
 *       gives identical logits;
 *   (f) lgpu_merge_gguf to F32, then plain inference, equals unmerged
 *       inference within float rounding; to Q8_0 within quantization error;
 *   (g) prefixes are shared only between sequences with the same adapters;
 *       the context's default adapters; bad calls. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "format/safetensors_write.h"
#include "lgpu/convert.h"
#include "lgpu/lora.h"
#include "test_util.h"

#define V 512
#define NT LGPU_LORA_N_TARGETS

static lgpu_model *load(const char *path, const char *device) {
    lgpu_model *m = NULL;
    TU_OK(lgpu_model_create(&(lgpu_model_params){.path = path ? path : tu_model_path("stories260K.gguf"),
                                                 .device = device},
                            &m));
    return m;
}

/* F32 KV cache: the comparisons below are about the adapters, not F16 rounding. */
static lgpu_ctx *make_ctx_bs(lgpu_model *m, uint32_t n_seq, uint32_t block_size) {
    lgpu_ctx *c = NULL;
    lgpu_ctx_params cp = lgpu_ctx_params_default();
    cp.n_ctx = 128, cp.n_seq_max = n_seq, cp.n_batch = 64, cp.kv_type = LGPU_TYPE_F32, cp.block_size = block_size;
    TU_OK(lgpu_ctx_create(m, &cp, &c));
    return c;
}

static lgpu_ctx *make_ctx(lgpu_model *m, uint32_t n_seq) { return make_ctx_bs(m, n_seq, 0); }

static bool on_cpu(lgpu_model *m) { return lgpu_dev_kind_of(lgpu_model_dev(m)) == LGPU_DEV_CPU; }

/* An adapter of rank r with every matrix uniform in +-amp (B too, so the
 * update is live). */
static lgpu_lora *random_adapter(lgpu_model *m, uint32_t rank, float alpha, uint32_t targets, uint64_t seed,
                                 float amp) {
    lgpu_lora *a;
    TU_OK(lgpu_lora_create(m, &(lgpu_lora_params){.rank = rank, .alpha = alpha, .targets = targets, .seed = seed}, &a));
    tu_rng r;
    tu_rng_seed(&r, seed * 7919 + 1);
    float *v = malloc((size_t)rank * 172 * sizeof *v);
    for (uint32_t l = 0; l < lgpu_model_hparams(m)->n_layers; l++)
        for (int t = 0; t < NT; t++) {
            if (!(targets & (1u << t))) continue;
            uint32_t out, in;
            TU_OK(lgpu_lora_target_shape(a, (lgpu_lora_target)t, &out, &in));
            tu_fill_uniform(&r, v, (size_t)rank * in, -amp, amp);
            TU_OK(lgpu_lora_set(a, l, (lgpu_lora_target)t, false, v));
            tu_fill_uniform(&r, v, (size_t)rank * out, -amp, amp);
            TU_OK(lgpu_lora_set(a, l, (lgpu_lora_target)t, true, v));
        }
    free(v);
    return a;
}

/* A fresh sequence with the given adapters. */
static int open_seq(lgpu_ctx *c, lgpu_lora *a, lgpu_lora *b, float sa, float sb) {
    int s;
    TU_OK(lgpu_seq_create(c, &s));
    const lgpu_lora *list[2] = {a, b};
    float sc[2] = {sa, sb};
    int n = a ? (b ? 2 : 1) : 0;
    if (!a && b) list[0] = b, sc[0] = sb, n = 1;
    TU_OK(lgpu_seq_set_adapters(c, s, list, sc, n));
    assert_int_equal(lgpu_seq_n_adapters(c, s), n);
    return s;
}

/* Decodes tokens[0..n) of seq from its current length, logits of every token into out. */
static void decode_all(lgpu_ctx *c, int seq, const int32_t *tokens, int n, float *out) {
    int32_t sq[64], ps[64];
    int8_t lg[64];
    int p0 = lgpu_seq_len(c, seq);
    for (int i = 0; i < n; i++) sq[i] = seq, ps[i] = p0 + i, lg[i] = 1;
    TU_OK(lgpu_decode(c, &(lgpu_batch){.n = n, .token = tokens, .seq = sq, .pos = ps, .logits = lg}, out));
}

/* Largest |a - b| over the largest |b|. */
static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, mx = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i])), mx = fmax(mx, fabs((double)b[i]));
    return mx > 0 ? e / mx : e;
}

static const int32_t PROMPT[9] = {1, 403, 407, 261, 378, 432, 383, 300, 301};

/* ---- (a) B = 0 changes nothing ---- */

static void zero_b(const char *device) {
    lgpu_model *m = load(NULL, device);
    lgpu_lora *a; /* PEFT's initialisation: A random, B = 0 */
    TU_OK(lgpu_lora_create(m, &(lgpu_lora_params){.rank = 8, .alpha = 16, .seed = 5}, &a));
    lgpu_ctx *c = make_ctx(m, 2);
    float plain[9 * V], with[9 * V];
    int s0 = open_seq(c, NULL, NULL, 0, 0), s1 = open_seq(c, a, NULL, 3.0f, 0);
    decode_all(c, s0, PROMPT, 9, plain);
    decode_all(c, s1, PROMPT, 9, with);
    assert_memory_equal(plain, with, sizeof plain);
    decode_all(c, s0, PROMPT + 4, 1, plain);
    decode_all(c, s1, PROMPT + 4, 1, with);
    assert_memory_equal(plain, with, V * sizeof(float));
    print_message("%s: B = 0: logits bit-identical to the plain model\n", lgpu_model_desc(m));
    lgpu_ctx_destroy(c);
    lgpu_lora_destroy(a);
    lgpu_model_destroy(m);
}
static void test_zero_b_default(void **state) { zero_b(NULL); }
static void test_zero_b_cpu(void **state) { zero_b("cpu"); }

/* ---- (b) against PyTorch ---- */

static bool have_torch(void) {
    return access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import torch' 2>/dev/null") == 0;
}

enum { TB = 2, TT = 13 };

static void vs_torch(const char *device) {
    if (!have_torch()) {
        print_message("SKIP: /usr/bin/python3 cannot import torch (Debian package python3-torch)\n");
        skip();
    }
    lgpu_model *m = load(NULL, device);
    lgpu_lora *a = random_adapter(m, 4, 8, LGPU_LORA_ALL_TARGETS, 21, 0.2f);
    char dir[512], adir[600], in_path[600], out_path[600], cmd[4096];
    assert_non_null(tu_tmpdir_create("lora-infer", dir, sizeof dir));
    snprintf(adir, sizeof adir, "%s/adapter", dir);
    snprintf(in_path, sizeof in_path, "%s/inputs.safetensors", dir);
    snprintf(out_path, sizeof out_path, "%s/out.safetensors", dir);
    int32_t tokens[TB * TT];
    tu_rng r;
    tu_rng_seed(&r, 99);
    for (int i = 0; i < TB * TT; i++) tokens[i] = i % TT ? (int32_t)(tu_rng_u32(&r) % V) : 1;
    /* the reference depends on the adapter's values and the tokens only (both
     * seeded): one run serves both devices (importing torch takes seconds) */
    static float *want;
    if (!want) {
        TU_OK(lgpu_lora_save(a, adir, "stories260K"));
        lgpu_st_writer *w;
        TU_OK(lgpu_st_writer_create(&w));
        TU_OK(lgpu_st_writer_add(w, "tokens", "I32", 2, (int64_t[]){TB, TT}, tokens, sizeof tokens));
        TU_OK(lgpu_st_writer_write(w, in_path));
        lgpu_st_writer_destroy(w);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --model %s --adapter %s --inputs %s --out %s",
                 tu_source_path("tests/torch/lora_ref.py"), tu_model_path("stories260K.gguf"), adir, in_path,
                 out_path);
        assert_int_equal(system(cmd), 0);
        lgpu_safetensors *ref;
        TU_OK(lgpu_safetensors_create(out_path, &ref));
        const lgpu_st_tensor *tl = lgpu_safetensors_find(ref, "logits");
        assert_non_null(tl);
        assert_int_equal(tl->nbytes, sizeof(float) * TB * TT * V);
        want = malloc(tl->nbytes); /* kept for the other device's test */
        memcpy(want, tl->data, tl->nbytes);
        lgpu_safetensors_destroy(ref);
    }

    /* both rows in one batch, every position's logits: the reference's (B, T, V) order */
    lgpu_ctx *c = make_ctx(m, TB);
    int seq[TB];
    for (int b = 0; b < TB; b++) seq[b] = open_seq(c, a, NULL, 1.0f, 0);
    int32_t sq[TB * TT], ps[TB * TT];
    int8_t lg[TB * TT];
    for (int i = 0; i < TB * TT; i++) sq[i] = seq[i / TT], ps[i] = i % TT, lg[i] = 1;
    float *ours = malloc(sizeof(float) * TB * TT * V), *plain = malloc(sizeof(float) * TB * TT * V);
    TU_OK(lgpu_decode(c, &(lgpu_batch){.n = TB * TT, .token = tokens, .seq = sq, .pos = ps, .logits = lg}, ours));
    /* the plain model on the same tokens: how much the adapter moves the logits */
    for (int b = 0; b < TB; b++) {
        lgpu_seq_destroy(c, seq[b]);
        seq[b] = open_seq(c, NULL, NULL, 0, 0);
    }
    for (int i = 0; i < TB * TT; i++) sq[i] = seq[i / TT];
    TU_OK(lgpu_decode(c, &(lgpu_batch){.n = TB * TT, .token = tokens, .seq = sq, .pos = ps, .logits = lg}, plain));

    size_t n = (size_t)TB * TT * V;
    double rel = rel_err(ours, want, n), nmse = tu_nmse(ours, want, n), moved = rel_err(plain, want, n);
    print_message("%s: logits vs torch float64: max |diff| / max |logit| %.2e, NMSE %.2e (tolerance 2e-5, 1e-10); "
                  "the adapter moves them by %.2f of max |logit|\n", lgpu_model_desc(m), rel, nmse, moved);
    /* F32 forward vs F64, 5 layers: a few ulps per op */
    assert_true(rel <= 2e-5 && nmse <= 1e-10);
    assert_true(moved > 0.05); /* a live update, 1000x the tolerance */
    free(ours);
    free(plain);
    lgpu_ctx_destroy(c);
    lgpu_lora_destroy(a);
    lgpu_model_destroy(m);
    tu_tmpdir_remove(dir);
}
static void test_torch_default(void **state) { vs_torch(NULL); }
static void test_torch_cpu(void **state) { vs_torch("cpu"); }

/* ---- (c) mixed batch = each alone ---- */

enum { NS = 4, NP = 7, NG = 12 };

static void mixed_batch(const char *device) {
    lgpu_model *m = load(NULL, device);
    lgpu_lora *x = random_adapter(m, 4, 8, LGPU_LORA_ALL_TARGETS, 31, 0.2f);
    lgpu_lora *y = random_adapter(m, 2, 2, (1u << LGPU_LORA_V) | (1u << LGPU_LORA_DOWN), 32, 0.3f);
    /* per sequence: adapters (x, y, none, x + y) and prompts of lengths 4, 4, 1, 4:
     * batch sizes 1, 4 and 13 only (each new size compiles kernels on lavapipe) */
    lgpu_lora *first[NS] = {x, y, NULL, x}, *second[NS] = {NULL, NULL, NULL, y};
    const float s1[NS] = {1.0f, 0.5f, 0, 0.8f}, s2[NS] = {0, 0, 0, -1.5f};
    const int32_t prompts[NS][NP] = {{1, 403, 407, 261}, {1, 300, 301, 302}, {1}, {1, 410, 420, 430}};
    const int plen[NS] = {4, 4, 1, 4};
    float alone_l[NS][V], together_l[NS][V];
    int32_t alone[NS][NG], together[NS][NG];
    float logits[NS * V];

    lgpu_ctx *c = make_ctx(m, 1);
    for (int s = 0; s < NS; s++) {
        int q = open_seq(c, first[s], second[s], s1[s], s2[s]);
        int32_t sq[NP], ps[NP];
        int8_t lg[NP];
        for (int i = 0; i < plen[s]; i++) sq[i] = q, ps[i] = i, lg[i] = i == plen[s] - 1;
        TU_OK(lgpu_decode(c, &(lgpu_batch){.n = plen[s], .token = prompts[s], .seq = sq, .pos = ps, .logits = lg},
                          logits));
        memcpy(alone_l[s], logits, sizeof alone_l[s]);
        for (int g = 0; g < NG; g++) {
            int32_t best = 0;
            for (int v = 1; v < V; v++)
                if (logits[v] > logits[best]) best = v;
            alone[s][g] = best;
            int32_t p = lgpu_seq_len(c, q);
            int8_t one = 1;
            if (g + 1 < NG)
                TU_OK(lgpu_decode(c, &(lgpu_batch){.n = 1, .token = &best, .seq = &q, .pos = &p, .logits = &one},
                                  logits));
        }
        lgpu_seq_destroy(c, q);
    }
    lgpu_ctx_destroy(c);

    c = make_ctx(m, NS);
    int q[NS];
    for (int s = 0; s < NS; s++) q[s] = open_seq(c, first[s], second[s], s1[s], s2[s]);
    int32_t tk[64], sq[64], ps[64];
    int8_t lg[64];
    int n = 0, row = 0, row_of[NS];
    for (int i = 0; i < NP; i++)
        for (int s = 0; s < NS; s++)
            if (i < plen[s]) tk[n] = prompts[s][i], sq[n] = q[s], ps[n] = i, lg[n++] = i == plen[s] - 1;
    for (int k = 0; k < n; k++)
        if (lg[k])
            for (int s = 0; s < NS; s++)
                if (sq[k] == q[s]) row_of[s] = row++;
    TU_OK(lgpu_decode(c, &(lgpu_batch){.n = n, .token = tk, .seq = sq, .pos = ps, .logits = lg}, logits));
    for (int s = 0; s < NS; s++) memcpy(together_l[s], logits + (size_t)row_of[s] * V, sizeof together_l[s]);
    for (int g = 0; g < NG; g++) {
        for (int s = 0; s < NS; s++) {
            const float *lr = g ? logits + (size_t)s * V : together_l[s];
            int32_t best = 0;
            for (int v = 1; v < V; v++)
                if (lr[v] > lr[best]) best = v;
            together[s][g] = best;
            tk[s] = best, sq[s] = q[s], ps[s] = lgpu_seq_len(c, q[s]), lg[s] = 1;
        }
        if (g + 1 < NG)
            TU_OK(lgpu_decode(c, &(lgpu_batch){.n = NS, .token = tk, .seq = sq, .pos = ps, .logits = lg}, logits));
    }
    for (int s = 0; s < NS; s++) {
        double e = rel_err(together_l[s], alone_l[s], V);
        print_message("  sequence %d (%s%s): batched vs alone, max |diff| / max |logit| %.2e\n", s,
                      first[s] ? (first[s] == x ? "x" : "y") : "none", second[s] ? " + y" : "", e);
        /* the C path gives a row the same bits in any batch; Vulkan may pick
         * other matmul kernels for other batch sizes */
        if (on_cpu(m)) assert_memory_equal(together_l[s], alone_l[s], sizeof alone_l[s]);
        else assert_true(e <= 1e-5);
        assert_memory_equal(together[s], alone[s], sizeof alone[s]);
    }
    /* the adapters matter: x and no adapter on the same prompt differ */
    lgpu_ctx_destroy(c);
    c = make_ctx(m, 2);
    float lx[V], ln[V];
    int a = open_seq(c, x, NULL, 1, 0), b = open_seq(c, NULL, NULL, 0, 0);
    decode_all(c, a, prompts[0], 1, lx);
    decode_all(c, b, prompts[0], 1, ln);
    assert_true(rel_err(lx, ln, V) > 0.05);
    lgpu_ctx_destroy(c);
    lgpu_lora_destroy(x);
    lgpu_lora_destroy(y);
    lgpu_model_destroy(m);
}
static void test_mixed_batch_default(void **state) { mixed_batch(NULL); }
static void test_mixed_batch_cpu(void **state) { mixed_batch("cpu"); }

/* ---- (d) stacked adapters = their sum ---- */

static void stacked(const char *device) {
    lgpu_model *m = load(NULL, device);
    const uint32_t ty = (1u << LGPU_LORA_Q) | (1u << LGPU_LORA_O) | (1u << LGPU_LORA_UP);
    lgpu_lora *x = random_adapter(m, 3, 6, LGPU_LORA_ALL_TARGETS, 41, 0.2f);
    lgpu_lora *y = random_adapter(m, 2, 1, ty, 42, 0.3f);
    const float sx = 0.7f, sy = -1.3f;
    /* z: rank 5 = [x; y], alpha = r (scale 1), B columns carry the scales */
    lgpu_lora *z;
    TU_OK(lgpu_lora_create(m, &(lgpu_lora_params){.rank = 5, .alpha = 5}, &z));
    const float cx = sx * 6.0f / 3.0f, cy = sy * 1.0f / 2.0f;
    float Ax[3 * 172], Bx[172 * 3], Ay[2 * 172], By[172 * 2], Az[5 * 172], Bz[172 * 5];
    for (uint32_t l = 0; l < lgpu_model_hparams(m)->n_layers; l++)
        for (int t = 0; t < NT; t++) {
            uint32_t out, in;
            TU_OK(lgpu_lora_target_shape(z, (lgpu_lora_target)t, &out, &in));
            TU_OK(lgpu_lora_get(x, l, (lgpu_lora_target)t, false, Ax));
            TU_OK(lgpu_lora_get(x, l, (lgpu_lora_target)t, true, Bx));
            bool has_y = ty & (1u << t);
            if (has_y) {
                TU_OK(lgpu_lora_get(y, l, (lgpu_lora_target)t, false, Ay));
                TU_OK(lgpu_lora_get(y, l, (lgpu_lora_target)t, true, By));
            }
            memcpy(Az, Ax, 3 * in * sizeof(float));
            for (uint32_t i = 0; i < 2 * in; i++) Az[3 * in + i] = has_y ? Ay[i] : 0;
            for (uint32_t o = 0; o < out; o++) {
                for (int j = 0; j < 3; j++) Bz[o * 5 + j] = cx * Bx[o * 3 + j];
                for (int j = 0; j < 2; j++) Bz[o * 5 + 3 + j] = has_y ? cy * By[o * 2 + j] : 0;
            }
            TU_OK(lgpu_lora_set(z, l, (lgpu_lora_target)t, false, Az));
            TU_OK(lgpu_lora_set(z, l, (lgpu_lora_target)t, true, Bz));
        }
    lgpu_ctx *c = make_ctx(m, 3);
    float lxy[9 * V], lz[9 * V], lx[9 * V];
    int a = open_seq(c, x, y, sx, sy), b = open_seq(c, z, NULL, 1, 0), d = open_seq(c, x, NULL, sx, 0);
    decode_all(c, a, PROMPT, 9, lxy);
    decode_all(c, b, PROMPT, 9, lz);
    decode_all(c, d, PROMPT, 9, lx);
    double e = rel_err(lxy, lz, 9 * V), moved = rel_err(lx, lz, 9 * V);
    print_message("%s: x*%.1f + y*%.1f stacked vs one adapter holding both: max |diff| / max |logit| %.2e "
                  "(tolerance 1e-5); y alone moves them by %.2f\n", lgpu_model_desc(m), sx, sy, e, moved);
    assert_true(e <= 1e-5);
    assert_true(moved > 0.01);
    lgpu_ctx_destroy(c);
    lgpu_lora_destroy(x);
    lgpu_lora_destroy(y);
    lgpu_lora_destroy(z);
    lgpu_model_destroy(m);
}
static void test_stacked_default(void **state) { stacked(NULL); }
static void test_stacked_cpu(void **state) { stacked("cpu"); }

/* ---- (e) PEFT folder and GGUF file of one adapter ---- */

static void peft_vs_gguf(const char *device) {
    lgpu_model *m = load(NULL, device);
    lgpu_lora *a = random_adapter(m, 4, 16, LGPU_LORA_ALL_TARGETS & ~(1u << LGPU_LORA_GATE), 51, 0.2f);
    char dir[512], pdir[600], gpath[600];
    assert_non_null(tu_tmpdir_create("lora-infer", dir, sizeof dir));
    snprintf(pdir, sizeof pdir, "%s/peft", dir);
    snprintf(gpath, sizeof gpath, "%s/adapter.gguf", dir);
    TU_OK(lgpu_lora_save(a, pdir, NULL));
    TU_OK(lgpu_lora_save(a, gpath, NULL));
    lgpu_lora *p, *g;
    TU_OK(lgpu_lora_create(m, &(lgpu_lora_params){.path = pdir}, &p));
    TU_OK(lgpu_lora_create(m, &(lgpu_lora_params){.path = gpath}, &g));
    lgpu_ctx *c = make_ctx(m, 1);
    float lp[9 * V], lgg[9 * V], la[9 * V];
    lgpu_lora *each[3] = {p, g, a};
    float *out[3] = {lp, lgg, la};
    for (int i = 0; i < 3; i++) {
        int s = open_seq(c, each[i], NULL, 0.75f, 0);
        decode_all(c, s, PROMPT, 9, out[i]);
        lgpu_seq_destroy(c, s);
    }
    assert_memory_equal(lp, lgg, sizeof lp);
    assert_memory_equal(lp, la, sizeof lp);
    print_message("%s: PEFT folder, GGUF file and the adapter in memory: identical logits\n", lgpu_model_desc(m));
    lgpu_ctx_destroy(c);
    lgpu_lora_destroy(a);
    lgpu_lora_destroy(p);
    lgpu_lora_destroy(g);
    lgpu_model_destroy(m);
    tu_tmpdir_remove(dir);
}
static void test_peft_vs_gguf_default(void **state) { peft_vs_gguf(NULL); }
static void test_peft_vs_gguf_cpu(void **state) { peft_vs_gguf("cpu"); }

/* ---- (f) merged = unmerged ---- */

static void merged(const char *device) {
    lgpu_model *m = load(NULL, device);
    lgpu_lora *a = random_adapter(m, 4, 8, LGPU_LORA_ALL_TARGETS, 61, 0.2f);
    lgpu_lora *b = random_adapter(m, 2, 4, (1u << LGPU_LORA_K) | (1u << LGPU_LORA_DOWN), 62, 0.2f);
    char dir[512], pa[600], pb[600], f32[600], q8[600], bq8[600];
    assert_non_null(tu_tmpdir_create("lora-merge", dir, sizeof dir));
    snprintf(pa, sizeof pa, "%s/a", dir);
    snprintf(pb, sizeof pb, "%s/b.gguf", dir);
    snprintf(f32, sizeof f32, "%s/merged-f32.gguf", dir);
    snprintf(q8, sizeof q8, "%s/merged-q8_0.gguf", dir);
    snprintf(bq8, sizeof bq8, "%s/merged-f32-quantized.gguf", dir);
    TU_OK(lgpu_lora_save(a, pa, NULL));
    TU_OK(lgpu_lora_save(b, pb, NULL));
    const char *paths[2] = {pa, pb};
    const float scales[2] = {0.9f, -0.6f};
    TU_OK(lgpu_merge_gguf(tu_model_path("stories260K.gguf"), paths, scales, 2, f32,
                          &(lgpu_merge_opts){.out_type = -1}));
    TU_OK(lgpu_merge_gguf(tu_model_path("stories260K.gguf"), paths, scales, 2, q8,
                          &(lgpu_merge_opts){.out_type = LGPU_TYPE_Q8_0}));
    /* merging to Q8_0 is merging, then quantizing */
    TU_OK(lgpu_quantize_gguf(f32, bq8, LGPU_TYPE_Q8_0, NULL, NULL));

    float un[9 * V], mf[9 * V], mq[9 * V], plain[9 * V], pq[9 * V];
    lgpu_ctx *c = make_ctx(m, 2);
    int s = open_seq(c, a, b, scales[0], scales[1]), s0 = open_seq(c, NULL, NULL, 0, 0);
    decode_all(c, s, PROMPT, 9, un);
    decode_all(c, s0, PROMPT, 9, plain);
    lgpu_ctx_destroy(c);
    const char *files[3] = {f32, q8, bq8};
    float *outs[3] = {mf, mq, pq};
    for (int i = 0; i < 3; i++) {
        lgpu_model *mm = load(files[i], device);
        assert_non_null(lgpu_model_tokenizer(mm)); /* the tokenizer came along */
        assert_int_equal(lgpu_model_hparams(mm)->n_vocab, V);
        c = make_ctx(mm, 1);
        int q;
        TU_OK(lgpu_seq_create(c, &q));
        decode_all(c, q, PROMPT, 9, outs[i]);
        lgpu_ctx_destroy(c);
        if (i == 1) assert_non_null(strstr(lgpu_model_desc(mm), "Q8_0"));
        lgpu_model_destroy(mm);
    }
    double ef = rel_err(mf, un, 9 * V), eq = rel_err(mq, un, 9 * V), nq = tu_nmse(mq, un, 9 * V);
    double moved = rel_err(plain, un, 9 * V);
    print_message("%s: merged F32 vs unmerged: max |diff| / max |logit| %.2e (tolerance 1e-5); merged Q8_0 vs "
                  "unmerged: %.2e, NMSE %.2e (tolerance 0.1 of the adapters' effect, 5e-3); the adapters move the "
                  "logits by %.2f\n", lgpu_model_desc(m), ef, eq, nq, moved);
    assert_true(ef <= 1e-5);
    /* Q8_0 rounds each weight to 1/254 of its block's largest: this tiny
     * model with a strong random adapter amplifies that to a few % of the
     * largest logit, still far below what the adapters change */
    assert_true(eq <= 0.1 * moved && nq <= 5e-3);
    assert_memory_equal(mq, pq, sizeof mq);
    assert_true(moved > 0.05);
    /* errors: no adapters adapt anything of another file type; a non-GGUF base */
    assert_int_equal(lgpu_merge_gguf(tu_model_path("stories260K.bin"), paths, scales, 2, q8, NULL), LGPU_EUNSUPPORTED);
    assert_non_null(strstr(lgpu_last_error(), "convert"));
    lgpu_lora_destroy(a);
    lgpu_lora_destroy(b);
    lgpu_model_destroy(m);
    tu_tmpdir_remove(dir);
}
static void test_merge_default(void **state) { merged(NULL); }
static void test_merge_cpu(void **state) { merged("cpu"); }

/* ---- (g) prefixes, defaults, lifetimes, bad calls ---- */

static void test_prefix_defaults_errors(void **state) {
    lgpu_model *m = load(NULL, NULL);
    lgpu_lora *x = random_adapter(m, 4, 8, LGPU_LORA_ALL_TARGETS, 71, 0.2f);
    /* blocks of 4 tokens: the 9-token prompt caches two full blocks (batch
     * sizes already compiled by the other tests) */
    lgpu_ctx *c = make_ctx_bs(m, 4, 4);
    const int32_t *prompt = PROMPT;
    float l1[9 * V], l2[9 * V];
    /* a plain sequence caches the full blocks of the prompt */
    int p = open_seq(c, NULL, NULL, 0, 0);
    decode_all(c, p, prompt, 9, l1);
    /* an adapter sequence must not attach them; another one with the same adapter may */
    int s = open_seq(c, x, NULL, 1, 0);
    assert_int_equal(lgpu_seq_reuse_prefix(c, s, prompt, 9), 0);
    decode_all(c, s, prompt, 9, l1);
    int t = open_seq(c, x, NULL, 1, 0);
    assert_int_equal(lgpu_seq_reuse_prefix(c, t, prompt, 9), 8);
    decode_all(c, t, prompt + 8, 1, l2);
    assert_int_equal(tu_compare("reused prefix", l2, l1 + 8 * V, V, 1e-4, 1e-4), 0);
    int u = open_seq(c, x, NULL, 0.5f, 0); /* another scale: other K/V */
    assert_int_equal(lgpu_seq_reuse_prefix(c, u, prompt, 9), 0);
    /* set on a non-empty sequence */
    const lgpu_lora *one[1] = {x};
    assert_int_equal(lgpu_seq_set_adapters(c, s, one, NULL, 1), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "empty"));
    lgpu_seq_destroy(c, p);
    lgpu_seq_destroy(c, s);
    lgpu_seq_destroy(c, t);
    lgpu_seq_destroy(c, u);

    /* too many, NULL, NaN scale */
    int q;
    TU_OK(lgpu_seq_create(c, &q));
    const lgpu_lora *nine[9] = {x, x, x, x, x, x, x, x, x};
    assert_int_equal(lgpu_seq_set_adapters(c, q, nine, NULL, 9), LGPU_EINVAL);
    const lgpu_lora *none[1] = {NULL};
    assert_int_equal(lgpu_seq_set_adapters(c, q, none, NULL, 1), LGPU_EINVAL);
    float nan_scale = NAN;
    assert_int_equal(lgpu_seq_set_adapters(c, q, one, &nan_scale, 1), LGPU_EINVAL);
    assert_int_equal(lgpu_seq_n_adapters(c, q), 0);
    lgpu_seq_destroy(c, q);

    /* the context default reaches new sequences; the adapter may go away */
    TU_OK(lgpu_ctx_set_adapters(c, one, NULL, 1));
    lgpu_lora_destroy(x);
    TU_OK(lgpu_seq_create(c, &q));
    assert_int_equal(lgpu_seq_n_adapters(c, q), 1);
    decode_all(c, q, prompt, 9, l2);
    assert_memory_equal(l2 + 8 * V, l1 + 8 * V, V * sizeof(float));
    lgpu_seq_destroy(c, q);
    TU_OK(lgpu_ctx_set_adapters(c, NULL, NULL, 0));
    TU_OK(lgpu_seq_create(c, &q));
    assert_int_equal(lgpu_seq_n_adapters(c, q), 0);
    lgpu_ctx_destroy(c);

    /* spec strings */
    char *path;
    float sc;
    TU_OK(lgpu_lora_spec_parse("out/adapter", &path, &sc));
    assert_string_equal(path, "out/adapter");
    assert_true(sc == 1.0f);
    free(path);
    TU_OK(lgpu_lora_spec_parse("a:b/c.gguf:0.25", &path, &sc));
    assert_string_equal(path, "a:b/c.gguf");
    assert_true(sc == 0.25f);
    free(path);
    TU_OK(lgpu_lora_spec_parse("C:dir", &path, &sc));
    assert_string_equal(path, "C:dir");
    free(path);
    assert_int_equal(lgpu_lora_spec_parse(":2", &path, &sc), LGPU_EINVAL);
    lgpu_model_destroy(m);
}

/* Many adapters in one context: slots are reused once no sequence holds them. */
static void test_many_adapters(void **state) {
    lgpu_model *m = load(NULL, NULL);
    lgpu_ctx *c = make_ctx(m, 2);
    float ref[V], got[V];
    lgpu_lora *keep = random_adapter(m, 2, 2, 1u << LGPU_LORA_O, 80, 0.2f);
    int k = open_seq(c, keep, NULL, 1, 0);
    decode_all(c, k, PROMPT, 1, ref);
    for (int i = 0; i < 70; i++) { /* more than the 64 slots */
        lgpu_lora *a = random_adapter(m, 1 + i % 3, 2, 1u << (i % NT), 100 + i, 0.2f);
        int s = open_seq(c, a, NULL, 1, 0);
        lgpu_lora_destroy(a);
        decode_all(c, s, PROMPT, 1, got);
        lgpu_seq_destroy(c, s);
    }
    /* the sequence that held its adapter all along still sees it */
    lgpu_seq_destroy(c, k);
    k = open_seq(c, keep, NULL, 1, 0);
    decode_all(c, k, PROMPT, 1, got);
    assert_memory_equal(got, ref, sizeof ref);
    lgpu_ctx_destroy(c);
    lgpu_lora_destroy(keep);
    lgpu_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_b_default),        cmocka_unit_test(test_zero_b_cpu),
        cmocka_unit_test(test_torch_default),         cmocka_unit_test(test_torch_cpu),
        cmocka_unit_test(test_mixed_batch_default),   cmocka_unit_test(test_mixed_batch_cpu),
        cmocka_unit_test(test_stacked_default),       cmocka_unit_test(test_stacked_cpu),
        cmocka_unit_test(test_peft_vs_gguf_default),  cmocka_unit_test(test_peft_vs_gguf_cpu),
        cmocka_unit_test(test_merge_default),         cmocka_unit_test(test_merge_cpu),
        cmocka_unit_test(test_prefix_defaults_errors), cmocka_unit_test(test_many_adapters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
