/* The report's document (report.h) as its writers see it: report.c builds
 * it, report_chart.c draws its charts, report_md.c and report_html.c write
 * it out. */
#ifndef LGPU_EVAL_REPORT_IMPL_H
#define LGPU_EVAL_REPORT_IMPL_H

#include <stdarg.h>
#include <stdio.h>

#include "report.h"

typedef enum { RB_HEADING, RB_PARA, RB_NOTE, RB_KV, RB_TABLE, RB_CHART } rblock_kind;

typedef struct rcell {
    char *text;
    const char *style; /* a REPORT_* string or NULL */
} rcell;

struct report_table {
    report *r;
    int n_cols;
    char **headers;
    rcell *cells; /* row-major, n_rows * n_cols (rows padded with empty cells) */
    size_t n_cells, cap;
    int n_rows;
};

typedef struct rchart {
    char *title;
    char *body;  /* gnuplot commands after the terminal and output lines */
    char *svg;   /* drawn: the SVG as gnuplot wrote it */
    char *file;  /* its file name beside the Markdown */
    char *why;   /* not drawn: the reason */
} rchart;

typedef struct rblock {
    rblock_kind kind;
    int level;
    char *text, *key;
    report_table *table;
    rchart *chart;
} rblock;

struct report {
    char *title;
    rblock *b;
    size_t n, cap;
    bool oom;
    char err[512];
    int charts_drawn;
    char *charts_note;
};

/* Runs gnuplot on every chart (report_chart.c): sets svg or why on each,
 * r->charts_drawn and r->charts_note. */
void report_draw_charts(report *r, const char *base);

/* Writers: 0, or -1 with r->err set. */
int report_write_md(const report *r, FILE *f);
int report_write_html(const report *r, FILE *f);

/* printf into a new string (NULL: out of memory). */
char *report_vfmt(const char *fmt, va_list ap);
char *report_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
