/* lgpu_quantize_gguf: GGUF -> GGUF with the weight matrices in another type. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "model/convert_internal.h"
#include "model/gguf_llama.h"
#include "quant/quant.h"

int lgpu_quantize_pick_type(int type, int64_t ne0) {
    if (lgpu_type_row_bytes(type, ne0)) return type;
    if ((type == LGPU_TYPE_Q4_K || type == LGPU_TYPE_Q6_K) && lgpu_type_row_bytes(LGPU_TYPE_Q8_0, ne0)) return LGPU_TYPE_Q8_0;
    return LGPU_TYPE_F16;
}

bool lgpu_quant_matrix_type_ok(int t) {
    return t == LGPU_TYPE_F32 || t == LGPU_TYPE_F16 || t == LGPU_TYPE_BF16 || t == LGPU_TYPE_Q8_0 ||
           t == LGPU_TYPE_Q4_0 || t == LGPU_TYPE_Q4_K || t == LGPU_TYPE_Q6_K;
}

int lgpu_quantize_gguf(const char *in, const char *out, int type, const lgpu_quantize_opts *opts,
                       lgpu_quantize_stats *stats) {
    lgpu_quantize_opts o = opts ? *opts : (lgpu_quantize_opts){0};
    lgpu_quantize_stats s = {0};
    if (!in || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_quantize_gguf: NULL path");
    if (!lgpu_quant_matrix_type_ok(type))
        return lgpu_set_error(LGPU_EINVAL, "quantize: target type %s is not one of q8_0, q4_0, q4_k, q6_k, f16, bf16, f32",
                              lgpu_type_name(type) ? lgpu_type_name(type) : "?");
    lgpu_gguf *g = NULL;
    lgpu_gguf_writer *w = NULL;
    int *dst = NULL;
    int st = lgpu_gguf_create(in, &g);
    if (!st) st = lgpu_gguf_writer_create(&w);
    if (st) goto done;
    int64_t n = lgpu_gguf_n_tensors(g);
    if (!(dst = calloc((size_t)(n ? n : 1), sizeof *dst))) {
        st = lgpu_set_error(LGPU_ENOMEM, "quantize: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < lgpu_gguf_n_kv(g); i++) {
        const char *k = lgpu_gguf_key(g, i);
        if (strcmp(k, "general.alignment") && strcmp(k, "general.file_type") && strcmp(k, "general.quantization_version") &&
            (st = lgpu_gguf_writer_copy_kv(w, g, i)))
            goto done;
    }
    int ft = lgpu_llama_ftype(type);
    if (ft >= 0 && (st = lgpu_gguf_set_u32(w, "general.file_type", (uint32_t)ft))) goto done;
    if (type != LGPU_TYPE_F32 && type != LGPU_TYPE_F16 && type != LGPU_TYPE_BF16 &&
        (st = lgpu_gguf_set_u32(w, "general.quantization_version", 2)))
        goto done;
    if (lgpu_gguf_alignment(g) != LGPU_GGUF_DEFAULT_ALIGNMENT &&
        (st = lgpu_gguf_writer_set_alignment(w, (uint32_t)lgpu_gguf_alignment(g))))
        goto done;
    lgpu_progress prog = {o.progress, o.ud, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        const lgpu_gguf_tensor *t = lgpu_gguf_tensor_at(g, i);
        int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        bool matrix = t->n_dims >= 2 && rows > 1;
        dst[i] = t->type;
        if (matrix && !lgpu_quant_matrix_type_ok(t->type)) {
            st = lgpu_set_error(LGPU_EUNSUPPORTED, "%s: tensor '%s' has type %s, which cannot be requantized", in, t->name,
                                lgpu_type_name(t->type));
            goto done;
        }
        if (matrix) {
            dst[i] = lgpu_quantize_pick_type(type, t->ne[0]);
            if (dst[i] != type) {
                s.n_fallback++;
                lgpu_notef(o.note, o.ud, "%s: row length %" PRId64 " is not a multiple of the %s block size %" PRId64 ", using %s",
                           t->name, t->ne[0], lgpu_type_name(type), lgpu_type_block_elems(type), lgpu_type_name(dst[i]));
            } else
                s.n_quantized++;
            if (lgpu_type_block_elems(t->type) > 1 && t->type != dst[i])
                lgpu_notef(o.note, o.ud, "%s: requantizing %s -> %s compounds the rounding error", t->name,
                           lgpu_type_name(t->type), lgpu_type_name(dst[i]));
        } else
            s.n_kept++;
        if ((st = lgpu_gguf_writer_add_tensor(w, t->name, dst[i], t->n_dims, t->ne, NULL))) goto done;
        prog.total += lgpu_type_row_bytes(dst[i], t->ne[0]) * (uint64_t)rows;
    }
    if ((st = lgpu_gguf_writer_begin(w, out))) goto done;
    for (int64_t i = 0; i < n; i++) {
        const lgpu_gguf_tensor *t = lgpu_gguf_tensor_at(g, i);
        if ((st = lgpu_stream_tensor(w, t->name, t->data, t->type, dst[i], t->ne[0], t->ne[1] * t->ne[2] * t->ne[3],
                                     o.nthreads, &prog)))
            goto done;
    }
    st = lgpu_gguf_writer_finish(w);
done:
    if (stats) *stats = s;
    free(dst);
    lgpu_gguf_writer_destroy(w);
    lgpu_gguf_destroy(g);
    return st;
}
