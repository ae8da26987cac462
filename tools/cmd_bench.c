/* lgpu bench: llama-bench's two tests on synthetic (random) tokens.
 *   ppN: one decode call over N prompt tokens (logits of the last), tokens/s
 *   tgN: N decode calls of one token each, logits read back every step;
 *        with --seqs S, S sequences take one token each per call (continuous
 *        batching's steady state) and the rate counts all S*N tokens
 * Each test runs once to warm up, then r times; the table shows mean ± stddev
 * of the per-repetition rates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_gen_opts.h"
#include "lgpu/device.h"
#include "lgpu/lgpu.h"

typedef struct bench {
    lgpu_ctx *c;
    uint32_t n_vocab;
    int32_t *tok, *seq, *pos;
    int8_t *want;
    uint64_t rng;
    int n_seqs;
} bench;

static int32_t rand_token(bench *b) {
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return (int32_t)(b->rng % b->n_vocab);
}

/* One repetition on a fresh sequence; returns tokens/s or a negative status. */
static double run_pp(bench *b, int n) {
    int s, st;
    if ((st = lgpu_seq_create(b->c, &s))) return st;
    for (int i = 0; i < n; i++) {
        b->tok[i] = rand_token(b), b->seq[i] = s, b->pos[i] = i, b->want[i] = i == n - 1;
    }
    lgpu_batch batch = {.n = n, .token = b->tok, .seq = b->seq, .pos = b->pos, .logits = b->want};
    const float *logits; /* lent, not read: what a caller would sample from */
    double t0 = lgpu_now_s();
    st = lgpu_decode_rows(b->c, &batch, &logits);
    double dt = lgpu_now_s() - t0;
    lgpu_seq_destroy(b->c, s);
    return st ? st : n / dt;
}

static double run_tg(bench *b, int n) {
    const int S = b->n_seqs;
    int st = 0, opened = 0;
    for (; opened < S && !st; opened++) st = lgpu_seq_create(b->c, &b->seq[opened]);
    if (st) opened--;
    double t0 = lgpu_now_s();
    for (int i = 0; i < n && !st; i++) {
        for (int j = 0; j < S; j++) b->tok[j] = rand_token(b), b->pos[j] = i, b->want[j] = 1;
        lgpu_batch batch = {.n = S, .token = b->tok, .seq = b->seq, .pos = b->pos, .logits = b->want};
        const float *logits;
        st = lgpu_decode_rows(b->c, &batch, &logits);
    }
    double dt = lgpu_now_s() - t0;
    for (int j = 0; j < opened; j++) lgpu_seq_destroy(b->c, b->seq[j]);
    return st ? st : (double)S * n / dt;
}

static int run_test(bench *b, const char *name, int n, int reps, double (*fn)(bench *, int), const char *row,
                    int seqs) {
    double sum = 0, sum2 = 0, r = fn(b, n); /* warm-up */
    if (r < 0) goto fail;
    for (int i = 0; i < reps; i++) {
        r = fn(b, n);
        if (r < 0) goto fail;
        sum += r;
        sum2 += r * r;
    }
    double mean = sum / reps, var = reps > 1 ? (sum2 - sum * sum / reps) / (reps - 1) : 0;
    char test[48];
    if (seqs > 1) snprintf(test, sizeof test, "%s%d x%d", name, n, seqs);
    else snprintf(test, sizeof test, "%s%d", name, n);
    printf("%s %s | %.2f ± %.2f |\n", row, test, mean, var > 0 ? sqrt(var) : 0.0);
    fflush(stdout);
    return 0;
fail:
    fprintf(stderr, "lgpu bench: %s%d failed: %s (%s)\n", name, n, lgpu_last_error(), lgpu_strerror((int)r));
    return 1;
}

int lgpu_cmd_bench(int argc, char **argv) {
    gen_opts o;
    int st = gen_opts_parse(argc, argv, GO_BENCH, "lgpu bench [-m MODEL] [--lora FILE[:SCALE]] [-p 512] [-n 128] [-r 5] [--seqs S] [--device SEL]", &o);
    if (st) return st == 1 ? 0 : st;
    if (o.bench_p < 0 || o.bench_n < 0 || o.bench_r < 1 || (o.bench_p == 0 && o.bench_n == 0) ||
        o.bench_s < 1) {
        fprintf(stderr, "lgpu bench: need -p >= 0, -n >= 0 (not both 0), -r >= 1 and --seqs >= 1\n");
        return 2;
    }
    /* a context just big enough, one batch for the whole prompt */
    o.n_ctx = (uint32_t)(o.bench_p > o.bench_n ? o.bench_p : o.bench_n);
    if (o.n_ctx < 16) o.n_ctx = 16;
    if (!o.n_batch) o.n_batch = o.bench_p > o.bench_s ? (uint32_t)o.bench_p : (uint32_t)o.bench_s;
    if ((uint32_t)o.bench_p > o.n_batch || (uint32_t)o.bench_s > o.n_batch) {
        fprintf(stderr, "lgpu bench: -p %d or --seqs %d exceeds the batch size %u\n", o.bench_p, o.bench_s, o.n_batch);
        return 2;
    }
    lgpu_model *m;
    lgpu_ctx *c;
    if (gen_opts_load(&o, (uint32_t)o.bench_s, false, &m, &c)) return 1;
    uint32_t nb = o.n_batch;
    bench b = {.c = c, .n_vocab = lgpu_model_hparams(m)->n_vocab, .rng = 0x2545F4914F6CDD1Dull,
               .n_seqs = o.bench_s};
    b.tok = malloc(nb * sizeof *b.tok);
    b.seq = malloc(nb * sizeof *b.seq);
    b.pos = malloc(nb * sizeof *b.pos);
    b.want = malloc(nb);
    int rc = 1;
    if (!b.tok || !b.seq || !b.pos || !b.want) {
        fprintf(stderr, "lgpu bench: out of memory\n");
        goto out;
    }
    /* model column: the description without " on <device>" */
    char model[160], backend[200], row[512];
    snprintf(model, sizeof model, "%s", lgpu_model_desc(m));
    char *on = strstr(model, " on ");
    if (on) *on = 0;
    if (o.n_loras) /* every sequence applies the adapters, unmerged */
        snprintf(model + strlen(model), sizeof model - strlen(model), " + %d LoRA", o.n_loras);
    lgpu_dev *dev = lgpu_model_dev(m);
    if (lgpu_dev_kind_of(dev) == LGPU_DEV_CPU)
        snprintf(backend, sizeof backend, "CPU (%d thread%s)", lgpu_dev_threads(dev), lgpu_dev_threads(dev) == 1 ? "" : "s");
    else
        snprintf(backend, sizeof backend, "Vulkan (%s)", lgpu_dev_name(dev));
    double mib = lgpu_model_weight_bytes(m) / 1048576.0, params = (double)lgpu_model_n_params(m);
    char size[32], np[32];
    if (mib < 1024) snprintf(size, sizeof size, "%.2f MiB", mib);
    else snprintf(size, sizeof size, "%.2f GiB", mib / 1024);
    if (params < 1e9) snprintf(np, sizeof np, "%.2f M", params / 1e6);
    else snprintf(np, sizeof np, "%.2f B", params / 1e9);
    snprintf(row, sizeof row, "| %s | %s | %s | %s |", model, size, np, backend);
    printf("| model | size | params | backend | test | t/s |\n");
    printf("| --- | ---: | ---: | --- | ---: | ---: |\n");
    fflush(stdout);
    if (o.bench_p > 0 && run_test(&b, "pp", o.bench_p, o.bench_r, run_pp, row, 1)) goto out;
    if (o.bench_n > 0 && run_test(&b, "tg", o.bench_n, o.bench_r, run_tg, row, o.bench_s)) goto out;
    rc = 0;
out:
    free(b.tok);
    free(b.seq);
    free(b.pos);
    free(b.want);
    lgpu_ctx_destroy(c);
    lgpu_model_destroy(m);
    return rc;
}
