/* lgpu inspect FILE: metadata and tensor table of a GGUF (like gguf-dump), or
 * the hyperparameters and tensors lgpu sees in a llama2.c checkpoint / HF dir. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/gguf.h"
#include "lgpu/lgpu.h"
#include "lgpu/model_file.h"

static void print_escaped(const char *s, size_t n, size_t max) {
    putchar('"');
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (n > max) printf("...(%zu bytes)", n);
}

static void print_value(const lgpu_gguf *g, int64_t i, int max_elems) {
    int type = lgpu_gguf_kv_type(g, i);
    int64_t iv;
    uint64_t uv;
    double fv;
    size_t len;
    switch (type) {
    case LGPU_GGUF_STRING: {
        const char *s = lgpu_gguf_kv_str(g, i, &len);
        print_escaped(s, len, 200);
        break;
    }
    case LGPU_GGUF_BOOL: lgpu_gguf_kv_int(g, i, &iv); printf("%s", iv ? "true" : "false"); break;
    case LGPU_GGUF_F32:
    case LGPU_GGUF_F64: lgpu_gguf_kv_float(g, i, &fv); printf("%.9g", fv); break;
    case LGPU_GGUF_U64: lgpu_gguf_kv_uint(g, i, &uv); printf("%" PRIu64, uv); break;
    case LGPU_GGUF_ARRAY: {
        int et;
        uint64_t n;
        lgpu_gguf_kv_arr(g, i, &et, &n, NULL);
        printf("[");
        for (uint64_t k = 0; k < n && k < (uint64_t)max_elems; k++) {
            if (k) printf(", ");
            if (et == LGPU_GGUF_STRING) {
                const char *s = lgpu_gguf_arr_str(g, i, k, &len);
                print_escaped(s, len, 60);
            } else if (et == LGPU_GGUF_F32 || et == LGPU_GGUF_F64)
                printf("%.6g", lgpu_gguf_arr_float(g, i, k, 0));
            else
                printf("%" PRId64, lgpu_gguf_arr_int(g, i, k, 0));
        }
        if (n > (uint64_t)max_elems) printf(", ...");
        printf("]");
        break;
    }
    default: lgpu_gguf_kv_int(g, i, &iv); printf("%" PRId64, iv); break;
    }
}

static void type_col(const lgpu_gguf *g, int64_t i, char *buf, size_t n) {
    int type = lgpu_gguf_kv_type(g, i);
    if (type == LGPU_GGUF_ARRAY) {
        int et;
        uint64_t cnt;
        lgpu_gguf_kv_arr(g, i, &et, &cnt, NULL);
        snprintf(buf, n, "%s[%" PRIu64 "]", lgpu_gguf_vtype_name(et), cnt);
    } else
        snprintf(buf, n, "%s", lgpu_gguf_vtype_name(type));
}

static int inspect_gguf(const char *path, int max_elems) {
    lgpu_gguf *g;
    int st = lgpu_gguf_create(path, &g);
    if (st) {
        fprintf(stderr, "lgpu inspect: %s (%s)\n", lgpu_last_error(), lgpu_err_name(st));
        return 1;
    }
    printf("%s: GGUF v%u, %" PRIu64 " bytes, alignment %zu, data at offset %" PRIu64 "\n", path, lgpu_gguf_version(g),
           lgpu_gguf_file_size(g), lgpu_gguf_alignment(g), lgpu_gguf_data_offset(g));
    printf("\nmetadata: %" PRId64 " keys\n", lgpu_gguf_n_kv(g));
    for (int64_t i = 0; i < lgpu_gguf_n_kv(g); i++) {
        char tb[48];
        type_col(g, i, tb, sizeof tb);
        printf("  %4" PRId64 "  %-44s %-14s ", i, lgpu_gguf_key(g, i), tb);
        print_value(g, i, max_elems);
        putchar('\n');
    }
    int64_t nt = lgpu_gguf_n_tensors(g);
    uint64_t total = 0;
    printf("\ntensors: %" PRId64 "\n", nt);
    if (nt) printf("  %4s  %-34s %-6s %-24s %12s %12s\n", "#", "name", "type", "shape (ne0 first)", "offset", "bytes");
    for (int64_t i = 0; i < nt; i++) {
        const lgpu_gguf_tensor *t = lgpu_gguf_tensor_at(g, i);
        char shape[64] = "";
        size_t o = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, "%s%" PRId64, d ? " x " : "", t->ne[d]);
        printf("  %4" PRId64 "  %-34s %-6s %-24s %12" PRIu64 " %12zu\n", i, t->name, lgpu_type_name(t->type), shape,
               lgpu_gguf_data_offset(g) + t->offset, t->nbytes);
        total += t->nbytes;
    }
    if (nt) printf("  total %.2f MiB of tensor data\n", (double)total / (1 << 20));
    lgpu_gguf_destroy(g);
    return 0;
}

static int inspect_model(const char *path) {
    lgpu_model_file *mf;
    int st = lgpu_model_file_create(path, &mf);
    if (st) {
        fprintf(stderr, "lgpu inspect: %s (%s)\n", lgpu_last_error(), lgpu_err_name(st));
        return 1;
    }
    const lgpu_file_hparams *h = lgpu_model_file_hparams(mf);
    printf("%s: %s\n", path, lgpu_model_file_source(mf) == LGPU_MODEL_SRC_HF ? "Hugging Face directory" : "llama2.c checkpoint");
    printf("  arch %s, name %s\n  n_vocab %u, dim %u, n_layers %u, n_heads %u, n_kv_heads %u, head_dim %u, hidden_dim %u\n"
           "  n_ctx_train %u, norm_eps %g, rope_theta %g, tied_output %s\n",
           h->arch, h->name, h->n_vocab, h->dim, h->n_layers, h->n_heads, h->n_kv_heads, h->head_dim, h->hidden_dim,
           h->n_ctx_train, (double)h->norm_eps, (double)h->rope_theta, h->tied_output ? "yes" : "no");
    if (h->rope_scaling.factor > 0)
        printf("  rope scaling llama3: factor %g, low %g, high %g, original ctx %u\n", (double)h->rope_scaling.factor,
               (double)h->rope_scaling.low_freq_factor, (double)h->rope_scaling.high_freq_factor,
               h->rope_scaling.original_ctx);
    printf("\ntensors (GGUF names): %" PRId64 "\n", lgpu_model_file_n_tensors(mf));
    for (int64_t i = 0; i < lgpu_model_file_n_tensors(mf); i++) {
        const lgpu_model_tensor *t = lgpu_model_file_tensor_at(mf, i);
        printf("  %4" PRId64 "  %-34s %-6s %8" PRId64 " x %-8" PRId64 " %12zu\n", i, t->name, lgpu_type_name(t->type), t->ne0,
               t->n_rows, t->nbytes);
    }
    lgpu_model_file_destroy(mf);
    return 0;
}

int lgpu_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int max_elems = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: lgpu inspect FILE [--elems N]\n"
                   "  GGUF: header, every metadata key (arrays: first N elements, default 8) and the tensor table.\n"
                   "  llama2.c .bin or HF directory: hyperparameters and tensors under their GGUF names.\n");
            return 0;
        } else if (!strcmp(argv[i], "--elems") && i + 1 < argc)
            max_elems = atoi(argv[++i]);
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "lgpu inspect: unknown option %s\n", argv[i]);
            return 2;
        } else if (!path)
            path = argv[i];
        else {
            fprintf(stderr, "lgpu inspect: more than one FILE\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: lgpu inspect FILE [--elems N]\n");
        return 2;
    }
    FILE *f = fopen(path, "rb");
    uint32_t magic = 0;
    if (f) {
        if (fread(&magic, 1, 4, f) != 4) magic = 0;
        fclose(f);
    }
    return magic == LGPU_GGUF_MAGIC ? inspect_gguf(path, max_elems < 0 ? 0 : max_elems) : inspect_model(path);
}
