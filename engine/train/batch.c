/* Micro-batches (batch.h). The epoch's order is a Fisher-Yates shuffle from
 * the seed's stream for that epoch; it is cached, with the packed stream's
 * example offsets, so reading an epoch's batches in order costs one shuffle.
 * A packed row is found by binary search over those offsets. */
#include "train/batch.h"

#include "train/rng.h"

#include <stdlib.h>
#include <string.h>

struct lgpu_batcher {
    const lgpu_dataset *ds;
    size_t *examples; /* the examples used, as given */
    size_t n;
    uint32_t B, T;
    bool pack;
    uint64_t seed;
    int32_t pad;
    uint64_t n_rows, n_batches;
    size_t n_truncated;
    /* the cached epoch */
    bool have_epoch;
    uint64_t epoch;
    size_t *order;    /* examples in the epoch's order */
    uint64_t *starts; /* pack: stream offset of order[k]; starts[n] = total tokens */
};

int lgpu_batcher_create(const lgpu_dataset *ds, const size_t *indices, size_t n, uint32_t micro_batch,
                        uint32_t seq_len, bool pack, uint64_t seed, lgpu_batcher **out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_batcher_create: NULL out");
    *out = NULL;
    if (!ds) return lgpu_set_error(LGPU_EINVAL, "lgpu_batcher_create: NULL dataset");
    size_t size = lgpu_dataset_size(ds);
    if (!n) return lgpu_set_error(LGPU_EINVAL, "batches: no examples");
    if (!micro_batch || seq_len < 2)
        return lgpu_set_error(LGPU_EINVAL, "batches: micro-batch %u must be >= 1 and sequence length %u >= 2",
                              micro_batch, seq_len);
    if (!indices && n > size) return lgpu_set_error(LGPU_EINVAL, "batches: %zu examples of %zu", n, size);
    lgpu_batcher *b = calloc(1, sizeof *b);
    if (!b) return lgpu_set_error(LGPU_ENOMEM, "batches: out of memory");
    *b = (lgpu_batcher){.ds = ds, .n = n, .B = micro_batch, .T = seq_len, .pack = pack, .seed = seed,
                        .pad = lgpu_dataset_pad_id(ds)};
    b->examples = malloc(n * sizeof *b->examples);
    b->order = malloc(n * sizeof *b->order);
    b->starts = pack ? malloc((n + 1) * sizeof *b->starts) : NULL;
    if (!b->examples || !b->order || (pack && !b->starts)) {
        lgpu_batcher_destroy(b);
        return lgpu_set_error(LGPU_ENOMEM, "batches: out of memory");
    }
    uint64_t total = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = indices ? indices[k] : k;
        uint32_t len;
        if (i >= size) {
            lgpu_batcher_destroy(b);
            return lgpu_set_error(LGPU_EINVAL, "batches: example index %zu (position %zu) of a dataset of %zu", i, k,
                                  size);
        }
        lgpu_dataset_example(ds, i, NULL, NULL, &len, NULL);
        b->examples[k] = i;
        total += len;
        if (!pack && len > seq_len) b->n_truncated++;
    }
    b->n_rows = pack ? (total + seq_len - 1) / seq_len : n;
    b->n_batches = (b->n_rows + micro_batch - 1) / micro_batch;
    *out = b;
    return 0;
}

void lgpu_batcher_destroy(lgpu_batcher *b) {
    if (!b) return;
    free(b->examples);
    free(b->order);
    free(b->starts);
    free(b);
}

uint64_t lgpu_batcher_n_batches(const lgpu_batcher *b) { return b ? b->n_batches : 0; }
size_t lgpu_batcher_n_truncated(const lgpu_batcher *b) { return b ? b->n_truncated : 0; }

/* Epoch e's stream: odd, so it never meets the split's (see split.c). */
static void order_epoch(lgpu_batcher *b, uint64_t epoch) {
    if (b->have_epoch && b->epoch == epoch) return;
    memcpy(b->order, b->examples, b->n * sizeof *b->order);
    uint64_t state = lgpu_rng_stream(b->seed, epoch << 1 | 1);
    lgpu_rng_shuffle(&state, b->order, b->n);
    if (b->pack) {
        uint64_t at = 0;
        for (size_t k = 0; k < b->n; k++) {
            uint32_t len;
            lgpu_dataset_example(b->ds, b->order[k], NULL, NULL, &len, NULL);
            b->starts[k] = at;
            at += len;
        }
        b->starts[b->n] = at;
    }
    b->have_epoch = true;
    b->epoch = epoch;
}

/* The stream's tokens [from, from + T) into one row, with their mask bits;
 * returns how many tokens there were (the rest of the row is padding). */
static uint32_t packed_row(const lgpu_batcher *b, uint64_t from, int32_t *tok, uint8_t *mask) {
    /* the last example starting at or before `from` */
    size_t lo = 0, hi = b->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->starts[mid] <= from) lo = mid;
        else hi = mid;
    }
    uint32_t got = 0;
    for (size_t k = lo; k < b->n && got < b->T; k++) {
        const int32_t *t;
        const uint8_t *m;
        uint32_t len;
        lgpu_dataset_example(b->ds, b->order[k], &t, &m, &len, NULL);
        uint64_t skip = from + got > b->starts[k] ? from + got - b->starts[k] : 0;
        uint64_t take = len - skip < (uint64_t)(b->T - got) ? len - skip : b->T - got;
        memcpy(tok + got, t + skip, take * sizeof *tok);
        memcpy(mask + got, m + skip, take);
        got += (uint32_t)take;
    }
    return got;
}

int lgpu_batcher_get(lgpu_batcher *b, uint64_t epoch, uint64_t index, int32_t *tokens, int32_t *targets,
                     uint32_t *n_counted) {
    if (!b || !tokens || !targets) return lgpu_set_error(LGPU_EINVAL, "lgpu_batcher_get: NULL argument");
    if (index >= b->n_batches)
        return lgpu_set_error(LGPU_ERANGE, "batches: micro-batch %llu of %llu per epoch", (unsigned long long)index,
                              (unsigned long long)b->n_batches);
    order_epoch(b, epoch);
    const uint32_t T = b->T;
    uint8_t mask_stack[4096], *mask = T <= sizeof mask_stack ? mask_stack : malloc(T);
    if (!mask) return lgpu_set_error(LGPU_ENOMEM, "batches: out of memory");
    uint32_t counted = 0;
    for (uint32_t r = 0; r < b->B; r++) {
        uint64_t row = index * b->B + r;
        int32_t *tok = tokens + (size_t)r * T, *tgt = targets + (size_t)r * T;
        uint32_t got = 0;
        if (row < b->n_rows && b->pack) {
            got = packed_row(b, row * T, tok, mask);
        } else if (row < b->n_rows) {
            const int32_t *t;
            const uint8_t *m;
            uint32_t len;
            lgpu_dataset_example(b->ds, b->order[row], &t, &m, &len, NULL);
            got = len < T ? len : T;
            memcpy(tok, t, got * sizeof *tok);
            memcpy(mask, m, got);
        }
        for (uint32_t j = got; j < T; j++) tok[j] = b->pad;
        for (uint32_t j = 0; j < T; j++) {
            bool target = j + 1 < got && mask[j + 1];
            tgt[j] = target ? tok[j + 1] : -1;
            counted += target;
        }
    }
    if (mask != mask_stack) free(mask);
    if (n_counted) *n_counted = counted;
    return 0;
}
