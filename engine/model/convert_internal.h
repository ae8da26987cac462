/* Helpers shared by convert.c, quantize.c and synth.c. */
#ifndef LGPU_MODEL_CONVERT_INTERNAL_H
#define LGPU_MODEL_CONVERT_INTERNAL_H

#include "lgpu/convert.h"
#include "lgpu/gguf.h"

typedef struct lgpu_progress {
    lgpu_progress_fn fn;
    void *ud;
    uint64_t done, total;
} lgpu_progress;

void lgpu_progress_add(lgpu_progress *p, const char *tensor, uint64_t bytes);

/* printf-style message to a note callback (no-op when fn is NULL). */
void lgpu_notef(lgpu_note_fn fn, void *ud, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Streams rows x ne0 values stored as src_type into the writer's current
 * tensor as dst_type (same type: copied; else through F32 in chunks of rows,
 * converted in parallel). */
int lgpu_stream_tensor(lgpu_gguf_writer *w, const char *name, const void *src, int src_type, int dst_type, int64_t ne0,
                       int64_t rows, int nthreads, lgpu_progress *prog);

#endif
