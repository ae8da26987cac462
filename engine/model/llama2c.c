/* lgpu_model_file from a llama2.c legacy checkpoint: 7 int32 (dim,
 * hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len), then F32
 * tensors token_embedding[V,dim], rms_att[L,dim], wq[L,dim,dim],
 * wk[L,kv,dim], wv[L,kv,dim], wo[L,dim,dim], rms_ffn[L,dim], w1[L,hid,dim],
 * w2[L,dim,hid], w3[L,hid,dim], rms_final[dim], freq_cis_real/imag
 * [seq,hs/2] (unused), and wcls[V,dim] only if vocab_size < 0.
 * Weights already use GGUF's interleaved RoPE layout, so they are served
 * from the mapping unchanged. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "model/model_file_internal.h"

#define AK42_MAGIC 0x616b3432u /* llama2.c export.py version 1/2 header */

int lgpu_mf_load_llama2c(lgpu_model_file *mf) {
    int st = lgpu_mapfile_create(mf->path, &mf->map);
    if (st) return st;
    const uint8_t *base = mf->map.data;
    uint64_t size = mf->map.size;
    int32_t p[7];
    if (size < sizeof p)
        return lgpu_set_error(LGPU_EFORMAT, "%s: unrecognized model file (%" PRIu64 " bytes: not GGUF, not an HF directory, too small for a llama2.c checkpoint)",
                              mf->fname, size);
    memcpy(p, base, sizeof p);
    if ((uint32_t)p[0] == AK42_MAGIC)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "%s: llama2.c export version %d is not supported (only the legacy format)",
                              mf->fname, p[1]);
    int32_t dim = p[0], hid = p[1], L = p[2], nh = p[3], nkv = p[4], V = p[5], seq = p[6];
    bool shared = V > 0;
    int64_t v = V > 0 ? V : -(int64_t)V;
    /* Header sanity (also keeps the size arithmetic below from overflowing). */
    if (dim <= 0 || dim > (1 << 20) || hid <= 0 || hid > (1 << 22) || L <= 0 || L > 4096 || nh <= 0 || nkv <= 0 ||
        nkv > nh || v == 0 || v > (1 << 24) || seq <= 0 || seq > (1 << 24) || dim % nh || nh % nkv || (dim / nh) % 2)
        return lgpu_set_error(LGPU_EFORMAT, "%s: unrecognized model file: not GGUF (magic 0x%08x), not an HF directory, and "
                              "not a llama2.c checkpoint (header dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d seq_len=%d)",
                              mf->fname, (uint32_t)p[0], dim, hid, L, nh, nkv, V, seq);
    uint64_t hs = (uint64_t)(dim / nh), kv = hs * (uint64_t)nkv, D = (uint64_t)dim, H = (uint64_t)hid, N = (uint64_t)L;
    /* Offsets in floats, in file order. */
    uint64_t off = 0, o_emb, o_att, o_q, o_k, o_v, o_o, o_ffn, o_w1, o_w2, o_w3, o_fin, o_cls = 0;
    o_emb = off, off += (uint64_t)v * D;
    o_att = off, off += N * D;
    o_q = off, off += N * D * D;
    o_k = off, off += N * kv * D;
    o_v = off, off += N * kv * D;
    o_o = off, off += N * D * D;
    o_ffn = off, off += N * D;
    o_w1 = off, off += N * H * D;
    o_w2 = off, off += N * D * H;
    o_w3 = off, off += N * H * D;
    o_fin = off, off += D;
    off += (uint64_t)seq * hs; /* freq_cis_real + freq_cis_imag: 2 * seq * hs/2 */
    if (!shared) o_cls = off, off += (uint64_t)v * D;
    uint64_t expect = 28 + off * 4;
    if (size != expect)
        return lgpu_set_error(LGPU_EFORMAT, "%s: llama2.c checkpoint (dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d seq_len=%d) "
                              "should be %" PRIu64 " bytes but the file has %" PRIu64,
                              mf->fname, dim, hid, L, nh, nkv, V, seq, expect, size);

    lgpu_file_hparams *h = &mf->hp;
    h->dim = (uint32_t)dim;
    h->hidden_dim = (uint32_t)hid;
    h->n_layers = (uint32_t)L;
    h->n_heads = (uint32_t)nh;
    h->n_kv_heads = (uint32_t)nkv;
    h->n_vocab = (uint32_t)v;
    h->n_ctx_train = (uint32_t)seq;
    h->head_dim = (uint32_t)hs;
    h->norm_eps = 1e-5f;     /* llama2.c's run.c constant */
    h->rope_theta = 10000.0f; /* ditto */
    h->tied_output = shared;

    const float *w = (const float *)(base + 28);
#define ADD(name, o, ne0, rows)                                                                              \
    do {                                                                                                     \
        if ((st = lgpu_mf_add_tensor(mf, name, LGPU_TYPE_F32, (int64_t)(ne0), (int64_t)(rows), w + (o),     \
                                     (size_t)((uint64_t)(ne0) * (rows) * 4))))                               \
            return st;                                                                                       \
    } while (0)
    ADD("token_embd.weight", o_emb, D, v);
    for (uint64_t l = 0; l < N; l++) {
        char n[64];
#define LAYER(suffix, o, ne0, rows)                                  \
    snprintf(n, sizeof n, "blk.%" PRIu64 "." suffix ".weight", l); \
    ADD(n, (o) + l * (uint64_t)(ne0) * (rows), ne0, rows)
        LAYER("attn_norm", o_att, D, 1);
        LAYER("attn_q", o_q, D, D);
        LAYER("attn_k", o_k, D, kv);
        LAYER("attn_v", o_v, D, kv);
        LAYER("attn_output", o_o, D, D);
        LAYER("ffn_norm", o_ffn, D, 1);
        LAYER("ffn_gate", o_w1, D, H);
        LAYER("ffn_down", o_w2, H, D);
        LAYER("ffn_up", o_w3, D, H);
#undef LAYER
    }
    ADD("output_norm.weight", o_fin, D, 1);
    if (!shared) ADD("output.weight", o_cls, D, v);
#undef ADD
    return 0;
}
