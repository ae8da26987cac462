/* The held-out split (lgpu_dataset_split). An exact count, drawn by a
 * shuffle of 0..n-1 seeded only by (seed, n), so the same file and seed
 * hold out the same examples on every machine; both lists are returned in
 * file order, since the batcher does its own shuffling per epoch. */
#include "train/dataset.h"

#include "train/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The split's stream of the seed (the epochs' shuffles use odd streams). */
#define SPLIT_STREAM 0x73706C6974ull /* "split" */

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

int lgpu_dataset_split(const lgpu_dataset *ds, double fraction, uint64_t seed, size_t **train, size_t *n_train,
                       size_t **val, size_t *n_val) {
    if (!ds || !train || !n_train || !val || !n_val)
        return lgpu_set_error(LGPU_EINVAL, "lgpu_dataset_split: NULL argument");
    *train = *val = NULL;
    *n_train = *n_val = 0;
    if (!(fraction >= 0 && fraction < 1))
        return lgpu_set_error(LGPU_EINVAL, "dataset: validation fraction %g must be in [0, 1)", fraction);
    size_t n = lgpu_dataset_size(ds);
    size_t nv = (size_t)floor(fraction * (double)n + 0.5);
    if (fraction > 0 && nv == 0) nv = 1;
    if (nv >= n) nv = n ? n - 1 : 0;
    size_t *perm = malloc((n ? n : 1) * sizeof *perm);
    if (!perm) return lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
    for (size_t i = 0; i < n; i++) perm[i] = i;
    uint64_t state = lgpu_rng_stream(seed, SPLIT_STREAM);
    lgpu_rng_shuffle(&state, perm, n);
    size_t *v = NULL, *t = NULL;
    if (nv && !(v = malloc(nv * sizeof *v))) goto oom;
    if (n - nv && !(t = malloc((n - nv) * sizeof *t))) goto oom;
    if (nv) memcpy(v, perm, nv * sizeof *v);
    if (n - nv) memcpy(t, perm + nv, (n - nv) * sizeof *t);
    free(perm);
    if (nv) qsort(v, nv, sizeof *v, cmp_size);
    if (n - nv) qsort(t, n - nv, sizeof *t, cmp_size);
    *train = t, *n_train = n - nv;
    *val = v, *n_val = nv;
    return 0;
oom:
    free(perm);
    free(v);
    free(t);
    return lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
}
