/* llama.cpp GGUF LoRA adapters (convert_lora_to_gguf.py's layout), read and
 * written: general.architecture "llama", general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha; per adapted projection
 * "blk.N.<attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down>.weight.lora_a"
 * with GGUF dims (in, r) = A (r, in) and ".lora_b" with dims (r, out) = B
 * (out, r). Rows are in the model's GGUF order (q/k permuted as the base
 * weights are), which is how we keep them, so nothing is permuted here.
 * llama.cpp scales by alpha / r (r = lora_b's first dim), as PEFT does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/gguf.h"
#include "model/lora_internal.h"
#include "model/lora_io.h"
#include "quant/quant.h"

static const char *const gguf_names[LGPU_LORA_N_TARGETS] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                            "ffn_gate", "ffn_up", "ffn_down"};

const char *lgpu_lora_gguf_name(lgpu_lora_target t) {
    return (unsigned)t < LGPU_LORA_N_TARGETS ? gguf_names[t] : "?";
}

static void tensor_name(char *out, size_t len, uint32_t l, lgpu_lora_target t, bool b) {
    snprintf(out, len, "blk.%u.%s.weight.lora_%c", l, gguf_names[t], b ? 'b' : 'a');
}

int lgpu_lora_save_gguf(const lgpu_lora *a, const char *path, const char *base_model) {
    lgpu_gguf_writer *w = NULL;
    float **data = calloc((size_t)a->n_layers * LGPU_LORA_N_TARGETS * 2, sizeof *data);
    if (!data) return lgpu_set_error(LGPU_ENOMEM, "%s", path);
    int st = lgpu_gguf_writer_create(&w);
    if (!st) st = lgpu_gguf_set_str(w, "general.architecture", "llama");
    if (!st) st = lgpu_gguf_set_str(w, "general.type", "adapter");
    if (!st) st = lgpu_gguf_set_str(w, "adapter.type", "lora");
    if (!st) st = lgpu_gguf_set_f32(w, "adapter.lora.alpha", a->scale * (float)a->rank);
    if (!st && base_model) st = lgpu_gguf_set_str(w, "general.base_model.0.name", base_model);
    size_t k = 0;
    for (uint32_t l = 0; l < a->n_layers && !st; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS && !st; t++) {
            const lgpu_lora_mat *mt = &a->layer[l].mat[t];
            if (!mt->on) continue;
            for (int b = 0; b < 2 && !st; b++, k++) {
                uint32_t rows = b ? mt->out : a->rank, cols = b ? a->rank : mt->in;
                if (!(data[k] = malloc((size_t)rows * cols * sizeof(float)))) {
                    st = lgpu_set_error(LGPU_ENOMEM, "%s", path);
                    break;
                }
                if ((st = lgpu_lora_get(a, l, (lgpu_lora_target)t, b, data[k]))) break;
                char name[96];
                tensor_name(name, sizeof name, l, (lgpu_lora_target)t, b);
                int64_t ne[2] = {cols, rows};
                st = lgpu_gguf_writer_add_tensor(w, name, LGPU_TYPE_F32, 2, ne, data[k]);
            }
        }
    if (!st) st = lgpu_gguf_writer_write_file(w, path);
    lgpu_gguf_writer_destroy(w);
    for (size_t i = 0; i < (size_t)a->n_layers * LGPU_LORA_N_TARGETS * 2; i++) free(data[i]);
    free(data);
    return st;
}

int lgpu_lora_read_gguf(lgpu_model *model, const char *path, lgpu_lora **out) {
    lgpu_gguf *g = NULL;
    int st = lgpu_gguf_create(path, &g);
    if (st) return st;
    lgpu_lora *a = NULL;
    float *buf = NULL;
    const char *type = lgpu_gguf_get_str(g, "general.type", "");
    const char *atype = lgpu_gguf_get_str(g, "adapter.type", "");
    const char *arch = lgpu_gguf_get_str(g, "general.architecture", "");
    if (strcmp(type, "adapter") || strcmp(atype, "lora")) {
        st = lgpu_set_error(LGPU_EFORMAT, "%s: not a LoRA adapter (general.type '%s', adapter.type '%s')", path, type,
                            atype);
        goto done;
    }
    if (strcmp(arch, "llama")) {
        st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s: adapter for architecture '%s', the model is llama", path, arch);
        goto done;
    }
    /* targets and rank from the tensors */
    lgpu_lora_params p = {0};
    for (uint32_t l = 0; l < model->hp.n_layers; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS; t++) {
            char name[96];
            tensor_name(name, sizeof name, l, (lgpu_lora_target)t, true);
            const lgpu_gguf_tensor *tb = lgpu_gguf_find_tensor(g, name);
            if (!tb) continue;
            p.targets |= 1u << t;
            if (!p.rank) p.rank = (uint32_t)tb->ne[0];
            else if (p.rank != (uint32_t)tb->ne[0]) {
                st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s: %s has rank %lld, other tensors %u: per-tensor ranks are "
                                    "not supported", path, name, (long long)tb->ne[0], p.rank);
                goto done;
            }
        }
    if (!p.targets) {
        st = lgpu_set_error(LGPU_EFORMAT, "%s: no blk.N.*.weight.lora_a/lora_b tensors for this model's layers", path);
        goto done;
    }
    double alpha = 0;
    int64_t ka = lgpu_gguf_find_key(g, "adapter.lora.alpha");
    if (ka >= 0 && lgpu_gguf_kv_float(g, ka, &alpha)) {
        st = lgpu_set_error(LGPU_EFORMAT, "%s: adapter.lora.alpha is not a number", path);
        goto done;
    }
    /* llama.cpp: no alpha means a scale of 1 */
    p.alpha = alpha > 0 ? (float)alpha : (float)p.rank;
    if ((st = lgpu_lora_create(model, &p, &a))) goto done;
    for (uint32_t l = 0; l < a->n_layers && !st; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS && !st; t++) {
            const lgpu_lora_mat *mt = &a->layer[l].mat[t];
            if (!mt->on) continue;
            for (int b = 0; b < 2 && !st; b++) {
                char name[96];
                tensor_name(name, sizeof name, l, (lgpu_lora_target)t, b);
                const lgpu_gguf_tensor *tt = lgpu_gguf_find_tensor(g, name);
                uint32_t rows = b ? mt->out : a->rank, cols = b ? a->rank : mt->in;
                if (!tt) {
                    st = lgpu_set_error(LGPU_EFORMAT, "%s: tensor %s is missing", path, name);
                    break;
                }
                if (tt->n_dims != 2 || tt->ne[0] != cols || tt->ne[1] != rows ||
                    (tt->type != LGPU_TYPE_F32 && tt->type != LGPU_TYPE_F16 && tt->type != LGPU_TYPE_BF16)) {
                    st = lgpu_set_error(LGPU_EFORMAT, "%s: tensor %s is %s (%lld, %lld), expected f32/f16/bf16 (%u, %u) "
                                        "for this model", path, name, lgpu_type_name(tt->type) ? lgpu_type_name(tt->type)
                                        : "?", (long long)tt->ne[0], (long long)tt->ne[1], cols, rows);
                    break;
                }
                float *nb = realloc(buf, (size_t)rows * cols * sizeof *buf);
                if (!nb) {
                    st = lgpu_set_error(LGPU_ENOMEM, "%s", path);
                    break;
                }
                buf = nb;
                size_t rb = lgpu_type_row_bytes(tt->type, cols);
                for (uint32_t r = 0; r < rows; r++)
                    lgpu_dequantize_row(tt->type, (const uint8_t *)tt->data + r * rb, buf + (size_t)r * cols, cols);
                st = lgpu_lora_set(a, l, (lgpu_lora_target)t, b, buf);
            }
        }
done:
    free(buf);
    if (st) lgpu_lora_destroy(a);
    else *out = a;
    lgpu_gguf_destroy(g);
    return st;
}
