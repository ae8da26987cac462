/* Loading a LLaMA model: open the checkpoint (GGUF / HF dir / llama2.c, or a
 * Hub spec resolved to one), upload every weight in its file type, attach the
 * tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgpu/hub.h"
#include "lgpu/lgpu.h"
#include "lgpu/model_file.h"
#include "lgpu/tokenizer.h"
#include "model/llama_internal.h"
#include "quant/quant.h"

typedef struct loader {
    lgpu_model *m;
    const lgpu_model_file *mf;
    bool progress, tty;
    bool nf4;   /* lgpu_model_params.quantize_nf4 */
    int nf4_type, nf4_ct;
    int64_t done, total; /* tensors */
    int shown;           /* bar cells drawn */
    double t0;
} loader;

/* A bar redrawn when it grows (terminal), else one line at the end. */
static void progress(loader *ld) {
    if (!ld->progress) return;
    const int w = 30;
    int k = ld->total ? (int)(ld->done * w / ld->total) : w;
    bool last = ld->done == ld->total;
    if (ld->tty && (k != ld->shown || last)) {
        fprintf(stderr, "\rloading weights [%.*s%*s] %lld/%lld (%.1f MiB)", k, "==============================",
                w - k, "", (long long)ld->done, (long long)ld->total, ld->m->weight_bytes / 1048576.0);
        ld->shown = k;
    }
    if (last)
        fprintf(stderr, "%sloaded %lld tensors, %.1f MiB, in %.2f s\n", ld->tty ? "\n" : "", (long long)ld->total,
                ld->m->weight_bytes / 1048576.0, lgpu_now_s() - ld->t0);
}

/* Whether a projection of file type `type` becomes NF4 under quantize_nf4:
 * the float types and the 8- and 6-bit quants (dequantized first); a base
 * that is already 4-bit (Q4_0, Q4_K) is trained on as it is. */
static bool to_nf4(int type) {
    return type == LGPU_TYPE_F32 || type == LGPU_TYPE_F16 || type == LGPU_TYPE_BF16 || type == LGPU_TYPE_Q8_0 ||
           type == LGPU_TYPE_Q6_K;
}

/* Uploads tensor `name`, as is or, for the host device's kernels, Q4_0 in
 * 8-row groups (lgpu_repack_q4_0_x8_wanted); a projection (proj) under
 * quantize_nf4 as NF4. rows/cols: the expected (N, K); vectors (1, n). */
static int upload(loader *ld, const char *name, uint32_t rows, uint32_t cols, bool proj, lgpu_wt *out) {
    lgpu_model_tensor t;
    int st = lgpu_model_file_tensor(ld->mf, name, &t);
    if (st) return st;
    if (t.ne0 != cols || t.n_rows != rows)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor %s is %lld x %lld, expected %u x %u",
                              lgpu_model_file_path(ld->mf), name, (long long)t.n_rows, (long long)t.ne0, rows, cols);
    bool vec = rows == 1;
    if (vec && t.type != LGPU_TYPE_F32)
        return lgpu_set_error(LGPU_EFORMAT, "%s: norm %s is %s, expected f32", lgpu_model_file_path(ld->mf), name,
                              lgpu_type_name(t.type));
    size_t row_bytes = lgpu_type_row_bytes(t.type, t.ne0);
    if (!row_bytes)
        return lgpu_set_error(LGPU_EFORMAT, "%s: tensor %s: %lld columns of %s", lgpu_model_file_path(ld->mf), name,
                              (long long)t.ne0, lgpu_type_name(t.type));
    if (proj && ld->nf4 && !to_nf4(t.type)) ld->m->nf4.n_kept_4bit++;
    if (proj && ld->nf4 && to_nf4(t.type)) {
        size_t bytes = 0;
        if ((st = lgpu_upload_nf4(ld->m->dev, &t, ld->nf4_type, ld->nf4_ct, out, &bytes))) return st;
        ld->m->nf4.n_nf4++;
        ld->m->weight_bytes += bytes;
        ld->m->n_params += (uint64_t)rows * cols;
        ld->done++;
        progress(ld);
        return 0;
    }
    /* unit = one row: a tensor larger than a binding splits between rows */
    if ((st = lgpu_buf_create(ld->m->dev, t.nbytes, row_bytes, &out->buf))) return st;
    out->x8 = lgpu_dev_kind_of(ld->m->dev) == LGPU_DEV_CPU && lgpu_repack_q4_0_x8_wanted(t.type, rows);
    if (out->x8) st = lgpu_repack_q4_0_x8(t.data, lgpu_buf_host_ptr(out->buf, 0), rows, cols);
    else st = lgpu_buf_write(out->buf, 0, t.data, t.nbytes);
    if (st) return st;
    out->type = t.type;
    out->rows = rows;
    out->cols = cols;
    ld->m->weight_bytes += t.nbytes;
    ld->m->n_params += (uint64_t)rows * cols;
    ld->done++;
    progress(ld);
    return 0;
}

static int upload_all(loader *ld) {
    lgpu_model *m = ld->m;
    const lgpu_hparams *hp = &m->hp;
    uint32_t D = hp->dim, F = hp->hidden_dim, q_dim = hp->n_heads * hp->head_dim, kv_dim = hp->n_kv_heads * hp->head_dim;
    m->layers = calloc(hp->n_layers, sizeof *m->layers);
    if (!m->layers) return lgpu_set_error(LGPU_ENOMEM, "model: layer table");
    ld->total = 2 + (hp->tied_output ? 0 : 1) + 9 * (int64_t)hp->n_layers;
    int st;
    if ((st = upload(ld, "token_embd.weight", hp->n_vocab, D, false, &m->tok_embd))) return st;
    char name[96];
#define UP(field, suffix, rows, cols, proj)                                \
    snprintf(name, sizeof name, "blk.%u." suffix ".weight", l);            \
    if ((st = upload(ld, name, rows, cols, proj, &w->field))) return st;
    for (uint32_t l = 0; l < hp->n_layers; l++) {
        lgpu_layer_w *w = &m->layers[l];
        UP(attn_norm, "attn_norm", 1, D, false);
        UP(wq, "attn_q", q_dim, D, true);
        UP(wk, "attn_k", kv_dim, D, true);
        UP(wv, "attn_v", kv_dim, D, true);
        UP(wo, "attn_output", D, q_dim, true);
        UP(ffn_norm, "ffn_norm", 1, D, false);
        UP(w_gate, "ffn_gate", F, D, true);
        UP(w_up, "ffn_up", F, D, true);
        UP(w_down, "ffn_down", D, F, true);
    }
#undef UP
    if ((st = upload(ld, "output_norm.weight", 1, D, false, &m->output_norm))) return st;
    /* LLaMA-3.1 GGUFs: RoPE frequency factors as a tensor (inv_freq[i] / f[i]) */
    lgpu_model_tensor rf;
    if (lgpu_model_file_tensor(ld->mf, "rope_freqs.weight", &rf) == 0) {
        if (rf.type != LGPU_TYPE_F32 || rf.ne0 * rf.n_rows != hp->head_dim / 2)
            return lgpu_set_error(LGPU_EFORMAT, "%s: rope_freqs.weight is not %u f32 values",
                                  lgpu_model_file_path(ld->mf), hp->head_dim / 2);
        m->rope_freqs = malloc(rf.nbytes);
        if (!m->rope_freqs) return lgpu_set_error(LGPU_ENOMEM, "model: rope_freqs");
        memcpy(m->rope_freqs, rf.data, rf.nbytes);
    } else {
        lgpu_clear_error();
    }
    if (hp->tied_output) {
        m->output = m->tok_embd; /* shared buffer, freed once */
        return 0;
    }
    return upload(ld, "output.weight", hp->n_vocab, D, false, &m->output);
}

static bool is_file(const char *p) {
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* llama2.c checkpoints carry no tokenizer: look beside the checkpoint for
 * tok<n_vocab>.bin, then tokenizer.bin, accepting one with the right size. */
static int llama2c_tokenizer(const char *model_path, uint32_t n_vocab, lgpu_tokenizer **out) {
    char dir[4096], cand[4200];
    snprintf(dir, sizeof dir, "%s", model_path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else strcpy(dir, "./");
    const char *names[2] = {NULL, "tokenizer.bin"};
    char tokn[32];
    snprintf(tokn, sizeof tokn, "tok%u.bin", n_vocab);
    names[0] = tokn;
    for (int i = 0; i < 2; i++) {
        snprintf(cand, sizeof cand, "%s%s", dir, names[i]);
        if (!is_file(cand)) continue;
        lgpu_tokenizer *t = NULL;
        if (lgpu_tokenizer_from_llama2c(cand, (int)n_vocab, &t) == 0) {
            if ((uint32_t)lgpu_tokenizer_n_vocab(t) == n_vocab) {
                lgpu_log(LGPU_LOG_INFO, "tokenizer: %s", cand);
                *out = t;
                return 0;
            }
            lgpu_tokenizer_destroy(t);
        }
    }
    lgpu_clear_error();
    *out = NULL;
    return 0;
}

static int load_tokenizer(lgpu_model *m, const lgpu_model_file *mf, const char *path, const char *tok_path) {
    int st = 0;
    if (tok_path) {
        size_t n = strlen(tok_path);
        if (n > 4 && !strcmp(tok_path + n - 4, ".bin"))
            st = lgpu_tokenizer_from_llama2c(tok_path, (int)m->hp.n_vocab, &m->tok);
        else
            st = lgpu_tokenizer_create(tok_path, &m->tok);
    } else if (lgpu_model_file_gguf(mf)) {
        const lgpu_gguf *g = lgpu_model_file_gguf(mf);
        if (lgpu_gguf_find_key(g, "tokenizer.ggml.model") >= 0) st = lgpu_tokenizer_from_gguf(g, &m->tok);
        else lgpu_log(LGPU_LOG_WARN, "%s: no tokenizer in the file (pass tokenizer_path)", path);
    } else if (lgpu_model_file_hf_dir(mf)) {
        st = lgpu_tokenizer_create(lgpu_model_file_hf_dir(mf), &m->tok);
    } else {
        st = llama2c_tokenizer(path, m->hp.n_vocab, &m->tok);
        if (!st && !m->tok) lgpu_log(LGPU_LOG_WARN, "%s: no tokenizer (pass tokenizer_path)", path);
    }
    if (st) return st;
    if (m->tok && (uint32_t)lgpu_tokenizer_n_vocab(m->tok) > m->hp.n_vocab)
        return lgpu_set_error(LGPU_EFORMAT, "tokenizer has %d tokens, the model only %u",
                              lgpu_tokenizer_n_vocab(m->tok), m->hp.n_vocab);
    return 0;
}

static void describe(lgpu_model *m, const char *arch) {
    char size[32];
    double n = (double)m->n_params;
    if (n < 1e6) snprintf(size, sizeof size, "%.0fK", n / 1e3);
    else if (n < 1e9) snprintf(size, sizeof size, "%.0fM", n / 1e6);
    else snprintf(size, sizeof size, "%.1fB", n / 1e9);
    const char *tn = lgpu_type_name(m->ftype);
    char up[16] = "?";
    if (tn) {
        size_t i = 0;
        for (; tn[i] && i < sizeof up - 1; i++) up[i] = (char)(tn[i] >= 'a' && tn[i] <= 'z' ? tn[i] - 32 : tn[i]);
        up[i] = 0;
    }
    snprintf(m->desc, sizeof m->desc, "%s %s %s%s on %s", arch, size, up,
             m->nf4.n_nf4 ? (m->nf4.double_quant ? " (projections NF4)" : " (projections NF4, no double quant)") : "",
             lgpu_dev_name(m->dev));
}

/* A Hub spec is ORG/NAME[:FILE] that is not an existing local path. */
static int resolve_path(const char *path, char **resolved) {
    *resolved = NULL;
    if (!lgpu_hub_is_spec(path)) return 0;
    char *buf = malloc(4096);
    if (!buf) return lgpu_set_error(LGPU_ENOMEM, "hub path");
    int st = lgpu_hub_resolve(path, buf, 4096, NULL);
    if (st) {
        free(buf);
        return st;
    }
    *resolved = buf;
    return 0;
}

int lgpu_model_create(const lgpu_model_params *params, lgpu_model **out) {
    if (!params || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_model_create: NULL argument");
    *out = NULL;
    const char *given = params->path ? params->path : LGPU_MODEL_EMBEDDED;
    char *hub_path = NULL;
    int st = resolve_path(given, &hub_path);
    if (st) return st;
    const char *path = hub_path ? hub_path : given;
    lgpu_model_file *mf = NULL;
    lgpu_model *m = calloc(1, sizeof *m);
    if (!m) {
        st = lgpu_set_error(LGPU_ENOMEM, "lgpu_model_create");
        goto done;
    }
    if ((st = lgpu_model_file_create(path, &mf))) goto done;
    const lgpu_file_hparams *fh = lgpu_model_file_hparams(mf);
    m->hp = (lgpu_hparams){.n_vocab = fh->n_vocab, .dim = fh->dim, .n_layers = fh->n_layers, .n_heads = fh->n_heads,
                           .n_kv_heads = fh->n_kv_heads, .head_dim = fh->head_dim, .hidden_dim = fh->hidden_dim,
                           .n_ctx_train = fh->n_ctx_train, .norm_eps = fh->norm_eps, .rope_theta = fh->rope_theta,
                           .tied_output = fh->tied_output};
    m->rope_scaling = fh->rope_scaling;
    m->ftype = lgpu_model_file_ftype(mf);
    if (m->hp.head_dim % 2 || !m->hp.n_kv_heads || m->hp.n_heads % m->hp.n_kv_heads) {
        st = lgpu_set_error(LGPU_EFORMAT, "%s: head_dim %u / heads %u / kv heads %u unusable", path, m->hp.head_dim,
                            m->hp.n_heads, m->hp.n_kv_heads);
        goto done;
    }
    if ((st = load_tokenizer(m, mf, path, params->tokenizer_path))) goto done;
    if ((st = lgpu_dev_create(params->device, &m->dev))) goto done;
    m->own_dev = true;
    loader ld = {.m = m, .mf = mf, .progress = params->progress, .tty = isatty(2), .shown = -1, .t0 = lgpu_now_s()};
    if (params->quantize_nf4) {
        int ct = params->nf4_compute_type;
        if (ct != LGPU_TYPE_F32 && ct != LGPU_TYPE_F16 && ct != LGPU_TYPE_BF16) {
            st = lgpu_set_error(LGPU_EINVAL, "lgpu_model_create: NF4 compute type %s is not f32, f16 or bf16",
                                lgpu_type_name(ct) ? lgpu_type_name(ct) : "unknown");
            goto done;
        }
        ld.nf4 = true;
        ld.nf4_type = params->nf4_no_double_quant ? LGPU_TYPE_NF4_NODQ : LGPU_TYPE_NF4;
        ld.nf4_ct = ct;
        m->nf4.double_quant = !params->nf4_no_double_quant;
        m->nf4.compute_type = (lgpu_type)ct;
    }
    if ((st = upload_all(&ld))) {
        if (params->progress && ld.tty) fputc('\n', stderr);
        goto done;
    }
    describe(m, fh->arch[0] ? fh->arch : "llama");
done:
    lgpu_model_file_destroy(mf);
    free(hub_path);
    if (st) {
        lgpu_model_destroy(m);
        return st;
    }
    *out = m;
    return 0;
}

static void free_wt(lgpu_wt *w) {
    lgpu_buf_destroy(w->buf);
    w->buf = NULL;
}

void lgpu_model_destroy(lgpu_model *m) {
    if (!m) return;
    if (m->layers)
        for (uint32_t l = 0; l < m->hp.n_layers; l++) {
            lgpu_layer_w *w = &m->layers[l];
            lgpu_wt *all[] = {&w->attn_norm, &w->wq, &w->wk, &w->wv, &w->wo, &w->ffn_norm, &w->w_gate, &w->w_up,
                              &w->w_down};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free_wt(all[i]);
        }
    free(m->layers);
    if (m->output.buf != m->tok_embd.buf) free_wt(&m->output);
    free_wt(&m->tok_embd);
    free_wt(&m->output_norm);
    if (m->own_dev) lgpu_dev_destroy(m->dev);
    lgpu_tokenizer_destroy(m->tok);
    free(m->rope_freqs);
    free(m);
}

const lgpu_hparams *lgpu_model_hparams(const lgpu_model *m) { return m ? &m->hp : NULL; }
struct lgpu_tokenizer *lgpu_model_tokenizer(lgpu_model *m) { return m ? m->tok : NULL; }
struct lgpu_dev *lgpu_model_dev(lgpu_model *m) { return m ? m->dev : NULL; }
const char *lgpu_model_desc(const lgpu_model *m) { return m ? m->desc : ""; }
size_t lgpu_model_weight_bytes(const lgpu_model *m) { return m ? m->weight_bytes : 0; }
uint64_t lgpu_model_n_params(const lgpu_model *m) { return m ? m->n_params : 0; }
lgpu_model_nf4_info lgpu_model_nf4(const lgpu_model *m) { return m ? m->nf4 : (lgpu_model_nf4_info){0}; }
