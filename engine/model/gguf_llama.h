/* Writing LLaMA models as GGUF the way llama.cpp names things: hparam keys,
 * tokenizer vocabularies from several sources, tensor order and file type.
 * Shared by convert, quantize and synth (engine/model/convert.h). */
#ifndef LGPU_MODEL_GGUF_LLAMA_H
#define LGPU_MODEL_GGUF_LLAMA_H

#include "lgpu/gguf.h"
#include "lgpu/model_file.h"

/* general.architecture/name and llama.* hparams (context_length,
 * embedding_length, block_count, feed_forward_length, attention.head_count,
 * head_count_kv, rope.dimension_count, rope.freq_base,
 * attention.layer_norm_rms_epsilon, vocab_size) plus general.file_type for
 * the dominant matrix type `ftype` (an lgpu_type). */
int lgpu_gguf_put_llama_hparams(lgpu_gguf_writer *w, const lgpu_file_hparams *hp, int ftype);

/* llama.cpp's general.file_type (llama_ftype) for a pure type; -1 if none. */
int lgpu_llama_ftype(int type);

/* Vocabulary from a llama2.c tokenizer.bin (int32 max_token_length, then per
 * token: f32 score, int32 length, bytes) as an SPM vocab, the way llama.cpp's
 * convert-llama2c-to-ggml does: ids 0/1/2 become "<unk>"/"<s>"/"</s>" (types
 * UNKNOWN/CONTROL/CONTROL), "<0xNN>" pieces are BYTE, empty pieces CONTROL,
 * others NORMAL with ' ' replaced by U+2581. n_vocab > 0: the file must hold
 * exactly that many tokens (else EFORMAT); 0 reads to the end of file.
 * *n_out (may be NULL) receives the count. */
int lgpu_gguf_put_vocab_llama2c(lgpu_gguf_writer *w, const char *path, uint32_t n_vocab, uint32_t *n_out);

/* Copies every tokenizer.* key of a GGUF; *n_out = its tokenizer.ggml.tokens count. */
int lgpu_gguf_put_vocab_gguf(lgpu_gguf_writer *w, const lgpu_gguf *src, uint32_t *n_out);

/* HF directory tokenizer (tokenizer.json + tokenizer_config.json): byte-level
 * BPE becomes tokenizer.ggml.model "gpt2" (tokens, token_type, merges,
 * pre "llama-bpe" when it looks like LLaMA 3), a byte_fallback BPE becomes
 * "llama" (SPM: tokens, scores from the merge ranks, token_type); bos/eos/
 * unk ids, add_bos_token and chat_template from tokenizer_config.json.
 * Ids missing below max(n_vocab, largest id + 1) become "[PADi]" pieces
 * (USER_DEFINED), as llama.cpp does. */
int lgpu_gguf_put_vocab_hf(lgpu_gguf_writer *w, const char *dir, uint32_t n_vocab, uint32_t *n_out);

/* A synthetic but usable SPM vocab of n tokens (>= 259): <unk>, <s>, </s>,
 * the 256 byte tokens, then letter-sequence pieces. */
int lgpu_gguf_put_vocab_synth(lgpu_gguf_writer *w, uint32_t n);

/* Any vocabulary file: a GGUF (copied) or a llama2.c tokenizer.bin. */
int lgpu_gguf_put_vocab_file(lgpu_gguf_writer *w, const char *path, uint32_t n_vocab, uint32_t *n_out);

/* llama.cpp's tensor order: token_embd, output_norm, output (unless tied),
 * then per layer attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 * ffn_gate, ffn_up, ffn_down. Fills names[i] (each 64 bytes) and the shape
 * (ne0, rows; rows 1 for vectors). Returns the count (2 + !tied + 9 L), or
 * just the count when names is NULL. */
typedef struct lgpu_llama_tensor_desc {
    char name[64];
    int64_t ne0, rows;
    bool vector;
} lgpu_llama_tensor_desc;
int64_t lgpu_llama_tensor_list(const lgpu_file_hparams *hp, lgpu_llama_tensor_desc *out);

/* LLaMA-3.1 RoPE frequency factors (llama.cpp's rope_freqs.weight): head_dim/2 values. */
void lgpu_llama3_rope_factors(const lgpu_file_hparams *hp, float *factors);

#endif
