/* A persistent thread pool for the host C path. */
#ifndef LGPU_CORE_PARALLEL_H
#define LGPU_CORE_PARALLEL_H

#include <stdint.h>

/* fn(ctx, begin, end, thread_index) is called on disjoint chunks covering
 * [0, n); the call returns when all chunks are done. With nthreads <= 1 (or
 * small n) fn runs on the caller. Results must not depend on the split. */
typedef void (*lgpu_range_fn)(void *ctx, int64_t begin, int64_t end, int thread);
void lgpu_parallel_for(int nthreads, int64_t n, lgpu_range_fn fn, void *ctx);
/* Default thread count: $LGPU_THREADS, else the number of online cores. */
int lgpu_default_threads(void);

#endif
