/* Reports of lgpu-eval's subcommands: one document, written as Markdown, a
 * self-contained HTML page and JSON (docs/EVALUATION.md, "Reports").
 *
 *   report *r = report_create("Base vs fine-tuned");
 *   report_heading(r, 2, "Metrics");
 *   report_table *t = report_table_add(r, 3, (const char *[]){"metric", "base", "fine-tuned"});
 *   report_row(t); report_cell(t, NULL, "f1"); report_cell(t, REPORT_PASS, "%.3f", x); ...
 *   report_bar_chart(r, &(report_bars){...});
 *   report_write(r, "out", "compare", json);   // out/compare.md, .html, .json (+ .svg charts)
 *
 * The document is a list of blocks: headings, paragraphs, notes, key/value
 * lists, tables and charts. Charts are drawn by gnuplot's svg terminal when
 * the report is written: the HTML page carries each SVG inline, the
 * Markdown links the SVG file written beside it. Without gnuplot (not
 * installed, or LGPU_GNUPLOT set to "" or "none") each chart's place says
 * why it is missing and the tables stay. The JSON is the caller's object,
 * to which report_write adds a "report" member: the files written and
 * whether charts were drawn.
 *
 * Text given to the report is plain UTF-8: the writers escape it for
 * Markdown and HTML. Building calls never fail: out of memory is remembered
 * and report_write then fails. */
#ifndef LGPU_EVAL_REPORT_H
#define LGPU_EVAL_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct report report;
typedef struct report_table report_table;

report *report_create(const char *title);
void report_destroy(report *r);

/* level 2 or 3 (the title is level 1) */
void report_heading(report *r, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void report_para(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A highlighted remark (a warning, something left out). */
void report_note(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One "key: value" line of a list; consecutive calls make one list. */
void report_kv(report *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Cell styles. */
#define REPORT_PASS "pass"
#define REPORT_FAIL "fail"
#define REPORT_NUM "num"   /* right-aligned */
#define REPORT_TEXT "text" /* free text kept as written: line breaks, spaces (model outputs) */

report_table *report_table_add(report *r, int n_cols, const char *const *headers);
void report_row(report_table *t);
/* The next cell of the current row; style NULL or REPORT_*. */
void report_cell(report_table *t, const char *style, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A cell holding `text` as it is (no format). */
void report_cell_text(report_table *t, const char *style, const char *text);

/* Grouped bars: n_groups groups (x labels) of n_series bars each;
 * values[s * n_groups + g] is series s in group g (NAN: no bar). */
typedef struct report_bars {
    const char *title, *ylabel;
    int n_groups, n_series;
    const char *const *groups, *const *series;
    const double *values;
    double ymin, ymax;   /* the y range; ymin == ymax: automatic */
    const char *value_fmt; /* printf format of the label on each bar ("%.3f"); NULL: no labels */
} report_bars;
void report_bar_chart(report *r, const report_bars *b);

/* Lines through points: one per series. */
typedef enum { REPORT_LINES = 0, REPORT_STEPS, REPORT_POINTS } report_line_style;
typedef struct report_series {
    const char *name;
    const double *x, *y;
    size_t n;
} report_series;
typedef struct report_lines {
    const char *title, *xlabel, *ylabel;
    int n_series;
    const report_series *series;
    report_line_style style;
    bool log_x;
    double ymin, ymax; /* ymin == ymax: automatic */
} report_lines;
void report_line_chart(report *r, const report_lines *l);

/* Writes DIR/BASE.md, DIR/BASE.html, DIR/BASE.json (json may be NULL: no
 * JSON file; it gains the "report" member) and DIR/BASE-chartN.svg, creating
 * DIR if needed. Returns 0, or -1 with the reason in report_error(r). */
int report_write(report *r, const char *dir, const char *base, json_t *json);
const char *report_error(const report *r);
/* mkdir -p DIR, so that a long run can find out first that its report has
 * nowhere to go: 0, or -1 with the reason in err. */
int report_make_dir(const char *dir, char *err, size_t cap);
/* After report_write: charts drawn, and why not when none could be. */
int report_charts_drawn(const report *r);
const char *report_charts_note(const report *r);

#endif
