/* Micro-batches for the trainer: rows of token ids and next-token targets
 * from a dataset's examples, shuffled per epoch, by random access.
 *
 * Each epoch visits the examples (all, or the given indices: a train or
 * validation split) in an order that depends only on (seed, epoch). Two
 * layouts of a row of seq_len (T) tokens:
 *   truncate  one example per row, cut to T tokens, the rest padding;
 *   pack      the epoch's examples concatenated in that order and cut into
 *             rows of T (as TRL's packing; attention is not reset between
 *             examples, the next one's BOS marks the border); only the last
 *             row has padding.
 * targets[i] = tokens[i + 1] when that token counts in the loss (its mask
 * bit) and is in the same row, else -1: the last token of each row, padding
 * and prompt tokens give -1. A micro-batch is micro_batch (B) rows; the last
 * one of an epoch is filled with empty rows (all padding, no targets).
 *
 * lgpu_batcher_get(epoch, index) is a pure function of its arguments and the
 * creation arguments: a resumed run continues at (epoch, index) with the same
 * data. Truncate mode loses whatever passes T: give the dataset max_tokens =
 * T so that it truncates (or drops examples whose response would not fit)
 * and counts it. */
#ifndef LGPU_TRAIN_BATCH_H
#define LGPU_TRAIN_BATCH_H

#include "train/dataset.h"

typedef struct lgpu_batcher lgpu_batcher;

/* indices: the examples to use (NULL: 0..n-1, n being then the dataset's
 * size or less); each must be < lgpu_dataset_size(ds). The dataset must
 * outlive the batcher. LGPU_EINVAL for n == 0, micro_batch == 0, seq_len < 2
 * or an index out of range. */
int lgpu_batcher_create(const lgpu_dataset *ds, const size_t *indices, size_t n, uint32_t micro_batch,
                        uint32_t seq_len, bool pack, uint64_t seed, lgpu_batcher **out);
void lgpu_batcher_destroy(lgpu_batcher *b);

/* Micro-batches per epoch (the same every epoch). */
uint64_t lgpu_batcher_n_batches(const lgpu_batcher *b);
/* Truncate mode: examples longer than seq_len (cut in every epoch); pack: 0. */
size_t lgpu_batcher_n_truncated(const lgpu_batcher *b);

/* Micro-batch `index` (< n_batches) of `epoch` into tokens[B*T] and
 * targets[B*T] (row-major, row r at r*T); *n_counted (may be NULL) gets the
 * number of targets that are not -1. Not thread-safe: it caches the epoch's
 * order. LGPU_ERANGE for index >= n_batches. */
int lgpu_batcher_get(lgpu_batcher *b, uint64_t epoch, uint64_t index, int32_t *tokens, int32_t *targets,
                     uint32_t *n_counted);

#endif
