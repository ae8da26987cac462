/* Shared by the model-file loaders (model_file.c dispatches to gguf_model.c,
 * hfdir.c, llama2c.c): the handle layout and helpers to register tensors and
 * owned memory. Loaders fill hp and the tensor list; model_file.c then
 * validates both. */
#ifndef LGPU_MODEL_MODEL_FILE_INTERNAL_H
#define LGPU_MODEL_MODEL_FILE_INTERNAL_H

#include "format/mapfile.h"
#include "format/name_index.h"
#include "lgpu/model_file.h"

struct lgpu_safetensors;

struct lgpu_model_file {
    lgpu_model_source src;
    char *path;
    const char *fname; /* base name of path, for details */
    lgpu_file_hparams hp;
    lgpu_model_tensor *t;
    int64_t n_t;
    size_t cap_t;
    lgpu_name_index ix;
    lgpu_gguf *gguf;     /* GGUF source */
    char *hf_dir;        /* HF source */
    lgpu_mapfile map;    /* llama2.c source */
    struct lgpu_safetensors **shards; /* HF source */
    int n_shards;
    void **owned;        /* buffers freed at close (permuted / converted tensors) */
    int64_t n_owned;
    size_t cap_owned;
};

/* Registers a tensor (name copied; data must outlive mf). */
int lgpu_mf_add_tensor(lgpu_model_file *mf, const char *name, int type, int64_t ne0, int64_t n_rows, const void *data,
                       size_t nbytes);
/* 64-byte aligned buffer freed with mf; NULL (with a detail) on failure. */
void *lgpu_mf_alloc(lgpu_model_file *mf, size_t nbytes);
/* Copies a tensor with a possibly unaligned source into owned memory. */
const void *lgpu_mf_own_copy(lgpu_model_file *mf, const void *src, size_t nbytes);

/* Range/consistency checks of mf->hp (loaders call it before building
 * tensors so absurd headers fail with a clear detail). */
int lgpu_mf_check_hparams(const lgpu_model_file *mf);

/* Loaders: fill mf->hp (all fields) and the tensors. */
int lgpu_mf_load_gguf(lgpu_model_file *mf);
int lgpu_mf_load_llama2c(lgpu_model_file *mf);
int lgpu_mf_load_hf(lgpu_model_file *mf);

/* llama.cpp's HF->GGUF Q/K row permutation (convert_hf_to_gguf.py permute()):
 * rows of a (n_head * hd) x row_bytes matrix, hd = rows / n_head; the GGUF row
 * h*hd + 2i + j comes from HF row h*hd + j*hd/2 + i (i < hd/2, j < 2). */
void lgpu_permute_qk_rows(const void *src, void *dst, int64_t rows, size_t row_bytes, uint32_t n_head);

#endif
