/* lgpu_synth: real-shaped LLaMA GGUFs with deterministic random weights, for
 * benchmarks and tests of big shapes without downloading checkpoints. Data is
 * generated and quantized a chunk of rows at a time straight into the
 * streaming writer, so a 7B model never sits in memory. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "model/convert_internal.h"
#include "model/gguf_llama.h"
#include "quant/quant.h"

#define CHUNK_VALUES (4u << 20)
#define WEIGHT_STD 0.02f

static const struct {
    const char *name;
    uint32_t dim, hidden, layers, heads, kv_heads, vocab, ctx;
    float theta, eps;
    bool tied;
} shapes[] = {
    {"stories15M", 288, 768, 6, 6, 6, 32000, 256, 10000.0f, 1e-5f, true},
    {"tinyllama-1.1b", 2048, 5632, 22, 32, 4, 32000, 2048, 10000.0f, 1e-5f, false},
    {"llama2-7b", 4096, 11008, 32, 32, 32, 32000, 4096, 10000.0f, 1e-5f, false},
    {"llama3-8b", 4096, 14336, 32, 32, 8, 128256, 8192, 500000.0f, 1e-5f, false},
};

const char *lgpu_synth_shape_names(void) { return "stories15M, tinyllama-1.1b, llama2-7b, llama3-8b"; }

int lgpu_synth_shape(const char *name, lgpu_file_hparams *hp) {
    for (size_t i = 0; name && i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, name)) {
            memset(hp, 0, sizeof *hp);
            snprintf(hp->arch, sizeof hp->arch, "llama");
            snprintf(hp->name, sizeof hp->name, "%s", shapes[i].name);
            hp->dim = shapes[i].dim;
            hp->hidden_dim = shapes[i].hidden;
            hp->n_layers = shapes[i].layers;
            hp->n_heads = shapes[i].heads;
            hp->n_kv_heads = shapes[i].kv_heads;
            hp->head_dim = shapes[i].dim / shapes[i].heads;
            hp->n_vocab = shapes[i].vocab;
            hp->n_ctx_train = shapes[i].ctx;
            hp->rope_theta = shapes[i].theta;
            hp->norm_eps = shapes[i].eps;
            hp->tied_output = shapes[i].tied;
            return 0;
        }
    return lgpu_set_error(LGPU_ENOTFOUND, "synth: unknown shape '%s' (known: %s)", name ? name : "(null)",
                          lgpu_synth_shape_names());
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t seed;
    int64_t tensor, row0, ne0;
    int type;
    float *scratch; /* per thread: ne0 floats */
    int nthreads;
    uint8_t *out;
    size_t rb;
    atomic_int err;
} gen_job;

/* Row r of tensor t: Irwin-Hall sum of 4 uniforms (16 bits each from one
 * 64-bit draw), rescaled to unit variance, times WEIGHT_STD. */
static void gen_rows(void *ctx, int64_t b, int64_t e, int thread) {
    gen_job *j = ctx;
    float *x = j->scratch + (size_t)thread * (size_t)j->ne0;
    const float k = WEIGHT_STD * 1.7320508f / 65536.0f; /* sqrt(3): var of the sum is 4/12 */
    for (int64_t r = b; r < e; r++) {
        uint64_t s = j->seed ^ ((uint64_t)j->tensor << 40) ^ (uint64_t)(j->row0 + r) * 0xD1B54A32D192ED03ull;
        splitmix(&s);
        for (int64_t i = 0; i < j->ne0; i++) {
            uint64_t v = splitmix(&s);
            int32_t sum = (int32_t)(v & 0xffff) + (int32_t)((v >> 16) & 0xffff) + (int32_t)((v >> 32) & 0xffff) +
                          (int32_t)(v >> 48);
            x[i] = (float)(sum - 2 * 65536) * k;
        }
        int st = lgpu_quantize_row(j->type, x, j->out + (size_t)r * j->rb, j->ne0);
        if (st) atomic_store(&j->err, st);
    }
}

static int write_matrix(lgpu_gguf_writer *w, const lgpu_synth_opts *o, const char *name, int64_t idx, int type,
                        int64_t ne0, int64_t rows, lgpu_progress *prog) {
    int nth = o->nthreads > 0 ? o->nthreads : lgpu_default_threads();
    if (nth > 64) nth = 64;
    int64_t chunk = (int64_t)(CHUNK_VALUES / (uint64_t)ne0);
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    gen_job j = {.seed = o->seed, .tensor = idx, .ne0 = ne0, .type = type, .nthreads = nth,
                 .rb = lgpu_type_row_bytes(type, ne0)};
    j.scratch = malloc((size_t)nth * (size_t)ne0 * sizeof(float));
    j.out = malloc((size_t)chunk * j.rb);
    int st = 0;
    if (!j.scratch || !j.out) st = lgpu_set_error(LGPU_ENOMEM, "synth: out of memory for %s", name);
    for (int64_t r = 0; !st && r < rows; r += chunk) {
        int64_t n = rows - r < chunk ? rows - r : chunk;
        j.row0 = r;
        lgpu_parallel_for(nth, n, gen_rows, &j);
        if ((st = atomic_load(&j.err))) break;
        st = lgpu_gguf_writer_tensor_data(w, j.out, (size_t)n * j.rb);
        lgpu_progress_add(prog, name, (uint64_t)n * j.rb);
    }
    free(j.scratch);
    free(j.out);
    return st;
}

int lgpu_synth(const lgpu_synth_opts *opts) {
    if (!opts || !opts->out) return lgpu_set_error(LGPU_EINVAL, "lgpu_synth: no output path");
    lgpu_synth_opts o = *opts;
    lgpu_file_hparams hp;
    int st = lgpu_synth_shape(o.shape, &hp);
    if (st) return st;
    if (!lgpu_quant_matrix_type_ok(o.type))
        return lgpu_set_error(LGPU_EINVAL, "synth: type %s not supported", lgpu_type_name(o.type) ? lgpu_type_name(o.type) : "?");
    lgpu_gguf_writer *w;
    if ((st = lgpu_gguf_writer_create(&w))) return st;
    lgpu_llama_tensor_desc *list = NULL;
    float *ones = NULL;
    uint32_t n_tok = hp.n_vocab;
    snprintf(hp.name, sizeof hp.name, "synth-%s-%s", o.shape, lgpu_type_name(o.type));
    if ((st = lgpu_gguf_put_llama_hparams(w, &hp, o.type)) || (st = lgpu_gguf_set_u64(w, "lgpu.synth.seed", o.seed)))
        goto done;
    /* The vocabulary decides n_vocab (llama.vocab_size is replaced in place). */
    st = o.vocab ? lgpu_gguf_put_vocab_file(w, o.vocab, 0, &n_tok) : lgpu_gguf_put_vocab_synth(w, hp.n_vocab);
    if (st) goto done;
    if (n_tok != hp.n_vocab) {
        lgpu_notef(o.note, o.ud, "vocabulary %s has %u tokens: n_vocab %u -> %u", o.vocab, n_tok, hp.n_vocab, n_tok);
        hp.n_vocab = n_tok;
        if ((st = lgpu_gguf_set_u32(w, "llama.vocab_size", n_tok))) goto done;
    }
    int64_t n = lgpu_llama_tensor_list(&hp, NULL);
    if (!(list = calloc((size_t)n, sizeof *list)) || !(ones = malloc((size_t)hp.dim * sizeof *ones))) {
        st = lgpu_set_error(LGPU_ENOMEM, "synth: out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < hp.dim; i++) ones[i] = 1.0f;
    lgpu_llama_tensor_list(&hp, list);
    lgpu_progress prog = {o.progress, o.ud, 0, 0};
    int64_t noted[8] = {0};
    int n_noted = 0;
    for (int64_t i = 0; i < n; i++) {
        int type = list[i].vector ? LGPU_TYPE_F32 : lgpu_quantize_pick_type(o.type, list[i].ne0);
        bool seen = false;
        for (int k = 0; k < n_noted; k++) seen |= noted[k] == list[i].ne0;
        if (type != o.type && !list[i].vector && !seen) {
            lgpu_notef(o.note, o.ud, "rows of %" PRId64 " values (%s, ...) do not fit %s: those tensors use %s",
                       list[i].ne0, list[i].name, lgpu_type_name(o.type), lgpu_type_name(type));
            if (n_noted < 8) noted[n_noted++] = list[i].ne0;
        }
        int64_t ne[2] = {list[i].ne0, list[i].rows};
        if ((st = lgpu_gguf_writer_add_tensor(w, list[i].name, type, list[i].vector ? 1 : 2, ne, NULL))) goto done;
        prog.total += lgpu_type_row_bytes(type, ne[0]) * (uint64_t)ne[1];
    }
    if ((st = lgpu_gguf_writer_begin(w, o.out))) goto done;
    for (int64_t i = 0; i < n && !st; i++) {
        if (list[i].vector) {
            st = lgpu_gguf_writer_tensor_data(w, ones, (size_t)list[i].ne0 * 4);
            lgpu_progress_add(&prog, list[i].name, (uint64_t)list[i].ne0 * 4);
        } else
            st = write_matrix(w, &o, list[i].name, i, lgpu_quantize_pick_type(o.type, list[i].ne0), list[i].ne0,
                              list[i].rows, &prog);
    }
    if (!st) st = lgpu_gguf_writer_finish(w);
done:
    free(list);
    free(ones);
    lgpu_gguf_writer_destroy(w);
    return st;
}
