/* Hugging Face PEFT LoRA adapters: adapter_config.json and
 * adapter_model.safetensors, read and written.
 *
 * Tensor names: base_model.model.model.layers.N.{self_attn,mlp}.<module>.lora_{A,B}.weight,
 * A (r, in) and B (out, r), as PEFT saves a LlamaForCausalLM adapter.
 * Row order: GGUF stores the rows of q and k permuted for llama.cpp's
 * interleaved-pair RoPE (convert_hf_to_gguf's permute: HF row
 * h*hd + a*hd/2 + i is GGUF row h*hd + 2i + a); our adapters live in the
 * model's order, so the B matrices of q_proj and k_proj are permuted on the
 * way out and back on the way in (A, on the input side, is unaffected). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "format/safetensors.h"
#include "format/safetensors_write.h"
#include "model/lora_internal.h"
#include "model/lora_io.h"
#include "quant/quant.h"

#define CONFIG_NAME "adapter_config.json"
#define WEIGHTS_NAME "adapter_model.safetensors"
#define QUANT_NAME "quantization_config.json"

static const char *module_group(lgpu_lora_target t) { return t <= LGPU_LORA_O ? "self_attn" : "mlp"; }

static void tensor_name(char *out, size_t len, uint32_t l, lgpu_lora_target t, bool b) {
    snprintf(out, len, "base_model.model.model.layers.%u.%s.%s.lora_%c.weight", l, module_group(t),
             lgpu_lora_target_peft_name(t), b ? 'B' : 'A');
}

/* Heads whose rows the GGUF layout permutes for target t (0: none). */
static uint32_t permuted_heads(const lgpu_lora *a, lgpu_lora_target t) {
    if (t == LGPU_LORA_Q) return a->model->hp.n_heads;
    if (t == LGPU_LORA_K) return a->model->hp.n_kv_heads;
    return 0;
}

/* Rows of `src` (n_rows of `cols` floats, heads of n_rows/heads rows each)
 * reordered GGUF -> HF (to_hf) or HF -> GGUF into dst. */
static void permute_rows(const float *src, float *dst, uint32_t n_rows, uint32_t cols, uint32_t heads, bool to_hf) {
    uint32_t hd = n_rows / heads, half = hd / 2;
    for (uint32_t h = 0; h < heads; h++)
        for (uint32_t i = 0; i < half; i++)
            for (uint32_t a = 0; a < 2; a++) {
                size_t g = (size_t)h * hd + 2 * i + a, f = (size_t)h * hd + a * half + i;
                memcpy(dst + (to_hf ? f : g) * cols, src + (to_hf ? g : f) * cols, cols * sizeof *dst);
            }
}

static int mkdir_p(const char *dir) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat sb;
        if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return 0;
        return lgpu_set_error(LGPU_EIO, "%s exists and is not a folder", dir);
    }
    return lgpu_set_error(LGPU_EIO, "%s: cannot create the folder: %s", dir, strerror(errno));
}

/* A QLoRA base (lgpu_model_params.quantize_nf4): the BitsAndBytesConfig
 * that reproduces it, as transformers writes it (to_dict / to_json_file;
 * the "quantization_config" of a model's config.json); NULL for other
 * bases. */
static json_t *bnb_config(const lgpu_lora *a) {
    lgpu_model_nf4_info q = lgpu_model_nf4(a->model);
    if (!q.n_nf4) return NULL;
    const char *ct = q.compute_type == LGPU_TYPE_F16 ? "float16" : q.compute_type == LGPU_TYPE_BF16 ? "bfloat16"
                                                                                                   : "float32";
    return json_pack("{s:b, s:b, s:s, s:s, s:s, s:b, s:b, s:b, s:n, s:f, s:b, s:b, s:s}", "_load_in_4bit", 1,
                     "_load_in_8bit", 0, "bnb_4bit_compute_dtype", ct, "bnb_4bit_quant_storage", "uint8",
                     "bnb_4bit_quant_type", "nf4", "bnb_4bit_use_double_quant", q.double_quant,
                     "llm_int8_enable_fp32_cpu_offload", 0, "llm_int8_has_fp16_weight", 0, "llm_int8_skip_modules",
                     "llm_int8_threshold", 6.0, "load_in_4bit", 1, "load_in_8bit", 0, "quant_method", "bitsandbytes");
}

static int write_json(json_t *c, const char *path) {
    if (!c) return lgpu_set_error(LGPU_ENOMEM, "%s", path);
    char *text = json_dumps(c, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) return lgpu_set_error(LGPU_ENOMEM, "%s", path);
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps' buffer has room: its terminating NUL */
    int st = lgpu_write_file_atomic(path, text, n + 1);
    free(text);
    return st;
}

/* A QLoRA base's BitsAndBytesConfig goes in adapter_config.json under
 * "quantization_config" (PEFT has no key of its own for it: PEFT >= 0.14
 * drops unknown keys with a warning) and, the same dict, in
 * quantization_config.json beside it (BitsAndBytesConfig.from_json_file
 * reads it back). docs/TRAINING.md. */
static int write_config(const lgpu_lora *a, const char *path, const char *base_model) {
    json_t *targets = json_array();
    for (int t = 0; t < LGPU_LORA_N_TARGETS; t++)
        if (a->targets & (1u << t)) json_array_append_new(targets, json_string(lgpu_lora_target_peft_name(t)));
    json_t *c = json_pack("{s:s, s:s?, s:s, s:s, s:b, s:b, s:b, s:i, s:f, s:f, s:o, s:b, s:b, s:n, s:n, s:n, s:{}, "
                          "s:{}, s:n}",
                          "peft_type", "LORA", "base_model_name_or_path", base_model, "task_type", "CAUSAL_LM", "bias",
                          "none", "fan_in_fan_out", 0, "inference_mode", 1, "init_lora_weights", 1, "r",
                          (int)a->rank, "lora_alpha", (double)a->alpha, "lora_dropout", (double)a->dropout,
                          "target_modules", targets, "use_rslora", 0, "use_dora", 0, "modules_to_save",
                          "layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern", "revision");
    if (!c) return lgpu_set_error(LGPU_ENOMEM, "%s", path);
    json_t *q = bnb_config(a);
    if (q) json_object_set_new(c, "quantization_config", q);
    int st = write_json(c, path);
    json_decref(c);
    return st;
}

int lgpu_lora_save_peft(const lgpu_lora *a, const char *dir, const char *base_model) {
    int st = mkdir_p(dir);
    if (st) return st;
    lgpu_st_writer *w = NULL;
    float *buf = NULL, *perm = NULL;
    if ((st = lgpu_st_writer_create(&w)) || (st = lgpu_st_writer_meta(w, "format", "pt"))) goto done;
    for (uint32_t l = 0; l < a->n_layers; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
            const lgpu_lora_mat *mt = &a->layer[l].mat[t];
            if (!mt->on) continue;
            for (int b = 0; b < 2; b++) {
                uint32_t rows = b ? mt->out : a->rank, cols = b ? a->rank : mt->in;
                size_t n = (size_t)rows * cols;
                float *nb = realloc(buf, n * sizeof *buf), *np = nb ? realloc(perm, n * sizeof *perm) : NULL;
                if (nb) buf = nb;
                if (np) perm = np;
                if (!nb || !np) {
                    st = lgpu_set_error(LGPU_ENOMEM, "%s: adapter tensors", dir);
                    goto done;
                }
                if ((st = lgpu_lora_get(a, l, (lgpu_lora_target)t, b, buf))) goto done;
                uint32_t heads = b ? permuted_heads(a, (lgpu_lora_target)t) : 0;
                if (heads) permute_rows(buf, perm, rows, cols, heads, true);
                char name[160];
                tensor_name(name, sizeof name, l, (lgpu_lora_target)t, b);
                int64_t shape[2] = {rows, cols};
                if ((st = lgpu_st_writer_add(w, name, "F32", 2, shape, heads ? perm : buf, n * sizeof *buf)))
                    goto done;
            }
        }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, WEIGHTS_NAME);
    if ((st = lgpu_st_writer_write(w, path))) goto done;
    snprintf(path, sizeof path, "%s/%s", dir, CONFIG_NAME);
    if ((st = write_config(a, path, base_model))) goto done;
    snprintf(path, sizeof path, "%s/%s", dir, QUANT_NAME);
    json_t *q = bnb_config(a);
    if (q) {
        st = write_json(q, path);
        json_decref(q);
    } else if (unlink(path) != 0 && errno != ENOENT) { /* a folder saved over: no stale file */
        st = lgpu_set_error(LGPU_EIO, "%s: %s", path, strerror(errno));
    }
done:
    lgpu_st_writer_destroy(w);
    free(buf);
    free(perm);
    return st;
}

/* ---- reading ---- */

/* The numbers a PEFT config gives, checked for what we support. */
static int read_config(const char *path, lgpu_lora_params *p, float *scale) {
    json_error_t err;
    json_t *c = json_load_file(path, 0, &err);
    if (!c) return lgpu_set_error(LGPU_EFORMAT, "%s: line %d: %s", path, err.line, err.text);
    int st = 0;
    json_t *type = json_object_get(c, "peft_type"), *r = json_object_get(c, "r");
    json_t *alpha = json_object_get(c, "lora_alpha"), *tm = json_object_get(c, "target_modules");
    json_t *drop = json_object_get(c, "lora_dropout"), *rs = json_object_get(c, "use_rslora");
    if (type && !(json_is_string(type) && !strcmp(json_string_value(type), "LORA")))
        st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s: peft_type %s: only LORA adapters are supported", path,
                            json_is_string(type) ? json_string_value(type) : "(not a string)");
    else if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 4096)
        st = lgpu_set_error(LGPU_EFORMAT, "%s: field \"r\" must be an integer rank in 1..4096", path);
    else if (alpha && !json_is_number(alpha))
        st = lgpu_set_error(LGPU_EFORMAT, "%s: field \"lora_alpha\" must be a number", path);
    if (st) goto done;
    const char *unsupported[] = {"use_dora", "fan_in_fan_out"};
    for (size_t i = 0; i < 2 && !st; i++)
        if (json_is_true(json_object_get(c, unsupported[i])))
            st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s: \"%s\": true is not supported", path, unsupported[i]);
    json_t *bias = json_object_get(c, "bias");
    if (!st && bias && !(json_is_string(bias) && !strcmp(json_string_value(bias), "none")))
        st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s: \"bias\" must be \"none\"", path);
    const char *patterns[] = {"rank_pattern", "alpha_pattern"};
    for (size_t i = 0; i < 2 && !st; i++) {
        json_t *pt = json_object_get(c, patterns[i]);
        if (pt && !json_is_null(pt) && !(json_is_object(pt) && json_object_size(pt) == 0))
            st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s: \"%s\": per-module ranks and alphas are not supported", path,
                                patterns[i]);
    }
    if (st) goto done;
    p->rank = (uint32_t)json_integer_value(r);
    p->alpha = alpha ? (float)json_number_value(alpha) : 8.0f;
    p->dropout = json_is_number(drop) ? (float)json_number_value(drop) : 0.0f;
    *scale = json_is_true(rs) ? p->alpha / sqrtf((float)p->rank) : p->alpha / (float)p->rank;
    p->targets = 0;
    if (json_is_array(tm)) {
        size_t i;
        json_t *v;
        json_array_foreach(tm, i, v) {
            uint32_t m;
            if (!json_is_string(v) || lgpu_lora_targets_parse(json_string_value(v), &m)) {
                st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s: target_modules[%zu]: %s is not one of q_proj, k_proj, "
                                    "v_proj, o_proj, gate_proj, up_proj, down_proj", path, i,
                                    json_is_string(v) ? json_string_value(v) : "(not a string)");
                goto done;
            }
            p->targets |= m;
        }
    } else if (json_is_string(tm) && !strcmp(json_string_value(tm), "all-linear")) {
        p->targets = LGPU_LORA_ALL_TARGETS;
    } else {
        /* a regex string: the tensors present decide (read_tensors) */
        p->targets = LGPU_LORA_ALL_TARGETS;
    }
done:
    json_decref(c);
    return st;
}

/* Converts a tensor of F32/F16/BF16 elements to floats. */
static void to_f32(const lgpu_st_tensor *t, float *dst, size_t n) {
    const uint8_t *p = t->data;
    for (size_t i = 0; i < n; i++) {
        if (t->type == LGPU_TYPE_F32) memcpy(&dst[i], p + 4 * i, 4);
        else {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->type == LGPU_TYPE_F16 ? lgpu_f16_to_f32(h) : lgpu_bf16_to_f32(h);
        }
    }
}

int lgpu_lora_read_peft(lgpu_model *model, const char *path, lgpu_lora **out) {
    /* path: the directory, or the safetensors file with the config beside it */
    char dir[4096], cfg[4200], wts[4200];
    struct stat sb;
    if (stat(path, &sb) != 0) return lgpu_set_error(LGPU_ENOTFOUND, "%s: %s", path, strerror(errno));
    snprintf(dir, sizeof dir, "%s", path);
    if (!S_ISDIR(sb.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        snprintf(wts, sizeof wts, "%s", path);
    } else {
        snprintf(wts, sizeof wts, "%s/%s", dir, WEIGHTS_NAME);
    }
    snprintf(cfg, sizeof cfg, "%s/%s", dir, CONFIG_NAME);
    lgpu_lora_params p = {0};
    float scale = 0;
    int st = read_config(cfg, &p, &scale);
    if (st) return st;
    lgpu_safetensors *s = NULL;
    if ((st = lgpu_safetensors_create(wts, &s))) return st;
    /* which targets the file really holds */
    uint32_t present = 0;
    for (int64_t i = 0; i < lgpu_safetensors_n_tensors(s); i++) {
        const char *name = lgpu_safetensors_tensor_at(s, i)->name;
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
            char pat[64];
            snprintf(pat, sizeof pat, ".%s.lora_", lgpu_lora_target_peft_name(t));
            if (strstr(name, pat)) present |= 1u << t;
        }
    }
    p.targets &= present;
    if (!p.targets) {
        st = lgpu_set_error(LGPU_EFORMAT, "%s: no LoRA tensors of q/k/v/o/gate/up/down projections", wts);
        goto done;
    }
    lgpu_lora *a = NULL;
    if ((st = lgpu_lora_create(model, &p, &a))) goto done;
    a->scale = scale;
    float *buf = NULL, *perm = NULL;
    for (uint32_t l = 0; l < a->n_layers && !st; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS && !st; t++) {
            const lgpu_lora_mat *mt = &a->layer[l].mat[t];
            if (!mt->on) continue;
            for (int b = 0; b < 2 && !st; b++) {
                char name[160];
                tensor_name(name, sizeof name, l, (lgpu_lora_target)t, b);
                const lgpu_st_tensor *tt = lgpu_safetensors_find(s, name);
                uint32_t rows = b ? mt->out : a->rank, cols = b ? a->rank : mt->in;
                if (!tt) {
                    st = lgpu_set_error(LGPU_EFORMAT, "%s: tensor %s is missing", wts, name);
                    break;
                }
                if (tt->type < 0 || tt->n_dims != 2 || tt->shape[0] != rows || tt->shape[1] != cols) {
                    st = lgpu_set_error(LGPU_EFORMAT, "%s: tensor %s is %s of %u dims, expected F32/F16/BF16 (%u, %u) "
                                        "for this model", wts, name, tt->dtype, tt->n_dims, rows, cols);
                    break;
                }
                size_t n = (size_t)rows * cols;
                float *nb = realloc(buf, n * sizeof *buf), *np = nb ? realloc(perm, n * sizeof *perm) : NULL;
                if (nb) buf = nb;
                if (np) perm = np;
                if (!nb || !np) {
                    st = lgpu_set_error(LGPU_ENOMEM, "%s", wts);
                    break;
                }
                to_f32(tt, buf, n);
                uint32_t heads = b ? permuted_heads(a, (lgpu_lora_target)t) : 0;
                if (heads) permute_rows(buf, perm, rows, cols, heads, false);
                st = lgpu_lora_set(a, l, (lgpu_lora_target)t, b, heads ? perm : buf);
            }
        }
    free(buf);
    free(perm);
    if (st) lgpu_lora_destroy(a);
    else *out = a;
done:
    lgpu_safetensors_destroy(s);
    return st;
}
