/* The token-overlap metrics (lgpu/metrics.h): SQuAD's F1 and rouge-score's
 * ROUGE-L, each with its own normalisation, step by step as the Python
 * originals do it. */
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "eval/text.h"
#include "lgpu/metrics.h"

/* Python's string.punctuation */
static bool ascii_punct(unsigned char c) { return c && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) != NULL; }

int lgpu_metric_squad_normalize(const char *text, char **out) {
    if (!text || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_metric_squad_normalize: NULL argument");
    *out = NULL;
    /* white_space_fix(remove_articles(remove_punc(lower(s)))) */
    char *low, *arts;
    size_t n;
    int rc = lgpu_txt_lower(text, &low, &n);
    if (rc) return rc;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!ascii_punct((unsigned char)low[i])) low[k++] = low[i];
    /* re.sub(r'\b(a|an|the)\b', ' ', text): \b is Unicode-aware on str */
    rc = lgpu_txt_replace("\\b(?:a|an|the)\\b", low, k, " ", &arts, &n);
    free(low);
    if (rc) return rc;
    lgpu_txt_toks t = {0};
    if ((rc = lgpu_txt_split(arts, n, &t))) {
        free(arts);
        return rc;
    }
    char *o = malloc(n + 1);
    if (!o) {
        free(arts);
        lgpu_txt_toks_free(&t);
        return lgpu_set_error(LGPU_ENOMEM, "metrics: out of memory");
    }
    size_t len = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (i) o[len++] = ' ';
        memcpy(o + len, t.v[i].s, t.v[i].n);
        len += t.v[i].n;
    }
    o[len] = 0;
    free(arts);
    lgpu_txt_toks_free(&t);
    *out = o;
    return 0;
}

static int tok_cmp(const void *a, const void *b) {
    const lgpu_txt_tok *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

int lgpu_metric_f1(const char *prediction, const char *reference, double *f1) {
    if (!prediction || !reference || !f1) return lgpu_set_error(LGPU_EINVAL, "lgpu_metric_f1: NULL argument");
    *f1 = 0;
    char *p = NULL, *r = NULL;
    lgpu_txt_toks tp = {0}, tr = {0};
    int rc = lgpu_metric_squad_normalize(prediction, &p);
    if (!rc) rc = lgpu_metric_squad_normalize(reference, &r);
    if (!rc) rc = lgpu_txt_split(p, strlen(p), &tp);
    if (!rc) rc = lgpu_txt_split(r, strlen(r), &tr);
    if (rc) goto done;
    if (!tp.n || !tr.n) { /* evaluate-v2.0.py: no-answer cases */
        *f1 = tp.n == tr.n;
        goto done;
    }
    /* sum((Counter(p) & Counter(r)).values()): merge the sorted lists */
    qsort(tp.v, tp.n, sizeof *tp.v, tok_cmp);
    qsort(tr.v, tr.n, sizeof *tr.v, tok_cmp);
    size_t same = 0;
    for (size_t i = 0, j = 0; i < tp.n && j < tr.n;) {
        int c = tok_cmp(&tp.v[i], &tr.v[j]);
        if (c == 0) same++, i++, j++;
        else if (c < 0) i++;
        else j++;
    }
    if (same) {
        double prec = (double)same / (double)tp.n, rec = (double)same / (double)tr.n;
        *f1 = 2 * prec * rec / (prec + rec);
    }
done:
    free(p);
    free(r);
    lgpu_txt_toks_free(&tp);
    lgpu_txt_toks_free(&tr);
    return rc;
}

/* rouge_score.tokenize (no stemmer): lower(), [^a-z0-9]+ -> " ", split. */
static int rouge_tokens(const char *text, char **low, lgpu_txt_toks *out) {
    size_t n;
    int rc = lgpu_txt_lower(text, low, &n);
    if (rc) return rc;
    const char *s = *low;
    for (size_t i = 0; i < n;) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) i++;
        if (LGPU_GROW(out->v, out->cap, out->n + 1, 16, "metric tokens")) return LGPU_ENOMEM;
        out->v[out->n++] = (lgpu_txt_tok){s + start, i - start};
    }
    return 0;
}

static bool tok_eq(const lgpu_txt_tok *a, const lgpu_txt_tok *b) { return a->n == b->n && !memcmp(a->s, b->s, a->n); }

int lgpu_metric_rouge_l(const char *prediction, const char *reference, double *precision, double *recall,
                        double *fmeasure) {
    if (!prediction || !reference) return lgpu_set_error(LGPU_EINVAL, "lgpu_metric_rouge_l: NULL text");
    double P = 0, R = 0, F = 0;
    char *lp = NULL, *lr = NULL;
    lgpu_txt_toks tp = {0}, tr = {0};
    size_t *row = NULL;
    int rc = rouge_tokens(prediction, &lp, &tp);
    if (!rc) rc = rouge_tokens(reference, &lr, &tr);
    if (rc || !tp.n || !tr.n) goto done;
    /* the LCS length, one row of the table at a time */
    row = calloc(tp.n + 1, sizeof *row);
    if (!row) {
        rc = lgpu_set_error(LGPU_ENOMEM, "metrics: out of memory");
        goto done;
    }
    for (size_t i = 0; i < tr.n; i++) {
        size_t diag = 0; /* table[i][j] before row i+1 overwrote it */
        for (size_t j = 1; j <= tp.n; j++) {
            size_t up = row[j];
            row[j] = tok_eq(&tr.v[i], &tp.v[j - 1]) ? diag + 1 : (row[j - 1] > up ? row[j - 1] : up);
            diag = up;
        }
    }
    size_t lcs = row[tp.n];
    P = (double)lcs / (double)tp.n;
    R = (double)lcs / (double)tr.n;
    F = P + R > 0 ? 2 * P * R / (P + R) : 0;
done:
    if (precision) *precision = P;
    if (recall) *recall = R;
    if (fmeasure) *fmeasure = F;
    free(row);
    free(lp);
    free(lr);
    lgpu_txt_toks_free(&tp);
    lgpu_txt_toks_free(&tr);
    return rc;
}
