/* The dataset inside the engine: the public API (lgpu/dataset.h) plus what
 * the batcher needs. */
#ifndef LGPU_TRAIN_DATASET_H
#define LGPU_TRAIN_DATASET_H

#include "lgpu/dataset.h"

/* The id that fills padding: the tokenizer's pad token, else EOS, else 0
 * (padding is never a target, so only its embedding lookup sees it). */
int32_t lgpu_dataset_pad_id(const lgpu_dataset *ds);

#endif
