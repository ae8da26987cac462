/* C twin of shaders/lora.comp: the per-row LoRA update (engine/params/lora.h).
 * Entries of the row list are independent (each row appears once), so they
 * are split over threads without changing a bit. Dot products use 8 partial
 * sums combined in a fixed order: vectorisable, and the same for a row
 * whatever the batch or the thread count. */
#include <string.h>

#include "core/parallel.h"
#include "ref/ref_ops.h"

typedef struct {
    const lgpu_lora_op_params *p;
    const float *x, *w;
    const int32_t *rows, *table;
    float *y;
} lora_job;

static float dot(const float *a, const float *b, uint32_t n) {
    float acc[8] = {0};
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) acc[l] += a[i] * b[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static void rows(void *ctx, int64_t begin, int64_t end, int thread) {
    const lora_job *j = ctx;
    const lgpu_lora_op_params *p = j->p;
    const uint32_t words = 1 + 2 * p->n_stack;
    float u[LGPU_LORA_OP_MAX_RANK];
    (void)thread;
    for (int64_t e = begin; e < end; e++) {
        const int32_t *r = j->rows + (size_t)e * words;
        const float *x = j->x + (size_t)r[0] * p->x_stride;
        float *y = j->y + (size_t)r[0] * p->y_stride;
        for (uint32_t k = 0; k < p->n_stack; k++) {
            int32_t a = r[1 + 2 * k];
            if (a < 0) continue;
            float s;
            memcpy(&s, &r[2 + 2 * k], sizeof s);
            const int32_t *t = j->table + ((size_t)a * p->table_stride + p->table_index) * 4;
            uint32_t rank = (uint32_t)t[2];
            if (!rank) continue;
            const float *A = j->w + (uint32_t)t[0], *B = j->w + (uint32_t)t[1];
            for (uint32_t q = 0; q < rank; q++) u[q] = dot(A + (size_t)q * p->in, x, p->in);
            for (uint32_t o = 0; o < p->out; o++) y[o] += s * dot(B + (size_t)o * rank, u, rank);
        }
    }
}

void lgpu_ref_lora(const lgpu_lora_op_params *p, const float *x, const float *w, const int32_t *table,
                   const int32_t *row_list, float *y, int nthreads) {
    lora_job j = {p, x, w, row_list, table, y};
    if ((uint64_t)p->n_rows * (p->in + p->out) * p->n_stack < LGPU_REF_PARALLEL_MIN) nthreads = 1;
    lgpu_parallel_for(nthreads, p->n_rows, rows, &j);
}
