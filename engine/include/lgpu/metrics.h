/* lgpu — text metrics: how well a model's output matches an expected answer.
 * Used by `lgpu-eval compare`; any program may score its own outputs.
 *
 *   double s;
 *   if (lgpu_metric_score(LGPU_METRIC_F1, output, expected, &s)) fprintf(stderr, "%s\n", lgpu_last_error());
 *
 * Every score lies in [0, 1]. The metrics (docs/EVALUATION.md has examples):
 *   exact_match  1 when output and expected are equal after removing leading
 *                and trailing whitespace (Python's str.strip() set), else 0;
 *   contains     1 when expected occurs in the output (bytes, case-sensitive);
 *   regex        1 when the PCRE2 pattern `expected` matches somewhere in the
 *                output (UTF-8 and Unicode properties on; anchor it with ^ and
 *                $ for a whole-output match); an output that is not valid
 *                UTF-8 is still searched;
 *   json_valid   1 when the output, without surrounding whitespace, is one
 *                JSON text (RFC 8259: any value); expected is not used;
 *   f1           SQuAD's token-level F1 (the official evaluate-v2.0.py):
 *                both texts normalised (lowercase, ASCII punctuation
 *                removed, the words "a", "an", "the" removed, split on
 *                whitespace); F1 of the bag-of-tokens overlap; 1 when both
 *                have no tokens, 0 when only one has none;
 *   rouge_l      ROUGE-L F-measure as Google's rouge-score package computes
 *                rougeL (no stemmer): both texts lowercased, every run of
 *                characters other than a-z and 0-9 made a space, split;
 *                precision = LCS / output tokens, recall = LCS / expected
 *                tokens, F = 2PR / (P + R); 0 when either has no tokens.
 * Lowercasing is Unicode's simple case mapping (PCRE2's tables), without
 * Python's two context rules (final sigma, dotted capital I). */
#ifndef LGPU_METRICS_H
#define LGPU_METRICS_H

#include "lgpu/lgpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lgpu_metric {
    LGPU_METRIC_EXACT_MATCH = 0,
    LGPU_METRIC_CONTAINS,
    LGPU_METRIC_REGEX,
    LGPU_METRIC_JSON_VALID,
    LGPU_METRIC_F1,
    LGPU_METRIC_ROUGE_L,
    LGPU_METRIC_COUNT_
} lgpu_metric;

/* "exact_match", "contains", "regex", "json_valid", "f1", "rouge_l"; NULL if unknown. */
const char *lgpu_metric_name(lgpu_metric m);
/* The inverse (also "exact", "em", "rougeL", "rouge-l", "json"); -1 if unknown. */
int lgpu_metric_from_name(const char *name);
/* "exact_match, contains, regex, json_valid, f1, rouge_l", for messages. */
const char *lgpu_metric_names(void);
/* Whether scores of m are 0 or 1 only (exact_match, contains, regex, json_valid). */
bool lgpu_metric_is_binary(lgpu_metric m);

/* Whether `expected` can be used with m: LGPU_EINVAL when a regex does not
 * compile, with PCRE2's message and the character offset in the detail
 * ("regex: missing closing parenthesis at offset 4 of \"(ab\""). */
int lgpu_metric_check(lgpu_metric m, const char *expected);

/* *score in [0, 1] of output against expected (NUL-terminated; expected may
 * be NULL for json_valid). LGPU_EINVAL on an unknown metric, a NULL text or
 * a regex that does not compile (as lgpu_metric_check), LGPU_ENOMEM. */
int lgpu_metric_score(lgpu_metric m, const char *output, const char *expected, double *score);

/* An example passes when its score is >= threshold (binary metrics: 1).
 * LGPU_METRIC_PASS_DEFAULT is the threshold lgpu-eval uses for f1 and
 * rouge_l unless told otherwise. */
#define LGPU_METRIC_PASS_DEFAULT 0.5
bool lgpu_metric_pass(lgpu_metric m, double score, double threshold);

/* The pieces, for tests and callers that want more than the F-measure. */
/* SQuAD's normalize_answer: lowercase, ASCII punctuation removed, articles
 * replaced by a space, whitespace runs made one space, trimmed. *out is
 * malloc'd. */
int lgpu_metric_squad_normalize(const char *text, char **out);
/* SQuAD token F1 of prediction against reference. */
int lgpu_metric_f1(const char *prediction, const char *reference, double *f1);
/* ROUGE-L of prediction against reference (rouge-score's argument order is
 * (target, prediction)); any output pointer may be NULL. */
int lgpu_metric_rouge_l(const char *prediction, const char *reference, double *precision, double *recall,
                        double *fmeasure);

#ifdef __cplusplus
}
#endif
#endif
