/* lgpu_convert_to_gguf: any model-file source -> GGUF in llama.cpp's layout. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/convert_internal.h"
#include "model/gguf_llama.h"

static int put_vocab(lgpu_gguf_writer *w, const lgpu_model_file *mf, const lgpu_convert_opts *o, uint32_t *n_tok) {
    *n_tok = 0;
    const lgpu_file_hparams *hp = lgpu_model_file_hparams(mf);
    if (o->tokenizer) return lgpu_gguf_put_vocab_file(w, o->tokenizer, hp->n_vocab, n_tok);
    switch (lgpu_model_file_source(mf)) {
    case LGPU_MODEL_SRC_GGUF: {
        const lgpu_gguf *g = lgpu_model_file_gguf(mf);
        if (lgpu_gguf_find_key(g, "tokenizer.ggml.tokens") < 0) break;
        return lgpu_gguf_put_vocab_gguf(w, g, n_tok);
    }
    case LGPU_MODEL_SRC_HF: {
        char p[4096];
        snprintf(p, sizeof p, "%s/tokenizer.json", lgpu_model_file_hf_dir(mf));
        FILE *f = fopen(p, "rb");
        if (!f) break;
        fclose(f);
        return lgpu_gguf_put_vocab_hf(w, lgpu_model_file_hf_dir(mf), hp->n_vocab, n_tok);
    }
    default: break;
    }
    lgpu_notef(o->note, o->ud, "%s has no tokenizer: the output has none either (pass --tokenizer FILE)",
               lgpu_model_file_path(mf));
    return 0;
}

int lgpu_convert_to_gguf(const char *in, const char *out, const lgpu_convert_opts *opts) {
    lgpu_convert_opts o = opts ? *opts : (lgpu_convert_opts){.out_type = -1};
    if (!in || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_convert_to_gguf: NULL path");
    if (o.out_type != -1 && o.out_type != LGPU_TYPE_F32 && o.out_type != LGPU_TYPE_F16 && o.out_type != LGPU_TYPE_BF16)
        return lgpu_set_error(LGPU_EINVAL, "convert: output type %s is not f32, f16 or bf16 (use lgpu quantize)",
                              lgpu_type_name(o.out_type) ? lgpu_type_name(o.out_type) : "?");
    lgpu_model_file *mf = NULL;
    lgpu_gguf_writer *w = NULL;
    lgpu_llama_tensor_desc *list = NULL;
    float *factors = NULL;
    int st = lgpu_model_file_create(in, &mf);
    if (!st) st = lgpu_gguf_writer_create(&w);
    if (st) goto done;
    lgpu_file_hparams hp = *lgpu_model_file_hparams(mf);
    if (o.name) snprintf(hp.name, sizeof hp.name, "%s", o.name);
    const lgpu_gguf *src_gguf = lgpu_model_file_gguf(mf);
    lgpu_model_tensor rope_freqs;
    bool has_rope_freqs = lgpu_model_file_tensor(mf, "rope_freqs.weight", &rope_freqs) == 0;
    lgpu_clear_error();
    bool make_factors = hp.rope_scaling.factor > 0; /* HF llama3: written as rope_freqs like llama.cpp */

    int64_t n = lgpu_llama_tensor_list(&hp, NULL);
    if (!(list = calloc((size_t)n, sizeof *list))) {
        st = lgpu_set_error(LGPU_ENOMEM, "convert: out of memory");
        goto done;
    }
    lgpu_llama_tensor_list(&hp, list);
    int ftype = o.out_type >= 0 ? o.out_type : lgpu_model_file_ftype(mf);
    if ((st = lgpu_gguf_put_llama_hparams(w, &hp, ftype))) goto done;
    /* Keep what a GGUF source knows beyond our keys (e.g. general.* provenance). */
    for (int64_t i = 0; src_gguf && i < lgpu_gguf_n_kv(src_gguf); i++) {
        const char *k = lgpu_gguf_key(src_gguf, i);
        if (!strncmp(k, "general.", 8) && strcmp(k, "general.alignment") && strcmp(k, "general.file_type") &&
            strcmp(k, "general.name") && strcmp(k, "general.architecture") && (st = lgpu_gguf_writer_copy_kv(w, src_gguf, i)))
            goto done;
    }
    uint32_t n_tok;
    if ((st = put_vocab(w, mf, &o, &n_tok))) goto done;
    if (n_tok && n_tok != hp.n_vocab) {
        st = lgpu_set_error(LGPU_EFORMAT, "convert: the tokenizer has %u tokens but %s has a vocabulary of %u", n_tok, in,
                            hp.n_vocab);
        goto done;
    }
    lgpu_progress prog = {o.progress, o.ud, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        lgpu_model_tensor t;
        if ((st = lgpu_model_file_tensor(mf, list[i].name, &t))) goto done;
        int dt = list[i].vector || o.out_type < 0 ? t.type : o.out_type;
        int64_t ne[2] = {t.ne0, t.n_rows};
        if ((st = lgpu_gguf_writer_add_tensor(w, list[i].name, dt, t.n_rows > 1 ? 2 : 1, ne, NULL))) goto done;
        prog.total += lgpu_type_row_bytes(dt, t.ne0) * (uint64_t)t.n_rows;
    }
    int64_t nfreq = hp.head_dim / 2;
    if (make_factors || has_rope_freqs) {
        if ((st = lgpu_gguf_writer_add_tensor(w, "rope_freqs.weight", LGPU_TYPE_F32, 1, &nfreq, NULL))) goto done;
        if (make_factors) {
            if (!(factors = malloc((size_t)nfreq * sizeof *factors))) {
                st = lgpu_set_error(LGPU_ENOMEM, "convert: out of memory");
                goto done;
            }
            lgpu_llama3_rope_factors(&hp, factors);
        }
    }
    if ((st = lgpu_gguf_writer_begin(w, out))) goto done;
    for (int64_t i = 0; i < n; i++) {
        lgpu_model_tensor t;
        lgpu_model_file_tensor(mf, list[i].name, &t);
        int dt = list[i].vector || o.out_type < 0 ? t.type : o.out_type;
        if ((st = lgpu_stream_tensor(w, t.name, t.data, t.type, dt, t.ne0, t.n_rows, o.nthreads, &prog))) goto done;
    }
    if (make_factors) st = lgpu_gguf_writer_tensor_data(w, factors, (size_t)nfreq * 4);
    else if (has_rope_freqs) st = lgpu_gguf_writer_tensor_data(w, rope_freqs.data, rope_freqs.nbytes);
    if (!st) st = lgpu_gguf_writer_finish(w);
done:
    free(factors);
    free(list);
    lgpu_gguf_writer_destroy(w);
    lgpu_model_file_destroy(mf);
    return st;
}
