/* Chunked, parallel type conversion of tensor data into a GGUF writer. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/parallel.h"
#include "model/convert_internal.h"
#include "quant/quant.h"

#define CHUNK_VALUES (8u << 20) /* F32 values converted per chunk (32 MB) */

void lgpu_progress_add(lgpu_progress *p, const char *tensor, uint64_t bytes) {
    if (!p) return;
    p->done += bytes;
    if (p->fn) p->fn(p->ud, tensor, p->done, p->total);
}

void lgpu_notef(lgpu_note_fn fn, void *ud, const char *fmt, ...) {
    if (!fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(ud, buf);
}

typedef struct {
    const uint8_t *src;
    int src_type, dst_type;
    int64_t ne0, row0;
    float *f32;
    uint8_t *out;
    size_t out_rb;
    atomic_int err;
} conv_job;

static void conv_rows(void *ctx, int64_t b, int64_t e, int thread) {
    conv_job *j = ctx;
    float *x = j->f32 + b * j->ne0;
    int st = lgpu_dequantize_rows(j->src_type, j->src, j->row0 + b, e - b, j->ne0, x);
    if (!st) st = lgpu_quantize_rows(j->dst_type, x, e - b, j->ne0, j->out + (size_t)b * j->out_rb);
    if (st) atomic_store(&j->err, st);
}

int lgpu_stream_tensor(lgpu_gguf_writer *w, const char *name, const void *src, int src_type, int dst_type, int64_t ne0,
                       int64_t rows, int nthreads, lgpu_progress *prog) {
    size_t src_rb = lgpu_type_row_bytes(src_type, ne0), dst_rb = lgpu_type_row_bytes(dst_type, ne0);
    if (!src_rb || !dst_rb)
        return lgpu_set_error(LGPU_EINVAL, "tensor %s: row length %lld does not fit %s -> %s", name, (long long)ne0,
                              lgpu_type_name(src_type), lgpu_type_name(dst_type));
    int64_t chunk = (int64_t)(CHUNK_VALUES / (uint64_t)ne0);
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    if (src_type == dst_type) {
        for (int64_t r = 0; r < rows; r += chunk) {
            int64_t n = rows - r < chunk ? rows - r : chunk;
            int st = lgpu_gguf_writer_tensor_data(w, (const uint8_t *)src + (size_t)r * src_rb, (size_t)n * src_rb);
            if (st) return st;
            lgpu_progress_add(prog, name, (uint64_t)n * dst_rb);
        }
        return 0;
    }
    conv_job j = {.src = src, .src_type = src_type, .dst_type = dst_type, .ne0 = ne0, .out_rb = dst_rb};
    j.f32 = malloc((size_t)chunk * (size_t)ne0 * sizeof(float));
    j.out = malloc((size_t)chunk * dst_rb);
    int st = 0;
    if (!j.f32 || !j.out) st = lgpu_set_error(LGPU_ENOMEM, "tensor %s: out of memory for a conversion chunk", name);
    for (int64_t r = 0; !st && r < rows; r += chunk) {
        int64_t n = rows - r < chunk ? rows - r : chunk;
        j.row0 = r;
        lgpu_parallel_for(nthreads > 0 ? nthreads : lgpu_default_threads(), n, conv_rows, &j);
        if ((st = atomic_load(&j.err))) {
            st = lgpu_set_error(st, "tensor %s: converting %s -> %s failed", name, lgpu_type_name(src_type),
                                lgpu_type_name(dst_type));
            break;
        }
        st = lgpu_gguf_writer_tensor_data(w, j.out, (size_t)n * dst_rb);
        lgpu_progress_add(prog, name, (uint64_t)n * dst_rb);
    }
    free(j.f32);
    free(j.out);
    return st;
}
