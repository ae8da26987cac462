/* lgpu-eval bench: a load generator for lgpu-serve (or any OpenAI-compatible
 * server). Keeps C streaming /v1/completions requests in flight with libcurl's
 * multi interface until R have completed, and reports the aggregate
 * generated tokens/s, time to first token (p50/p99) and per-stream rates.
 * Token counts come from the final usage chunk (stream_options.include_usage). */
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "lgpu/lgpu.h"

typedef struct {
    const char *url, *prompt, *model;
    int concurrency, requests, max_tokens;
    bool json_out, ignore_eos;
} bench_opts;

typedef struct {
    CURL *h;
    struct curl_slist *hdr;
    char *body;
    char *buf; /* SSE bytes not parsed yet */
    size_t len, cap;
    double t_start, t_first, t_end;
    long tokens;
    bool failed, done;
} xfer;

/* One SSE "data: ..." event. */
static void on_event(xfer *x, const char *data, size_t n) {
    if (n == 6 && !memcmp(data, "[DONE]", 6)) {
        x->done = true;
        return;
    }
    json_t *j = json_loadb(data, n, 0, NULL);
    if (!j) return;
    if (json_object_get(j, "error")) x->failed = true;
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    const char *text = json_string_value(json_object_get(ch, "text"));
    if (text && *text && x->t_first == 0) x->t_first = lgpu_now_s();
    json_t *usage = json_object_get(j, "usage");
    if (json_is_object(usage)) x->tokens = (long)json_integer_value(json_object_get(usage, "completion_tokens"));
    json_decref(j);
}

static size_t on_data(char *p, size_t sz, size_t nm, void *user) {
    xfer *x = user;
    size_t n = sz * nm;
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 4096;
        while (cap < x->len + n + 1) cap *= 2;
        char *b = realloc(x->buf, cap);
        if (!b) return 0;
        x->buf = b;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    x->buf[x->len] = 0;
    char *start = x->buf, *end;
    while ((end = strstr(start, "\n\n"))) {
        if (!strncmp(start, "data: ", 6)) on_event(x, start + 6, (size_t)(end - start - 6));
        start = end + 2;
    }
    x->len -= (size_t)(start - x->buf);
    memmove(x->buf, start, x->len + 1);
    return n;
}

static int start_xfer(CURLM *m, xfer *x, const bench_opts *o, const char *endpoint) {
    memset(x, 0, sizeof *x);
    json_t *b = json_object(), *so = json_object();
    json_object_set_new(b, "prompt", json_string(o->prompt));
    json_object_set_new(b, "max_tokens", json_integer(o->max_tokens));
    json_object_set_new(b, "temperature", json_real(0.0));
    json_object_set_new(b, "stream", json_true());
    if (o->ignore_eos) json_object_set_new(b, "ignore_eos", json_true());
    if (o->model) json_object_set_new(b, "model", json_string(o->model));
    json_object_set_new(so, "include_usage", json_true());
    json_object_set_new(b, "stream_options", so);
    x->body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    x->h = curl_easy_init();
    if (!x->body || !x->h) return -1;
    x->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(x->h, CURLOPT_URL, endpoint);
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdr);
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
    x->t_start = lgpu_now_s();
    return curl_multi_add_handle(m, x->h) == CURLM_OK ? 0 : -1;
}

static void end_xfer(CURLM *m, xfer *x) {
    curl_multi_remove_handle(m, x->h);
    curl_easy_cleanup(x->h);
    curl_slist_free_all(x->hdr);
    free(x->body);
    free(x->buf);
    x->h = NULL;
    x->hdr = NULL;
    x->body = x->buf = NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, int n, double p) {
    if (n == 0) return 0;
    int i = (int)(p / 100.0 * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void usage(FILE *f) {
    fprintf(f, "usage: lgpu-eval bench --url URL [--concurrency C] [--requests R] [--max-tokens N]\n"
               "                       [--prompt TEXT] [--model NAME] [--stop-at-eos] [--json]\n"
               "Streams R completions, C at a time, from URL (e.g. http://127.0.0.1:8080) and reports\n"
               "aggregate generated tokens/s and time to first token. Defaults: C 1, R 8, N 128;\n"
               "generation ignores end-of-sequence tokens unless --stop-at-eos.\n");
}

static int parse(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){.prompt = "Once upon a time", .concurrency = 1, .requests = 8, .max_tokens = 128,
                      .ignore_eos = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--json")) {
            o->json_out = true;
        } else if (!strcmp(a, "--stop-at-eos")) {
            o->ignore_eos = false;
        } else if (!v) {
            fprintf(stderr, "lgpu-eval bench: %s needs a value\n", a);
            return -1;
        } else if (!strcmp(a, "--url")) {
            o->url = v, i++;
        } else if (!strcmp(a, "--prompt")) {
            o->prompt = v, i++;
        } else if (!strcmp(a, "--model")) {
            o->model = v, i++;
        } else if (!strcmp(a, "--concurrency") || !strcmp(a, "--requests") || !strcmp(a, "--max-tokens")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 100000) {
                fprintf(stderr, "lgpu-eval bench: %s: '%s' is not a count in [1, 100000]\n", a, v);
                return -1;
            }
            if (!strcmp(a, "--concurrency")) o->concurrency = (int)n;
            else if (!strcmp(a, "--requests")) o->requests = (int)n;
            else o->max_tokens = (int)n;
            i++;
        } else {
            fprintf(stderr, "lgpu-eval bench: unknown option '%s'\n", a);
            return -1;
        }
    }
    if (!o->url) {
        fprintf(stderr, "lgpu-eval bench: --url is required\n");
        return -1;
    }
    return 0;
}

int lgpu_eval_bench(int argc, char **argv) {
    bench_opts o;
    if (parse(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    char endpoint[1024];
    size_t ul = strlen(o.url);
    snprintf(endpoint, sizeof endpoint, "%.*s/v1/completions", (int)(ul && o.url[ul - 1] == '/' ? ul - 1 : ul), o.url);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    int C = o.concurrency < o.requests ? o.concurrency : o.requests;
    xfer *slots = calloc((size_t)C, sizeof *slots);
    double *ttft = calloc((size_t)o.requests, sizeof *ttft), *rate = calloc((size_t)o.requests, sizeof *rate);
    if (!m || !slots || !ttft || !rate) {
        fprintf(stderr, "lgpu-eval bench: out of memory\n");
        return 1;
    }
    int started = 0, finished = 0, failed = 0, n_ok = 0;
    long total_tokens = 0;
    double t0 = lgpu_now_s();
    for (int i = 0; i < C; i++, started++)
        if (start_xfer(m, &slots[i], &o, endpoint)) {
            fprintf(stderr, "lgpu-eval bench: cannot start a transfer\n");
            return 1;
        }
    while (finished < o.requests) {
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            xfer *x;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            x->t_end = lgpu_now_s();
            if (msg->data.result != CURLE_OK || code != 200 || x->failed || !x->done || x->t_first == 0) {
                failed++;
                if (failed <= 3)
                    fprintf(stderr, "lgpu-eval bench: request failed (%s, HTTP %ld)\n",
                            curl_easy_strerror(msg->data.result), code);
            } else {
                ttft[n_ok] = x->t_first - x->t_start;
                rate[n_ok] = x->tokens > 1 && x->t_end > x->t_first ? (x->tokens - 1) / (x->t_end - x->t_first) : 0;
                total_tokens += x->tokens;
                n_ok++;
            }
            finished++;
            end_xfer(m, x);
            if (started < o.requests) {
                if (start_xfer(m, x, &o, endpoint)) failed++, finished++;
                started++;
            }
        }
        if (finished < o.requests) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double wall = lgpu_now_s() - t0;
    qsort(ttft, (size_t)n_ok, sizeof *ttft, cmp_double);
    qsort(rate, (size_t)n_ok, sizeof *rate, cmp_double);
    double agg = wall > 0 ? (double)total_tokens / wall : 0;
    if (o.json_out) {
        printf("{\"concurrency\":%d,\"requests\":%d,\"failed\":%d,\"max_tokens\":%d,\"wall_s\":%.3f,"
               "\"generated_tokens\":%ld,\"tokens_per_s\":%.2f,\"ttft_p50_s\":%.4f,\"ttft_p99_s\":%.4f,"
               "\"stream_tokens_per_s_p50\":%.2f}\n",
               C, o.requests, failed, o.max_tokens, wall, total_tokens, agg, pct(ttft, n_ok, 50), pct(ttft, n_ok, 99),
               pct(rate, n_ok, 50));
    } else {
        printf("url %s, concurrency %d, %d requests (%d failed), max_tokens %d\n", o.url, C, o.requests, failed,
               o.max_tokens);
        printf("wall %.2f s, generated %ld tokens: %.1f tokens/s aggregate\n", wall, total_tokens, agg);
        printf("TTFT p50 %.1f ms, p99 %.1f ms; per-stream %.1f tokens/s (p50)\n", pct(ttft, n_ok, 50) * 1e3,
               pct(ttft, n_ok, 99) * 1e3, pct(rate, n_ok, 50));
    }
    free(slots);
    free(ttft);
    free(rate);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
