/* Metric names, the pass rule, and the match metrics (lgpu/metrics.h):
 * exact_match, contains, regex, json_valid. The overlap metrics (f1,
 * rouge_l) are in metrics_overlap.c. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "lgpu/metrics.h"

#include <pcre2.h>
#include <string.h>

#include "eval/json_check.h"
#include "eval/text.h"

static const char *const NAMES[LGPU_METRIC_COUNT_] = {"exact_match", "contains", "regex", "json_valid", "f1", "rouge_l"};

const char *lgpu_metric_name(lgpu_metric m) { return (unsigned)m < LGPU_METRIC_COUNT_ ? NAMES[m] : NULL; }

const char *lgpu_metric_names(void) { return "exact_match, contains, regex, json_valid, f1, rouge_l"; }

int lgpu_metric_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < LGPU_METRIC_COUNT_; i++)
        if (!strcmp(name, NAMES[i])) return i;
    static const struct {
        const char *alias;
        lgpu_metric m;
    } ALIASES[] = {{"exact", LGPU_METRIC_EXACT_MATCH}, {"em", LGPU_METRIC_EXACT_MATCH},
                   {"rougeL", LGPU_METRIC_ROUGE_L},    {"rouge-l", LGPU_METRIC_ROUGE_L},
                   {"json", LGPU_METRIC_JSON_VALID}};
    for (size_t i = 0; i < sizeof ALIASES / sizeof *ALIASES; i++)
        if (!strcmp(name, ALIASES[i].alias)) return (int)ALIASES[i].m;
    return -1;
}

bool lgpu_metric_is_binary(lgpu_metric m) { return m != LGPU_METRIC_F1 && m != LGPU_METRIC_ROUGE_L; }

bool lgpu_metric_pass(lgpu_metric m, double score, double threshold) {
    return lgpu_metric_is_binary(m) ? score >= 1.0 : score >= threshold;
}

/* The pattern compiled, or NULL with the detail set. */
static pcre2_code *compile_regex(const char *pattern) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        size_t n = strlen(pattern);
        lgpu_set_error(LGPU_EINVAL, "regex: %s at offset %zu of \"%.*s%s\"", (const char *)msg, (size_t)off,
                       n > 80 ? 80 : (int)n, pattern, n > 80 ? "..." : "");
    }
    return re;
}

int lgpu_metric_check(lgpu_metric m, const char *expected) {
    if (!lgpu_metric_name(m)) return lgpu_set_error(LGPU_EINVAL, "metrics: unknown metric %d", (int)m);
    if (m == LGPU_METRIC_JSON_VALID) return 0;
    if (!expected) return lgpu_set_error(LGPU_EINVAL, "metrics: %s needs an expected text", NAMES[m]);
    if (m != LGPU_METRIC_REGEX) return 0;
    pcre2_code *re = compile_regex(expected);
    if (!re) return LGPU_EINVAL;
    pcre2_code_free(re);
    return 0;
}

static int regex_search(const char *pattern, const char *s, double *score) {
    pcre2_code *re = compile_regex(pattern);
    if (!re) return LGPU_EINVAL;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return lgpu_set_error(LGPU_ENOMEM, "regex: out of memory");
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (rc >= 0 || rc == PCRE2_ERROR_NOMATCH) {
        *score = rc >= 0;
        return 0;
    }
    PCRE2_UCHAR msg[256]; /* a resource limit: catastrophic backtracking */
    pcre2_get_error_message(rc, msg, sizeof msg);
    size_t n = strlen(pattern);
    return lgpu_set_error(LGPU_EINVAL, "regex \"%.*s%s\": matching failed: %s", n > 80 ? 80 : (int)n, pattern,
                          n > 80 ? "..." : "", (const char *)msg);
}

int lgpu_metric_score(lgpu_metric m, const char *output, const char *expected, double *score) {
    if (!score) return lgpu_set_error(LGPU_EINVAL, "lgpu_metric_score: NULL score");
    *score = 0;
    if (!lgpu_metric_name(m)) return lgpu_set_error(LGPU_EINVAL, "metrics: unknown metric %d", (int)m);
    if (!output || (!expected && m != LGPU_METRIC_JSON_VALID))
        return lgpu_set_error(LGPU_EINVAL, "metrics: %s: NULL %s", NAMES[m], output ? "expected text" : "output");
    switch (m) {
    case LGPU_METRIC_EXACT_MATCH: {
        const char *a = output, *b = expected;
        size_t na = strlen(a), nb = strlen(b);
        lgpu_txt_strip(&a, &na);
        lgpu_txt_strip(&b, &nb);
        *score = na == nb && !memcmp(a, b, na);
        return 0;
    }
    case LGPU_METRIC_CONTAINS: *score = strstr(output, expected) != NULL; return 0;
    case LGPU_METRIC_REGEX: return regex_search(expected, output, score);
    case LGPU_METRIC_JSON_VALID: {
        const char *a = output;
        size_t na = strlen(a);
        lgpu_txt_strip(&a, &na);
        bool valid;
        int rc = lgpu_json_check(a, na, &valid);
        *score = valid;
        return rc;
    }
    case LGPU_METRIC_F1: return lgpu_metric_f1(output, expected, score);
    case LGPU_METRIC_ROUGE_L: return lgpu_metric_rouge_l(output, expected, NULL, NULL, score);
    default: return lgpu_set_error(LGPU_EINVAL, "metrics: unknown metric %d", (int)m);
    }
}
