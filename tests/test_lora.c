/* LoRA adapters: layout and PEFT's initialisation, target names, and the
 * files — a PEFT adapter folder and a llama.cpp GGUF LoRA each written and
 * read back bit for bit, the PEFT file's names, shapes and q/k row order,
 * and bad files refused with the file and tensor named. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/safetensors.h"
#include "lgpu/gguf.h"
#include "lgpu/lora.h"
#include "test_util.h"

static lgpu_model *load_260k(void) {
    lgpu_model *m = NULL;
    lgpu_model_params mp = {.path = tu_model_path("stories260K.gguf")};
    TU_OK(lgpu_model_create(&mp, &m));
    return m;
}

static void test_targets_parse(void **state) {
    uint32_t m;
    TU_OK(lgpu_lora_targets_parse("q,v", &m));
    assert_int_equal(m, (1u << LGPU_LORA_Q) | (1u << LGPU_LORA_V));
    TU_OK(lgpu_lora_targets_parse("gate_proj, down", &m));
    assert_int_equal(m, (1u << LGPU_LORA_GATE) | (1u << LGPU_LORA_DOWN));
    TU_OK(lgpu_lora_targets_parse("all", &m));
    assert_int_equal(m, LGPU_LORA_ALL_TARGETS);
    assert_int_equal(lgpu_lora_targets_parse("q,xyz", &m), LGPU_EINVAL);
    assert_non_null(strstr(lgpu_last_error(), "'xyz'"));
    assert_string_equal(lgpu_lora_target_peft_name(LGPU_LORA_O), "o_proj");
}

/* A ~ U(+-1/sqrt(in)), B = 0, sizes r * (in + out) per projection. */
static void test_init(void **state) {
    lgpu_model *m = load_260k();
    lgpu_lora *a;
    lgpu_lora_params lp = {.rank = 4, .alpha = 8, .targets = (1u << LGPU_LORA_Q) | (1u << LGPU_LORA_DOWN), .seed = 3};
    TU_OK(lgpu_lora_create(m, &lp, &a));
    const lgpu_hparams *hp = lgpu_model_hparams(m);
    uint64_t want = (uint64_t)hp->n_layers * 4 * ((64 + 64) + (172 + 64));
    assert_int_equal(lgpu_lora_n_params(a), want);
    float A[4 * 172], Bm[64 * 4];
    TU_OK(lgpu_lora_get(a, 1, LGPU_LORA_DOWN, false, A));
    TU_OK(lgpu_lora_get(a, 1, LGPU_LORA_DOWN, true, Bm));
    float bound = 1.0f / sqrtf(172.0f), mx = 0;
    for (int i = 0; i < 4 * 172; i++) mx = fmaxf(mx, fabsf(A[i]));
    assert_true(mx <= bound && mx > 0.9f * bound);
    for (int i = 0; i < 64 * 4; i++) assert_true(Bm[i] == 0.0f);
    assert_int_equal(lgpu_lora_get(a, 1, LGPU_LORA_V, false, A), LGPU_ENOTFOUND);
    /* same seed, same values; another seed, others */
    lgpu_lora *a2, *a3;
    TU_OK(lgpu_lora_create(m, &lp, &a2));
    lp.seed = 4;
    TU_OK(lgpu_lora_create(m, &lp, &a3));
    float A2[4 * 172], A3[4 * 172];
    TU_OK(lgpu_lora_get(a2, 1, LGPU_LORA_DOWN, false, A2));
    TU_OK(lgpu_lora_get(a3, 1, LGPU_LORA_DOWN, false, A3));
    assert_memory_equal(A, A2, sizeof A);
    assert_memory_not_equal(A, A3, sizeof A);
    lgpu_lora_destroy(a);
    lgpu_lora_destroy(a2);
    lgpu_lora_destroy(a3);
    lgpu_model_destroy(m);
}

/* Fills every matrix with distinct values. */
static lgpu_lora *random_adapter(lgpu_model *m, uint32_t targets) {
    lgpu_lora *a;
    lgpu_lora_params lp = {.rank = 3, .alpha = 5, .targets = targets, .seed = 9};
    TU_OK(lgpu_lora_create(m, &lp, &a));
    tu_rng r;
    tu_rng_seed(&r, 77);
    float v[3 * 172];
    for (uint32_t l = 0; l < lgpu_model_hparams(m)->n_layers; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++)
            if (targets & (1u << t))
                for (int b = 0; b < 2; b++) {
                    tu_fill_uniform(&r, v, 3 * 172, -1, 1);
                    TU_OK(lgpu_lora_set(a, l, (lgpu_lora_target)t, b, v));
                }
    return a;
}

static void assert_same_adapter(const lgpu_lora *x, const lgpu_lora *y, uint32_t n_layers) {
    assert_int_equal(lgpu_lora_rank(x), lgpu_lora_rank(y));
    assert_true(lgpu_lora_alpha(x) == lgpu_lora_alpha(y));
    assert_int_equal(lgpu_lora_targets(x), lgpu_lora_targets(y));
    float u[3 * 172], w[3 * 172];
    for (uint32_t l = 0; l < n_layers; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++)
            if (lgpu_lora_targets(x) & (1u << t))
                for (int b = 0; b < 2; b++) {
                    uint32_t out, in;
                    TU_OK(lgpu_lora_target_shape(x, (lgpu_lora_target)t, &out, &in));
                    size_t n = (size_t)3 * (b ? out : in);
                    TU_OK(lgpu_lora_get(x, l, (lgpu_lora_target)t, b, u));
                    TU_OK(lgpu_lora_get(y, l, (lgpu_lora_target)t, b, w));
                    assert_memory_equal(u, w, n * sizeof *u);
                }
}

static void test_peft_round_trip(void **state) {
    lgpu_model *m = load_260k();
    lgpu_lora *a = random_adapter(m, LGPU_LORA_ALL_TARGETS);
    char dir[512], path[600];
    assert_non_null(tu_tmpdir_create("lora-peft", dir, sizeof dir));
    snprintf(path, sizeof path, "%s/adapter", dir);
    TU_OK(lgpu_lora_save(a, path, "stories260K"));
    /* the config as PEFT writes it */
    snprintf(path, sizeof path, "%s/adapter/adapter_config.json", dir);
    json_t *c = json_load_file(path, 0, NULL);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "peft_type")), "LORA");
    assert_int_equal(json_integer_value(json_object_get(c, "r")), 3);
    assert_true(json_number_value(json_object_get(c, "lora_alpha")) == 5.0);
    assert_string_equal(json_string_value(json_object_get(c, "bias")), "none");
    assert_string_equal(json_string_value(json_object_get(c, "base_model_name_or_path")), "stories260K");
    assert_int_equal(json_array_size(json_object_get(c, "target_modules")), 7);
    json_decref(c);
    /* names, shapes, and q's B rows in HF order: GGUF row h*hd + 2i + a is HF row h*hd + a*hd/2 + i */
    snprintf(path, sizeof path, "%s/adapter/adapter_model.safetensors", dir);
    lgpu_safetensors *s;
    TU_OK(lgpu_safetensors_create(path, &s));
    assert_int_equal(lgpu_safetensors_n_tensors(s), 5 * 7 * 2);
    const lgpu_st_tensor *tb = lgpu_safetensors_find(s, "base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight");
    const lgpu_st_tensor *ta = lgpu_safetensors_find(s, "base_model.model.model.layers.4.mlp.down_proj.lora_A.weight");
    assert_non_null(tb);
    assert_non_null(ta);
    assert_int_equal(tb->shape[0], 64);
    assert_int_equal(tb->shape[1], 3);
    assert_int_equal(ta->shape[0], 3);
    assert_int_equal(ta->shape[1], 172);
    float ours[64 * 3], file[64 * 3];
    TU_OK(lgpu_lora_get(a, 2, LGPU_LORA_Q, true, ours));
    memcpy(file, tb->data, sizeof file);
    const uint32_t hd = 8; /* stories260K: 8 heads of 8 */
    for (uint32_t row = 0; row < 64; row++) {
        uint32_t h = row / hd, j = row % hd, hf = h * hd + (j % 2) * (hd / 2) + j / 2;
        assert_memory_equal(&ours[row * 3], &file[hf * 3], 3 * sizeof(float));
    }
    lgpu_safetensors_destroy(s);
    /* read back: the folder, or its safetensors file */
    lgpu_lora *b;
    snprintf(path, sizeof path, "%s/adapter", dir);
    lgpu_lora_params lp = {.path = path};
    TU_OK(lgpu_lora_create(m, &lp, &b));
    assert_same_adapter(a, b, 5);
    lgpu_lora_destroy(b);
    snprintf(path, sizeof path, "%s/adapter/adapter_model.safetensors", dir);
    TU_OK(lgpu_lora_create(m, &lp, &b));
    assert_same_adapter(a, b, 5);
    lgpu_lora_destroy(b);
    lgpu_lora_destroy(a);
    tu_tmpdir_remove(dir);
    lgpu_model_destroy(m);
}

static void test_gguf_round_trip(void **state) {
    lgpu_model *m = load_260k();
    lgpu_lora *a = random_adapter(m, (1u << LGPU_LORA_K) | (1u << LGPU_LORA_UP));
    char dir[512], path[600];
    assert_non_null(tu_tmpdir_create("lora-gguf", dir, sizeof dir));
    snprintf(path, sizeof path, "%s/a.gguf", dir);
    TU_OK(lgpu_lora_save(a, path, "stories260K"));
    /* llama.cpp's keys and tensor layout */
    lgpu_gguf *g;
    TU_OK(lgpu_gguf_create(path, &g));
    assert_string_equal(lgpu_gguf_get_str(g, "general.type", ""), "adapter");
    assert_string_equal(lgpu_gguf_get_str(g, "adapter.type", ""), "lora");
    assert_true(lgpu_gguf_get_f32(g, "adapter.lora.alpha", 0) == 5.0f);
    assert_int_equal(lgpu_gguf_n_tensors(g), 5 * 2 * 2);
    const lgpu_gguf_tensor *la = lgpu_gguf_find_tensor(g, "blk.3.ffn_up.weight.lora_a");
    const lgpu_gguf_tensor *lb = lgpu_gguf_find_tensor(g, "blk.3.ffn_up.weight.lora_b");
    assert_non_null(la);
    assert_non_null(lb);
    assert_int_equal(la->ne[0], 64); /* (in, r) */
    assert_int_equal(la->ne[1], 3);
    assert_int_equal(lb->ne[0], 3); /* (r, out) */
    assert_int_equal(lb->ne[1], 172);
    lgpu_gguf_destroy(g);
    lgpu_lora *b;
    lgpu_lora_params lp = {.path = path};
    TU_OK(lgpu_lora_create(m, &lp, &b));
    assert_same_adapter(a, b, 5);
    lgpu_lora_destroy(b);
    lgpu_lora_destroy(a);
    tu_tmpdir_remove(dir);
    lgpu_model_destroy(m);
}

/* Files for another model, or malformed, are refused naming file and tensor. */
static void test_bad_files(void **state) {
    lgpu_model *m = load_260k();
    char dir[512], path[600];
    assert_non_null(tu_tmpdir_create("lora-bad", dir, sizeof dir));
    lgpu_lora *a;
    /* a config with an unsupported option */
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"use_dora\": true, \"target_modules\": [\"q_proj\"]}", f);
    fclose(f);
    lgpu_lora_params lp = {.path = dir};
    assert_int_equal(lgpu_lora_create(m, &lp, &a), LGPU_EUNSUPPORTED);
    assert_non_null(strstr(lgpu_last_error(), "use_dora"));
    /* the right config, tensors of the wrong shape */
    f = fopen(path, "w");
    fputs("{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"target_modules\": [\"q_proj\"]}", f);
    fclose(f);
    lgpu_lora *big;
    lgpu_lora_params bp = {.rank = 3, .alpha = 4, .targets = 1u << LGPU_LORA_Q};
    TU_OK(lgpu_lora_create(m, &bp, &big));
    char other[600];
    snprintf(other, sizeof other, "%s/other", dir);
    TU_OK(lgpu_lora_save(big, other, NULL));
    char src[700], dst[700];
    snprintf(src, sizeof src, "%s/adapter_model.safetensors", other);
    snprintf(dst, sizeof dst, "%s/adapter_model.safetensors", dir);
    assert_int_equal(rename(src, dst), 0);
    assert_int_equal(lgpu_lora_create(m, &lp, &a), LGPU_EFORMAT);
    assert_non_null(strstr(lgpu_last_error(), "q_proj.lora_A.weight"));
    assert_non_null(strstr(lgpu_last_error(), "adapter_model.safetensors"));
    /* a GGUF that is a model, not an adapter */
    lgpu_lora_params gp = {.path = tu_model_path("stories260K.gguf")};
    assert_int_equal(lgpu_lora_create(m, &gp, &a), LGPU_EFORMAT);
    assert_non_null(strstr(lgpu_last_error(), "not a LoRA adapter"));
    lgpu_lora_destroy(big);
    tu_tmpdir_remove(dir);
    lgpu_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targets_parse), cmocka_unit_test(test_init),
        cmocka_unit_test(test_peft_round_trip), cmocka_unit_test(test_gguf_round_trip),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
