/* The sampler chain (see sampler.h for the order and semantics).
 *
 * Candidates are (id, logit) pairs. With a 128k vocabulary a full sort per
 * token would dominate, so: top_k uses a quickselect then sorts only the k
 * survivors; top_p sorts lazily, growing a sorted prefix (64, 128, ...) until
 * the cumulative mass is reached; min_p and the final draw need no order. */
#include "lgpu/sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct {
    int32_t id;
    float logit;
} cand;

struct lgpu_sampler {
    lgpu_sampler_params p;
    uint64_t seed; /* the seed actually used (resolved from SEED_RANDOM) */
    uint64_t rng[4];
    int32_t *hist; /* accepted tokens; only the last repeat_last_n matter */
    size_t hist_len, hist_cap;
    float *work;     /* penalised copy of the logits */
    int32_t *counts; /* per-token counts in the window, all zero between calls */
    cand *c;
    size_t vocab_cap;
};

void lgpu_sampler_params_default(lgpu_sampler_params *p) {
    *p = (lgpu_sampler_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .typical_p = 1.0f,
        .repeat_last_n = 64,
        .repeat_penalty = 1.0f,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .seed = LGPU_SAMPLER_SEED_RANDOM,
    };
}

/* ---- RNG: xoshiro256** seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(lgpu_sampler *s) {
    uint64_t x = s->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t *r) {
    uint64_t out = rotl(r[1] * 5, 7) * 9, t = r[1] << 17;
    r[2] ^= r[0];
    r[3] ^= r[1];
    r[1] ^= r[2];
    r[0] ^= r[3];
    r[2] ^= t;
    r[3] = rotl(r[3], 45);
    return out;
}

/* Uniform in [0, 1). */
static double rng_uniform(uint64_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* ---- create / destroy / history ---- */

static int check_params(const lgpu_sampler_params *p) {
    const struct {
        const char *name;
        float v, lo;
    } f[] = {
        {"temperature", p->temperature, -FLT_MAX}, {"top_p", p->top_p, 0.0f},
        {"min_p", p->min_p, 0.0f},                 {"typical_p", p->typical_p, 0.0f},
        {"repeat_penalty", p->repeat_penalty, FLT_MIN}, {"presence_penalty", p->presence_penalty, -FLT_MAX},
        {"frequency_penalty", p->frequency_penalty, -FLT_MAX},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!isfinite(f[i].v) || f[i].v < f[i].lo)
            return lgpu_set_error(LGPU_EINVAL, "sampler params: %s = %g is out of range", f[i].name, (double)f[i].v);
    if (p->min_p > 1.0f) return lgpu_set_error(LGPU_EINVAL, "sampler params: min_p = %g > 1", (double)p->min_p);
    if (p->repeat_last_n < -1)
        return lgpu_set_error(LGPU_EINVAL, "sampler params: repeat_last_n = %d (want -1, 0 or > 0)", p->repeat_last_n);
    return 0;
}

int lgpu_sampler_create(const lgpu_sampler_params *params, lgpu_sampler **out) {
    if (!params || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_sampler_create: NULL argument");
    *out = NULL;
    int st = check_params(params);
    if (st) return st;
    lgpu_sampler *s = calloc(1, sizeof *s);
    if (!s) return lgpu_set_error(LGPU_ENOMEM, "lgpu_sampler_create: out of memory");
    s->p = *params;
    s->seed = params->seed;
    if (s->seed == LGPU_SAMPLER_SEED_RANDOM && getrandom(&s->seed, sizeof s->seed, 0) != (ssize_t)sizeof s->seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
    }
    rng_seed(s);
    *out = s;
    return 0;
}

void lgpu_sampler_destroy(lgpu_sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->work);
    free(s->counts);
    free(s->c);
    free(s);
}

void lgpu_sampler_reset(lgpu_sampler *s) {
    if (!s) return;
    s->hist_len = 0;
    rng_seed(s);
}

int lgpu_sampler_accept(lgpu_sampler *s, int32_t token) {
    if (!s || token < 0) return lgpu_set_error(LGPU_EINVAL, "lgpu_sampler_accept: bad sampler or token %d", token);
    if (s->p.repeat_last_n == 0) return 0;
    size_t keep = s->p.repeat_last_n > 0 ? (size_t)s->p.repeat_last_n : 0;
    /* A bounded window compacts to its last `keep` tokens when the buffer
     * reaches 2*keep: amortised O(1) without a ring's index arithmetic. */
    if (keep && s->hist_len == 2 * keep) {
        memmove(s->hist, s->hist + keep, keep * sizeof *s->hist);
        s->hist_len = keep;
    }
    if (s->hist_len == s->hist_cap) {
        size_t cap = keep ? 2 * keep : (s->hist_cap ? 2 * s->hist_cap : 256);
        int32_t *h = realloc(s->hist, cap * sizeof *h);
        if (!h) return lgpu_set_error(LGPU_ENOMEM, "lgpu_sampler_accept: out of memory (%zu tokens)", cap);
        s->hist = h;
        s->hist_cap = cap;
    }
    s->hist[s->hist_len++] = token;
    return 0;
}

static int reserve_vocab(lgpu_sampler *s, size_t n) {
    if (n <= s->vocab_cap) return 0;
    float *w = realloc(s->work, n * sizeof *w);
    if (w) s->work = w;
    cand *c = realloc(s->c, n * sizeof *c);
    if (c) s->c = c;
    int32_t *k = calloc(n, sizeof *k); /* must start zeroed; old one is all zero too */
    if (!w || !c || !k) {
        free(k);
        return lgpu_set_error(LGPU_ENOMEM, "sampler: out of memory for a vocabulary of %zu", n);
    }
    free(s->counts);
    s->counts = k;
    s->vocab_cap = n;
    return 0;
}

/* ---- ordering helpers ---- */

/* Strict total order: higher logit first, then lower id (ids are unique). */
static inline int better(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return better(x, y) ? -1 : better(y, x) ? 1 : 0;
}

static void swap_cand(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Rearranges c[0..n) so that c[0..k) holds the k best (unordered), like
 * std::nth_element. Median-of-3 quickselect; falls back to qsort if the
 * partitions keep being lopsided, which bounds the worst case. */
static void select_top(cand *c, size_t n, size_t k) {
    if (k == 0 || k >= n) return;
    size_t lo = 0, hi = n;
    int budget = 8;
    for (size_t m = n; m > 1; m >>= 1) budget += 2;
    while (hi - lo > 16) {
        if (budget-- == 0) {
            qsort(c + lo, hi - lo, sizeof *c, cmp_cand);
            return;
        }
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        /* median of c[lo], c[mid], c[last] -> c[last] */
        if (better(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
        if (better(&c[last], &c[lo])) swap_cand(&c[last], &c[lo]);
        if (better(&c[mid], &c[last])) swap_cand(&c[mid], &c[last]);
        size_t i = lo;
        for (size_t j = lo; j < last; j++)
            if (better(&c[j], &c[last])) swap_cand(&c[i++], &c[j]);
        swap_cand(&c[i], &c[last]);
        /* c[lo..i) better than the pivot at i, c[i+1..hi) worse */
        if (i == k || i + 1 == k) return;
        if (k < i) hi = i;
        else lo = i + 1;
    }
    qsort(c + lo, hi - lo, sizeof *c, cmp_cand);
}

/* c[0..have) is sorted and better than everything after it; extends the
 * sorted prefix to `want` elements. Returns the new prefix length. */
static size_t grow_sorted(cand *c, size_t n, size_t have, size_t want) {
    if (want > n) want = n;
    if (want <= have) return have;
    select_top(c + have, n - have, want - have);
    qsort(c + have, want - have, sizeof *c, cmp_cand);
    return want;
}

/* ---- the chain ---- */

/* top_k up to this size takes the heap path */
#define HEAP_TOP_K 256

/* Min-heap on `better` (root = the worst kept). */
static void cand_sift_down(cand *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&h[w], &h[l])) w = l;
        if (r < n && better(&h[w], &h[r])) w = r;
        if (w == i) return;
        swap_cand(&h[i], &h[w]);
        i = w;
    }
}

/* The k best finite logits of w[0..nv) into c, sorted best first; returns
 * how many (< k only if fewer are finite). */
static size_t top_k_heap(const float *w, size_t nv, cand *c, size_t k) {
    size_t h = 0;
    for (size_t i = 0; i < nv; i++) {
        if (!(w[i] > -INFINITY)) continue;
        cand x = {(int32_t)i, w[i]};
        if (h < k) {
            c[h++] = x;
            if (h == k)
                for (size_t j = k / 2; j-- > 0;) cand_sift_down(c, k, j);
        } else if (x.logit > c[0].logit) { /* equal logit: the kept one has the lower id */
            c[0] = x;
            cand_sift_down(c, k, 0);
        }
    }
    qsort(c, h, sizeof *c, cmp_cand);
    return h;
}

static bool penalties_apply(const lgpu_sampler *s) {
    const lgpu_sampler_params *p = &s->p;
    if (p->repeat_last_n == 0 || s->hist_len == 0) return false;
    return p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f;
}

static void apply_penalties(lgpu_sampler *s, float *w, size_t n_vocab) {
    const lgpu_sampler_params *p = &s->p;
    size_t win = s->hist_len;
    if (p->repeat_last_n > 0 && win > (size_t)p->repeat_last_n) win = (size_t)p->repeat_last_n;
    const int32_t *h = s->hist + (s->hist_len - win);
    for (size_t i = 0; i < win; i++)
        if ((size_t)h[i] < n_vocab) s->counts[h[i]]++;
    /* second pass: penalise each distinct token once, zeroing its count */
    for (size_t i = 0; i < win; i++) {
        if ((size_t)h[i] >= n_vocab) continue;
        int32_t cnt = s->counts[h[i]];
        if (!cnt) continue;
        s->counts[h[i]] = 0;
        float *l = &w[h[i]];
        *l = *l > 0 ? *l / p->repeat_penalty : *l * p->repeat_penalty;
        *l -= p->presence_penalty + p->frequency_penalty * (float)cnt;
    }
}

static float max_logit(const cand *c, size_t n) {
    float m = c[0].logit;
    for (size_t i = 1; i < n; i++)
        if (c[i].logit > m) m = c[i].logit;
    return m;
}

/* Sum of exp(logit - m) in double. */
static double sum_exp(const cand *c, size_t n, float m) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += exp((double)c[i].logit - m);
    return sum;
}

typedef struct {
    cand c;
    double score;
} scored;

static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return cmp_cand(&x->c, &y->c);
}

/* Locally typical sampling (llama.cpp semantics): order by |-log p - H|,
 * keep the smallest prefix whose mass exceeds typical_p. */
static int typical(cand *c, size_t *n, float typ) {
    size_t cnt = *n;
    scored *sc = malloc(cnt * sizeof *sc);
    if (!sc) return lgpu_set_error(LGPU_ENOMEM, "sampler: typical_p: out of memory");
    float m = max_logit(c, cnt);
    double sum = sum_exp(c, cnt, m), lsum = log(sum), ent = 0;
    for (size_t i = 0; i < cnt; i++) {
        double lp = (double)c[i].logit - m - lsum;
        ent -= exp(lp) * lp;
    }
    for (size_t i = 0; i < cnt; i++) {
        double lp = (double)c[i].logit - m - lsum;
        sc[i] = (scored){c[i], fabs(-lp - ent)};
    }
    qsort(sc, cnt, sizeof *sc, cmp_scored);
    double cum = 0;
    size_t keep = cnt;
    for (size_t i = 0; i < cnt; i++) {
        cum += exp((double)sc[i].c.logit - m - lsum);
        if (cum > typ) {
            keep = i + 1;
            break;
        }
    }
    for (size_t i = 0; i < keep; i++) c[i] = sc[i].c;
    *n = keep;
    free(sc);
    return 0;
}

/* Nucleus: the smallest most-likely set with mass >= top_p. Returns the new
 * sorted-prefix length (== new n). */
static size_t top_p_filter(cand *c, size_t *n, size_t sorted, float top_p) {
    size_t cnt = *n;
    float m = sorted ? c[0].logit : max_logit(c, cnt);
    double target = top_p * sum_exp(c, cnt, m), cum = 0;
    size_t i = 0;
    for (size_t want = 64;; want *= 2) {
        sorted = grow_sorted(c, cnt, sorted, want);
        for (; i < sorted; i++) {
            cum += exp((double)c[i].logit - m);
            if (cum >= target) {
                *n = i + 1;
                return i + 1;
            }
        }
        if (sorted == cnt) return cnt; /* rounding: keep all */
    }
}

/* Keeps p >= min_p * p_max, i.e. logit >= max + log(min_p); order preserved. */
static void min_p_filter(cand *c, size_t *n, size_t *sorted, float min_p) {
    float thr = max_logit(c, *n) + logf(min_p);
    size_t j = 0;
    for (size_t i = 0; i < *n; i++)
        if (c[i].logit >= thr) c[j++] = c[i];
    if (*sorted > j) *sorted = j;
    *n = j;
}

/* log(sum exp(logits)) over the finite logits (NaN and -inf skipped), in
 * double from the maximum; -inf when none is finite. */
static double log_sum_exp(const float *logits, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (logits[i] > m) m = logits[i];
    if (!(m > -INFINITY)) return -INFINITY;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        if (logits[i] > -INFINITY) sum += exp((double)logits[i] - m); /* NaN compares false: skipped */
    return m + log(sum);
}

static float raw_logprob(const float *logits, size_t n, int32_t tok) {
    double lse = log_sum_exp(logits, n);
    if (lse == -INFINITY) return -INFINITY; /* nothing is possible */
    return (float)((double)logits[tok] - lse);
}

/* The first index of the largest logit that is not -inf or NaN (n: none).
 * Blocks of ARGMAX_BLOCK: a block's maximum from eight independent lanes
 * (NaN never wins a compare, so the loop vectorises without fast-math), and
 * only a block that beats the best so far is scanned for its first index. */
#define ARGMAX_BLOCK 256
typedef float v4f __attribute__((vector_size(16))); /* SSE2 / NEON width, so every target keeps it in registers */
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f max_not_nan(v4f m, v4f v) {
    v4i gt = v > m; /* false for NaN */
    return (v4f)((gt & (v4i)v) | (~gt & (v4i)m));
}

static float block_max(const float *w, size_t n) {
    v4f m0 = {-INFINITY, -INFINITY, -INFINITY, -INFINITY}, m1 = m0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4f a, b;
        memcpy(&a, w + i, sizeof a);
        memcpy(&b, w + i + 4, sizeof b);
        m0 = max_not_nan(m0, a);
        m1 = max_not_nan(m1, b);
    }
    m0 = max_not_nan(m0, m1);
    float m = -INFINITY;
    for (int l = 0; l < 4; l++) m = m0[l] > m ? m0[l] : m;
    for (; i < n; i++) m = w[i] > m ? w[i] : m;
    return m;
}

static size_t argmax_finite(const float *w, size_t n) {
    float best = -INFINITY;
    size_t at = n;
    for (size_t b = 0; b < n; b += ARGMAX_BLOCK) {
        const size_t len = n - b < ARGMAX_BLOCK ? n - b : ARGMAX_BLOCK;
        const float m = block_max(w + b, len);
        if (!(m > best)) continue;
        best = m;
        for (at = b; w[at] != m; at++) {}
    }
    return at;
}

/* Runs penalties and filters; leaves the survivors in s->c[0..*n_out) with
 * their logits divided by the temperature (greedy: just the argmax). */
static int run_chain(lgpu_sampler *s, const float *logits, int32_t n_vocab, size_t *n_out) {
    if (!s || !logits || n_vocab <= 0)
        return lgpu_set_error(LGPU_EINVAL, "sampler: bad argument (n_vocab %d)", n_vocab);
    size_t nv = (size_t)n_vocab;
    int st = reserve_vocab(s, nv);
    if (st) return st;
    const lgpu_sampler_params *p = &s->p;
    const float *w = logits;
    if (penalties_apply(s)) { /* only then is a copy needed */
        memcpy(s->work, logits, nv * sizeof *s->work);
        apply_penalties(s, s->work, nv);
        w = s->work;
    }

    /* -inf (masked) and NaN logits can never be drawn: they are dropped */
    cand *c = s->c;
    if (p->temperature <= 0.0f) { /* greedy: the argmax, no candidate list */
        size_t best = argmax_finite(w, nv);
        if (best == nv) return lgpu_set_error(LGPU_EINVAL, "sampler: all %d logits are -inf or NaN", n_vocab);
        c[0] = (cand){(int32_t)best, w[best]};
        *n_out = 1;
        return 0;
    }
    size_t n = 0, sorted = 0; /* c[0..sorted) is sorted and beats the rest */
    if (p->top_k > 0 && p->top_k <= HEAP_TOP_K) {
        /* the common case (top_k ~40): one pass with a k-heap, most logits
         * rejected by a single compare, no full candidate array */
        n = sorted = top_k_heap(w, nv, c, (size_t)p->top_k);
    } else {
        for (size_t i = 0; i < nv; i++)
            if (w[i] > -INFINITY) c[n++] = (cand){(int32_t)i, w[i]};
    }
    if (n == 0) return lgpu_set_error(LGPU_EINVAL, "sampler: all %d logits are -inf or NaN", n_vocab);
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        select_top(c, n, (size_t)p->top_k);
        n = (size_t)p->top_k;
        qsort(c, n, sizeof *c, cmp_cand);
        sorted = n;
    }
    if (p->typical_p < 1.0f && n > 1) {
        if ((st = typical(c, &n, p->typical_p))) return st;
        sorted = 0;
    }
    if (p->top_p < 1.0f && n > 1) sorted = top_p_filter(c, &n, sorted, p->top_p);
    if (p->min_p > 0.0f && n > 1) min_p_filter(c, &n, &sorted, p->min_p);
    float inv_t = 1.0f / p->temperature;
    for (size_t i = 0; i < n; i++) c[i].logit *= inv_t;
    *n_out = n;
    return 0;
}

int32_t lgpu_sampler_sample(lgpu_sampler *s, const float *logits, int32_t n_vocab, lgpu_sample_info *info) {
    size_t n;
    int st = run_chain(s, logits, n_vocab, &n);
    if (st) return st;
    const cand *c = s->c;
    size_t pick = 0;
    float prob = 1.0f;
    if (n > 1) {
        float m = max_logit(c, n);
        double sum = sum_exp(c, n, m), u = rng_uniform(s->rng) * sum, cum = 0;
        pick = n - 1; /* if rounding leaves u >= the total, take the last */
        for (size_t i = 0; i < n; i++) {
            cum += exp((double)c[i].logit - m);
            if (u < cum) {
                pick = i;
                break;
            }
        }
        prob = (float)(exp((double)c[pick].logit - m) / sum);
    }
    if (info) {
        info->prob = prob;
        info->logprob = raw_logprob(logits, (size_t)n_vocab, c[pick].id);
    }
    return c[pick].id;
}

int lgpu_sampler_probs(lgpu_sampler *s, const float *logits, int32_t n_vocab, int cap, int32_t *ids_out,
                       float *probs_out) {
    if (cap < 0 || (cap > 0 && (!ids_out || !probs_out)))
        return lgpu_set_error(LGPU_EINVAL, "lgpu_sampler_probs: bad output buffers (cap %d)", cap);
    size_t n;
    int st = run_chain(s, logits, n_vocab, &n);
    if (st) return st;
    cand *c = s->c;
    qsort(c, n, sizeof *c, cmp_cand);
    float m = c[0].logit;
    double sum = sum_exp(c, n, m);
    size_t out = n < (size_t)cap ? n : (size_t)cap;
    for (size_t i = 0; i < out; i++) {
        ids_out[i] = c[i].id;
        probs_out[i] = (float)(exp((double)c[i].logit - m) / sum);
    }
    return (int)n;
}

/* ---- logprobs ---- */

float lgpu_logprob_of(const float *logits, int32_t n_vocab, int32_t token) {
    if (!logits || n_vocab <= 0 || token < 0 || token >= n_vocab) return NAN;
    return raw_logprob(logits, (size_t)n_vocab, token);
}

/* Min-heap on `better` (root = worst kept) over parallel id/logit arrays. */
static void heap_sift_down(int32_t *id, float *v, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        cand cw = {id[w], v[w]};
        if (l < n && better(&cw, &(cand){id[l], v[l]})) w = l, cw = (cand){id[l], v[l]};
        if (r < n && better(&cw, &(cand){id[r], v[r]})) w = r;
        if (w == i) return;
        int32_t ti = id[i];
        float tv = v[i];
        id[i] = id[w], v[i] = v[w];
        id[w] = ti, v[w] = tv;
        i = w;
    }
}

int lgpu_logprobs_top(const float *logits, int32_t n_vocab, int k, int32_t *ids_out, float *logprobs_out) {
    if (!logits || n_vocab <= 0 || k < 0 || (k > 0 && (!ids_out || !logprobs_out)))
        return lgpu_set_error(LGPU_EINVAL, "lgpu_logprobs_top: bad argument (n_vocab %d, k %d)", n_vocab, k);
    if (k > n_vocab) k = n_vocab;
    if (k == 0) return 0;
    double lse = log_sum_exp(logits, (size_t)n_vocab);
    if (lse == -INFINITY) return lgpu_set_error(LGPU_EINVAL, "lgpu_logprobs_top: all logits are -inf or NaN");

    /* NaN logits rank below everything: map them to -inf for the ranking */
    int h = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        float v = isnan(logits[i]) ? -INFINITY : logits[i];
        if (h < k) {
            ids_out[h] = i, logprobs_out[h] = v, h++;
            if (h == k)
                for (int j = k / 2 - 1; j >= 0; j--) heap_sift_down(ids_out, logprobs_out, k, j);
        } else if (better(&(cand){i, v}, &(cand){ids_out[0], logprobs_out[0]})) {
            ids_out[0] = i, logprobs_out[0] = v;
            heap_sift_down(ids_out, logprobs_out, k, 0);
        }
    }
    /* heap-sort: repeatedly move the worst to the end -> best first */
    for (int end = k - 1; end > 0; end--) {
        int32_t ti = ids_out[0];
        float tv = logprobs_out[0];
        ids_out[0] = ids_out[end], logprobs_out[0] = logprobs_out[end];
        ids_out[end] = ti, logprobs_out[end] = tv;
        heap_sift_down(ids_out, logprobs_out, end, 0);
    }
    for (int i = 0; i < k; i++) logprobs_out[i] = (float)((double)logprobs_out[i] - lse);
    return k;
}
