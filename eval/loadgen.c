/* lgpu-eval bench: a load generator for lgpu-serve (or any OpenAI-compatible
 * server). For each concurrency level it keeps C streaming /v1/completions
 * requests in flight with libcurl's multi interface until R have completed,
 * timing each token as it arrives: time to first token, the gaps between
 * tokens (inter-token latency) and end to end. Token counts come from the
 * final usage chunk (stream_options.include_usage). Meanwhile it samples the
 * server's /monitor/gpu (utilization, device memory) through the same multi
 * handle, so sampling never stalls the requests' clocks. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "eval.h"
#include "lgpu/lgpu.h"
#include "report.h"

typedef struct dbuf { /* a growing array of doubles */
    double *v;
    size_t n, cap;
} dbuf;

static int dbuf_push(dbuf *b, double x) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        double *v = realloc(b->v, cap * sizeof *v);
        if (!v) return -1;
        b->v = v, b->cap = cap;
    }
    b->v[b->n++] = x;
    return 0;
}

typedef struct xfer {
    CURL *h;
    struct curl_slist *hdr;
    char *body;
    char *buf; /* bytes not parsed yet */
    size_t len, cap;
    double t_start, t_first, t_last, t_end;
    long tokens;
    bool failed, done, is_monitor;
    char error[160]; /* the server's error message, if it sent one */
    dbuf *itl;       /* where the gaps between tokens go */
} xfer;

/* One SSE "data: ..." event of a completion stream. */
static void on_event(xfer *x, const char *data, size_t n) {
    if (n == 6 && !memcmp(data, "[DONE]", 6)) {
        x->done = true;
        return;
    }
    json_t *j = json_loadb(data, n, 0, NULL);
    if (!j) return;
    json_t *err = json_object_get(j, "error");
    if (err) {
        x->failed = true;
        const char *msg = json_string_value(json_object_get(err, "message"));
        snprintf(x->error, sizeof x->error, "%s", msg ? msg : "error event");
    }
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    const char *text = json_string_value(json_object_get(ch, "text"));
    if (text && *text) {
        double now = lgpu_now_s();
        if (x->t_first == 0) x->t_first = now;
        else if (dbuf_push(x->itl, now - x->t_last)) x->failed = true;
        x->t_last = now;
    }
    json_t *usage = json_object_get(j, "usage");
    if (json_is_object(usage)) x->tokens = (long)json_integer_value(json_object_get(usage, "completion_tokens"));
    json_decref(j);
}

static int buf_append(xfer *x, const char *p, size_t n) {
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 4096;
        while (cap < x->len + n + 1) cap *= 2;
        char *b = realloc(x->buf, cap);
        if (!b) return -1;
        x->buf = b, x->cap = cap;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    x->buf[x->len] = 0;
    return 0;
}

static size_t on_data(char *p, size_t sz, size_t nm, void *user) {
    xfer *x = user;
    size_t n = sz * nm;
    if (buf_append(x, p, n)) return 0;
    if (x->is_monitor) return n; /* one JSON document, parsed when done */
    char *start = x->buf, *end;
    while ((end = strstr(start, "\n\n"))) {
        if (!strncmp(start, "data: ", 6)) on_event(x, start + 6, (size_t)(end - start - 6));
        start = end + 2;
    }
    x->len -= (size_t)(start - x->buf);
    memmove(x->buf, start, x->len + 1);
    return n;
}

static void endpoint(const char *url, const char *path, char *out, size_t cap) {
    size_t ul = strlen(url);
    snprintf(out, cap, "%.*s%s", (int)(ul && url[ul - 1] == '/' ? ul - 1 : ul), url, path);
}

static int setup_handle(xfer *x, const bench_opts *o, const char *url) {
    x->h = curl_easy_init();
    if (!x->h) return -1;
    if (o->api_key) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->api_key);
        x->hdr = curl_slist_append(x->hdr, auth);
    }
    curl_easy_setopt(x->h, CURLOPT_URL, url);
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdr);
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    return 0;
}

static int start_request(CURLM *m, xfer *x, const bench_opts *o, const char *url, dbuf *itl) {
    memset(x, 0, sizeof *x);
    x->itl = itl;
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
    x->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (!x->body || !x->hdr || setup_handle(x, o, url)) return -1;
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000));
    x->t_start = lgpu_now_s();
    return curl_multi_add_handle(m, x->h) == CURLM_OK ? 0 : -1;
}

static int start_monitor(CURLM *m, xfer *x, const bench_opts *o, const char *url) {
    memset(x, 0, sizeof *x);
    x->is_monitor = true;
    if (setup_handle(x, o, url)) return -1;
    curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, 2000L);
    x->t_start = lgpu_now_s();
    return curl_multi_add_handle(m, x->h) == CURLM_OK ? 0 : -1;
}

static void end_xfer(CURLM *m, xfer *x) {
    if (!x->h) return;
    curl_multi_remove_handle(m, x->h);
    curl_easy_cleanup(x->h);
    curl_slist_free_all(x->hdr);
    free(x->body);
    free(x->buf);
    x->h = NULL, x->hdr = NULL, x->body = x->buf = NULL;
}

static double num_or_nan(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A finished /monitor/gpu request: a sample, or the reason sampling stops. */
static void monitor_done(bench_result *r, xfer *x, CURLcode res, long code, double t0, int level) {
    json_t *j = res == CURLE_OK && code == 200 && x->buf ? json_loads(x->buf, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        r->monitor_ok = false;
        if (res != CURLE_OK) snprintf(r->monitor_note, sizeof r->monitor_note, "/monitor/gpu: %s", curl_easy_strerror(res));
        else snprintf(r->monitor_note, sizeof r->monitor_note,
                      "/monitor/gpu answered HTTP %ld%s (not lgpu-serve, or no model loaded)", code,
                      code == 200 ? " without a JSON object" : "");
        json_decref(j);
        return;
    }
    if (!r->monitor_first) {
        r->monitor_first = json_incref(j);
        const char *dev = json_string_value(json_object_get(j, "device"));
        snprintf(r->server_device, sizeof r->server_device, "%s", dev ? dev : "");
    }
    if (r->n_samples == r->cap_samples) {
        size_t cap = r->cap_samples ? r->cap_samples * 2 : 64;
        bench_sample *s = realloc(r->samples, cap * sizeof *s);
        if (!s) {
            json_decref(j);
            return;
        }
        r->samples = s, r->cap_samples = cap;
    }
    r->samples[r->n_samples++] = (bench_sample){
        .t = x->t_start - t0,
        .level = level,
        .utilization = num_or_nan(j, "utilization"),
        .memory_used = num_or_nan(j, "memory_used_bytes"),
        .memory_peak = num_or_nan(j, "memory_peak_bytes"),
    };
    json_decref(j);
}

/* One concurrency level: R requests, C at a time. 0, or -1 when nothing
 * could be started (message printed). */
static int run_level(CURLM *m, const bench_opts *o, bench_result *r, int li, double t0) {
    bench_level *lv = &r->levels[li];
    char url[1100], mon_url[1100];
    endpoint(o->url, "/v1/completions", url, sizeof url);
    endpoint(o->url, "/monitor/gpu", mon_url, sizeof mon_url);
    int R = lv->requests, C = lv->concurrency < R ? lv->concurrency : R;
    xfer *slots = calloc((size_t)C, sizeof *slots), mon = {0};
    dbuf ttft = {0}, itl = {0}, e2e = {0};
    if (!slots) return -1;
    int started = 0, finished = 0, rc = 0;
    double level_t0 = lgpu_now_s(), next_sample = level_t0;
    bool mon_busy = false;
    for (int i = 0; i < C; i++, started++)
        if (start_request(m, &slots[i], o, url, &itl)) {
            fprintf(stderr, "lgpu-eval bench: cannot start a request\n");
            rc = -1;
            C = i;
            break;
        }
    while (!rc && finished < R) {
        double now = lgpu_now_s();
        if (r->monitor_ok && o->monitor_every > 0 && !mon_busy && now >= next_sample) {
            if (!start_monitor(m, &mon, o, mon_url)) mon_busy = true;
            next_sample = now + o->monitor_every;
        }
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
            if (x->is_monitor) {
                monitor_done(r, x, msg->data.result, code, t0, lv->concurrency);
                end_xfer(m, x);
                mon_busy = false;
                continue;
            }
            x->t_end = lgpu_now_s();
            if (msg->data.result != CURLE_OK || code != 200 || x->failed || !x->done || x->t_first == 0) {
                if (++lv->failed <= 3) {
                    if (code != 200 && x->buf && x->len) { /* a JSON error body */
                        json_t *j = json_loads(x->buf, 0, NULL);
                        const char *msg_text = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
                        if (msg_text) snprintf(x->error, sizeof x->error, "%s", msg_text);
                        json_decref(j);
                    }
                    fprintf(stderr, "lgpu-eval bench: a request failed (%s, HTTP %ld)%s%s\n",
                            curl_easy_strerror(msg->data.result), code, x->error[0] ? ": " : "", x->error);
                }
            } else if (dbuf_push(&ttft, x->t_first - x->t_start) || dbuf_push(&e2e, x->t_end - x->t_start)) {
                rc = -1;
            } else {
                lv->generated_tokens += x->tokens;
            }
            finished++;
            end_xfer(m, x);
            if (started < R) {
                if (start_request(m, x, o, url, &itl)) lv->failed++, finished++;
                started++;
            }
        }
        if (finished < R) curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    lv->wall_s = lgpu_now_s() - level_t0;
    for (int i = 0; i < C; i++) end_xfer(m, &slots[i]);
    end_xfer(m, &mon);
    free(slots);
    int ok = R - lv->failed;
    lv->requests_per_s = lv->wall_s > 0 ? ok / lv->wall_s : 0;
    lv->tokens_per_s = lv->wall_s > 0 ? (double)lv->generated_tokens / lv->wall_s : 0;
    lv->ttft = bench_summarize(ttft.v, ttft.n);
    lv->itl = bench_summarize(itl.v, itl.n);
    lv->e2e = bench_summarize(e2e.v, e2e.n);
    lv->e2e_sorted = e2e.v, lv->n_e2e = e2e.n;
    free(ttft.v);
    free(itl.v);
    return rc;
}

/* GET /v1/models first, so that an unreachable server is one clear line. */
static int check_reachable(const bench_opts *o) {
    char url[1100];
    endpoint(o->url, "/v1/models", url, sizeof url);
    xfer x = {.is_monitor = true};
    if (setup_handle(&x, o, url)) return -1;
    curl_easy_setopt(x.h, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode res = curl_easy_perform(x.h);
    long code = 0;
    curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(x.h);
    curl_slist_free_all(x.hdr);
    free(x.buf);
    if (res != CURLE_OK) {
        fprintf(stderr, "lgpu-eval bench: cannot reach %s: %s\n", o->url, curl_easy_strerror(res));
        return -1;
    }
    if (code == 401 || code == 403) {
        fprintf(stderr, "lgpu-eval bench: %s refused the request (HTTP %ld): give a key with --api-key or LGPU_API_KEY\n",
                o->url, code);
        return -1;
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: lgpu-eval bench --url URL [--concurrency C[,C...]] [--requests R] [--max-tokens N]\n"
            "                       [--prompt TEXT] [--model NAME] [--api-key KEY] [--stop-at-eos]\n"
            "                       [--monitor-every S] [--timeout S] [--json [FILE]] [-o DIR] [-q]\n"
            "Streams completions from URL (e.g. http://127.0.0.1:8080), C at a time, for each level of\n"
            "--concurrency (a sweep: 1,8,32), and reports per level: requests/s and generated tokens/s\n"
            "(over the level's wall time), and p50/p95/p99 of time to first token, inter-token latency\n"
            "and end-to-end latency; with lgpu-serve, its /monitor/gpu (utilization, device memory)\n"
            "sampled every S seconds (default 0.5; 0: off).\n"
            "  --requests R    requests per level (default: max(8, 2 x C))\n"
            "  --max-tokens N  tokens per request (default 128); generation ignores end-of-sequence\n"
            "                  tokens unless --stop-at-eos, so every request writes N\n"
            "  --api-key KEY   bearer key (default: $LGPU_API_KEY, else $OPENAI_API_KEY)\n"
            "  --timeout S     per request (default 600)\n"
            "  --json [FILE]   the results as JSON (schema " BENCH_SCHEMA ") on stdout, or in FILE\n"
            "  -o DIR          a report: DIR/bench.md, bench.html (charts), bench.json\n"
            "Exit: 0, 1 when a request failed or the server is unreachable, 2 on bad usage.\n"
            "`lgpu-eval gate` compares two --json results (a CI regression gate).\n");
}

static int parse_levels(const char *v, bench_opts *o) {
    o->n_levels = 0;
    const char *p = v;
    while (*p) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n < 1 || n > 100000 || (*end && *end != ',') || o->n_levels == BENCH_MAX_LEVELS) {
            fprintf(stderr, "lgpu-eval bench: --concurrency '%s': want counts in [1, 100000] separated by commas, "
                            "at most %d\n", v, BENCH_MAX_LEVELS);
            return -1;
        }
        o->levels[o->n_levels++] = (int)n;
        p = *end ? end + 1 : end;
    }
    return o->n_levels ? 0 : -1;
}

static int parse_seconds(const char *a, const char *v, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (*end || !(d >= 0) || d > 86400) {
        fprintf(stderr, "lgpu-eval bench: %s: '%s' is not a number of seconds\n", a, v);
        return -1;
    }
    *out = d;
    return 0;
}

/* -1: bad usage; 1: --help printed */
static int parse(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){.prompt = "Once upon a time", .levels = {1}, .n_levels = 1, .max_tokens = 128,
                      .ignore_eos = true, .monitor_every = 0.5, .timeout = 600};
    o->api_key = getenv("LGPU_API_KEY");
    if (!o->api_key || !*o->api_key) o->api_key = getenv("OPENAI_API_KEY");
    if (o->api_key && !*o->api_key) o->api_key = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--json")) {
            if (v && v[0] != '-') o->json_path = v, i++;
            else o->json_stdout = true;
        } else if (!strcmp(a, "--stop-at-eos")) {
            o->ignore_eos = false;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = true;
        } else if (!v) {
            fprintf(stderr, "lgpu-eval bench: %s needs a value\n", a);
            return -1;
        } else if (!strcmp(a, "--url")) {
            o->url = v, i++;
        } else if (!strcmp(a, "--prompt")) {
            o->prompt = v, i++;
        } else if (!strcmp(a, "--model")) {
            o->model = v, i++;
        } else if (!strcmp(a, "--api-key")) {
            o->api_key = v, i++;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            o->out_dir = v, i++;
        } else if (!strcmp(a, "--concurrency")) {
            if (parse_levels(v, o)) return -1;
            i++;
        } else if (!strcmp(a, "--monitor-every") || !strcmp(a, "--timeout")) {
            if (parse_seconds(a, v, !strcmp(a, "--timeout") ? &o->timeout : &o->monitor_every)) return -1;
            i++;
        } else if (!strcmp(a, "--requests") || !strcmp(a, "--max-tokens")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 100000) {
                fprintf(stderr, "lgpu-eval bench: %s: '%s' is not a count in [1, 100000]\n", a, v);
                return -1;
            }
            if (!strcmp(a, "--requests")) o->requests = (int)n;
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
    int prc = parse(argc, argv, &o);
    if (prc) {
        if (prc < 0) usage(stderr);
        return prc < 0 ? 2 : 0;
    }
    if (o.out_dir) {
        char err[600];
        if (report_make_dir(o.out_dir, err, sizeof err)) {
            fprintf(stderr, "lgpu-eval bench: %s\n", err);
            return 1;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    bench_result r = {.o = &o, .monitor_ok = o.monitor_every > 0};
    if (!r.monitor_ok) snprintf(r.monitor_note, sizeof r.monitor_note, "sampling turned off (--monitor-every 0)");
    int rc = 0, any_failed = 0;
    CURLM *m = NULL;
    if (check_reachable(&o) || !(m = curl_multi_init())) {
        rc = 1;
        goto done;
    }
    double t0 = lgpu_now_s();
    for (int i = 0; i < o.n_levels; i++) {
        bench_level *lv = &r.levels[i];
        lv->concurrency = o.levels[i];
        lv->requests = o.requests ? o.requests : o.levels[i] * 2 > 8 ? o.levels[i] * 2 : 8;
        if (!o.quiet)
            fprintf(stderr, "lgpu-eval bench: concurrency %d: %d requests of %d tokens...\n", lv->concurrency,
                    lv->requests, o.max_tokens);
        r.n_levels = i + 1;
        if (run_level(m, &o, &r, i, t0)) {
            rc = 1;
            goto done;
        }
        any_failed |= lv->failed > 0;
        if (!o.quiet)
            fprintf(stderr, "lgpu-eval bench: concurrency %d: %.2f requests/s, %.1f tokens/s, TTFT p95 %.1f ms%s\n",
                    lv->concurrency, lv->requests_per_s, lv->tokens_per_s, lv->ttft.p95 * 1e3,
                    lv->failed ? " (some requests failed)" : "");
    }
    if (!r.n_samples && r.monitor_ok) snprintf(r.monitor_note, sizeof r.monitor_note, "no sample came back in time");
    json_t *j = bench_result_json(&r);
    if (!j) {
        fprintf(stderr, "lgpu-eval bench: out of memory\n");
        rc = 1;
        goto done;
    }
    if (o.json_stdout) {
        char *s = json_dumps(j, JSON_INDENT(2));
        if (s) puts(s);
        free(s);
    } else {
        bench_print_text(&r);
    }
    if (o.json_path && json_dump_file(j, o.json_path, JSON_INDENT(2))) {
        fprintf(stderr, "lgpu-eval bench: cannot write %s\n", o.json_path);
        rc = 1;
    }
    if (o.out_dir && bench_write_report(&r, o.out_dir, j)) rc = 1;
    json_decref(j);
    if (!rc && any_failed) rc = 1;
done:
    for (int i = 0; i < r.n_levels; i++) free(r.levels[i].e2e_sorted);
    free(r.samples);
    json_decref(r.monitor_first);
    if (m) curl_multi_cleanup(m);
    curl_global_cleanup();
    return rc;
}
