/* Building a report and writing its files (report.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report_impl.h"

char *report_vfmt(const char *fmt, va_list ap) {
    char *s = NULL;
    return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

char *report_fmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = report_vfmt(fmt, ap);
    va_end(ap);
    return s;
}

report *report_create(const char *title) {
    report *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (!(r->title = strdup(title ? title : "Report"))) {
        free(r);
        return NULL;
    }
    return r;
}

static void table_free(report_table *t) {
    if (!t) return;
    for (int i = 0; i < t->n_cols; i++) free(t->headers[i]);
    free(t->headers);
    for (size_t i = 0; i < t->n_cells; i++) free(t->cells[i].text);
    free(t->cells);
    free(t);
}

static void chart_free(rchart *c) {
    if (!c) return;
    free(c->title);
    free(c->body);
    free(c->svg);
    free(c->file);
    free(c->why);
    free(c);
}

void report_destroy(report *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->b[i].text);
        free(r->b[i].key);
        table_free(r->b[i].table);
        chart_free(r->b[i].chart);
    }
    free(r->b);
    free(r->title);
    free(r->charts_note);
    free(r);
}

/* A new block at the end, or NULL (r->oom set). */
static rblock *add_block(report *r, rblock_kind kind) {
    if (!r || r->oom) return NULL;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        rblock *b = realloc(r->b, cap * sizeof *b);
        if (!b) {
            r->oom = true;
            return NULL;
        }
        r->b = b;
        r->cap = cap;
    }
    rblock *b = &r->b[r->n++];
    memset(b, 0, sizeof *b);
    b->kind = kind;
    return b;
}

static void text_block(report *r, rblock_kind kind, int level, const char *key, const char *fmt, va_list ap) {
    rblock *b = add_block(r, kind);
    if (!b) return;
    b->level = level;
    b->text = report_vfmt(fmt, ap);
    if (key) b->key = strdup(key);
    if (!b->text || (key && !b->key)) r->oom = true;
}

void report_heading(report *r, int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    text_block(r, RB_HEADING, level < 2 ? 2 : level > 4 ? 4 : level, NULL, fmt, ap);
    va_end(ap);
}

void report_para(report *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    text_block(r, RB_PARA, 0, NULL, fmt, ap);
    va_end(ap);
}

void report_note(report *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    text_block(r, RB_NOTE, 0, NULL, fmt, ap);
    va_end(ap);
}

void report_kv(report *r, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    text_block(r, RB_KV, 0, key ? key : "", fmt, ap);
    va_end(ap);
}

report_table *report_table_add(report *r, int n_cols, const char *const *headers) {
    rblock *b = add_block(r, RB_TABLE);
    if (!b) return NULL;
    report_table *t = calloc(1, sizeof *t);
    if (!t || !(t->headers = calloc((size_t)n_cols, sizeof *t->headers))) {
        free(t);
        r->n--;
        r->oom = true;
        return NULL;
    }
    b->table = t;
    t->r = r;
    t->n_cols = n_cols;
    for (int i = 0; i < n_cols; i++)
        if (!(t->headers[i] = strdup(headers[i] ? headers[i] : ""))) r->oom = true;
    return t;
}

/* Pads the current row to n_cols cells. */
static void pad_row(report_table *t) {
    while (t->n_rows && t->n_cells < (size_t)t->n_rows * t->n_cols) report_cell_text(t, NULL, "");
}

void report_row(report_table *t) {
    if (!t || t->r->oom) return;
    pad_row(t);
    t->n_rows++;
}

void report_cell_text(report_table *t, const char *style, const char *text) {
    if (!t || t->r->oom || !t->n_rows || t->n_cells >= (size_t)t->n_rows * t->n_cols) return;
    if (t->n_cells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        rcell *c = realloc(t->cells, cap * sizeof *c);
        if (!c) {
            t->r->oom = true;
            return;
        }
        t->cells = c;
        t->cap = cap;
    }
    char *s = strdup(text ? text : "");
    if (!s) {
        t->r->oom = true;
        return;
    }
    t->cells[t->n_cells++] = (rcell){s, style};
}

void report_cell(report_table *t, const char *style, const char *fmt, ...) {
    if (!t || t->r->oom) return;
    va_list ap;
    va_start(ap, fmt);
    char *s = report_vfmt(fmt, ap);
    va_end(ap);
    if (!s) {
        t->r->oom = true;
        return;
    }
    report_cell_text(t, style, s);
    free(s);
}

/* ---- charts: the gnuplot commands ------------------------------------- */

static const char *const COLORS[] = {"#8e9aaf", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};
#define N_COLORS (sizeof COLORS / sizeof *COLORS)

/* A growing string; on out of memory it is freed and stays NULL. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    char *s = report_vfmt(fmt, ap);
    va_end(ap);
    size_t k = s ? strlen(s) : 0;
    if (s && b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + k + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (p) b->s = p, b->cap = cap;
        else free(s), s = NULL;
    }
    if (!s) {
        free(b->s);
        b->s = NULL;
        b->oom = true;
        return;
    }
    memcpy(b->s + b->n, s, k + 1);
    b->n += k;
    free(s);
}

/* A gnuplot single-quoted string: '' for a quote, no line breaks. */
static void sb_quoted(sbuf *b, const char *text) {
    sb_add(b, "'");
    for (const char *p = text ? text : ""; *p; p++) {
        if (*p == '\'') sb_add(b, "''");
        else if (*p == '\n' || *p == '\r' || *p == '\t') sb_add(b, " ");
        else sb_add(b, "%c", *p);
    }
    sb_add(b, "'");
}

static void sb_common(sbuf *b, const char *title, const char *xlabel, const char *ylabel, double ymin, double ymax) {
    sb_add(b, "set title ");
    sb_quoted(b, title);
    sb_add(b, "\n");
    if (xlabel) {
        sb_add(b, "set xlabel ");
        sb_quoted(b, xlabel);
        sb_add(b, "\n");
    }
    if (ylabel) {
        sb_add(b, "set ylabel ");
        sb_quoted(b, ylabel);
        sb_add(b, "\n");
    }
    if (ymin < ymax) sb_add(b, "set yrange [%.17g:%.17g]\n", ymin, ymax);
    sb_add(b, "set grid ytics lc rgb '#d0d0d0'\nset border 3\nset tics nomirror\nset key below\n"
              "set datafile missing '?'\n");
}

static void add_chart(report *r, const char *title, sbuf *b) {
    rblock *blk = add_block(r, RB_CHART);
    if (!blk || b->oom) {
        if (blk) r->n--;
        free(b->s);
        r->oom = true;
        return;
    }
    rchart *c = calloc(1, sizeof *c);
    if (!c || !(c->title = strdup(title ? title : "chart"))) {
        free(c);
        free(b->s);
        r->n--;
        r->oom = true;
        return;
    }
    c->body = b->s;
    blk->chart = c;
}

void report_bar_chart(report *r, const report_bars *bars) {
    if (!r || r->oom || bars->n_groups < 1 || bars->n_series < 1) return;
    sbuf b = {0};
    sb_common(&b, bars->title, NULL, bars->ylabel, bars->ymin, bars->ymax);
    int G = bars->n_groups, S = bars->n_series;
    double w = 0.8 / S;
    /* one group alone would fill the plot: leave room either side */
    double pad = G == 1 ? 1.2 : 0.6;
    sb_add(&b, "set style fill solid 0.9 border rgb '#404040'\nset boxwidth %.6f\nset xrange [%.2f:%.2f]\n", w, -pad,
           G - 1 + pad);
    if (!(bars->ymin < bars->ymax)) sb_add(&b, "set yrange [0:*]\nset offsets 0,0,graph 0.1,0\n");
    sb_add(&b, "set xtics (");
    for (int g = 0; g < G; g++) {
        sb_add(&b, "%s", g ? ", " : "");
        sb_quoted(&b, bars->groups[g]);
        sb_add(&b, " %d", g);
    }
    sb_add(&b, ")\n$bars << EOD\n");
    for (int g = 0; g < G; g++) {
        for (int s = 0; s < S; s++) {
            double v = bars->values[(size_t)s * G + g];
            if (v == v) sb_add(&b, "%s%.17g", s ? " " : "", v);
            else sb_add(&b, "%s?", s ? " " : "");
        }
        sb_add(&b, "\n");
    }
    sb_add(&b, "EOD\nplot ");
    for (int s = 0; s < S; s++) {
        double off = (s - (S - 1) / 2.0) * w;
        sb_add(&b, "%s$bars using ($0%+.6f):%d with boxes lc rgb '%s' title ", s ? ", " : "", off, s + 1,
               COLORS[s % N_COLORS]);
        sb_quoted(&b, bars->series[s]);
    }
    if (bars->value_fmt)
        for (int s = 0; s < S; s++) {
            double off = (s - (S - 1) / 2.0) * w;
            sb_add(&b, ", $bars using ($0%+.6f):%d:(sprintf(", off, s + 1);
            sb_quoted(&b, bars->value_fmt);
            sb_add(&b, ", $%d)) with labels offset 0,0.8 notitle", s + 1);
        }
    sb_add(&b, "\n");
    add_chart(r, bars->title, &b);
}

void report_line_chart(report *r, const report_lines *l) {
    if (!r || r->oom || l->n_series < 1) return;
    sbuf b = {0};
    sb_common(&b, l->title, l->xlabel, l->ylabel, l->ymin, l->ymax);
    if (l->log_x) sb_add(&b, "set logscale x\n");
    for (int s = 0; s < l->n_series; s++) {
        sb_add(&b, "$s%d << EOD\n", s);
        for (size_t i = 0; i < l->series[s].n; i++) {
            double x = l->series[s].x[i], y = l->series[s].y[i];
            if (x == x && y == y) sb_add(&b, "%.17g %.17g\n", x, y);
        }
        sb_add(&b, "EOD\n");
    }
    static const char *const WITH[] = {"lines lw 2", "steps lw 2", "points pt 7 ps 0.6"};
    sb_add(&b, "plot ");
    for (int s = 0; s < l->n_series; s++) {
        sb_add(&b, "%s$s%d using 1:2 with %s lc rgb '%s' title ", s ? ", " : "", s, WITH[l->style % 3],
               COLORS[(s + 1) % N_COLORS]);
        sb_quoted(&b, l->series[s].name);
    }
    sb_add(&b, "\n");
    add_chart(r, l->title, &b);
}

/* ---- writing ---------------------------------------------------------- */

static int fail(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(report *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* mkdir -p */
static int make_dir(report *r, const char *dir) {
    char *p = strdup(dir);
    if (!p) return fail(r, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST) {
            int e = errno;
            fail(r, "cannot create the directory %s: %s", p, strerror(e));
            free(p);
            return -1;
        }
        if (!(*s = c)) break;
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return fail(r, "%s is not a directory", dir);
    return 0;
}

typedef int (*writer_fn)(const report *r, FILE *f, void *user);

/* Writes path through path.tmp and a rename, so that a reader never sees
 * half a report. */
static int write_file(report *r, const char *path, writer_fn fn, void *user) {
    char *tmp = report_fmt("%s.tmp", path);
    if (!tmp) return fail(r, "out of memory");
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(tmp);
        return fail(r, "cannot write %s: %s", path, strerror(e));
    }
    int rc = fn(r, f, user);
    if (fflush(f) || ferror(f)) rc = rc ? rc : fail(r, "cannot write %s: %s", path, strerror(errno));
    if (fclose(f) && !rc) rc = fail(r, "cannot write %s: %s", path, strerror(errno));
    if (!rc && rename(tmp, path)) rc = fail(r, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

static int w_md(const report *r, FILE *f, void *user) { return report_write_md(r, f); }
static int w_html(const report *r, FILE *f, void *user) { return report_write_html(r, f); }
static int w_svg(const report *r, FILE *f, void *user) { return fputs(user, f) < 0 ? -1 : 0; }
static int w_json(const report *r, FILE *f, void *user) {
    if (json_dumpf(user, f, JSON_INDENT(2)) || fputc('\n', f) == EOF)
        return fail((report *)r, "cannot encode the JSON report");
    return 0;
}

int report_write(report *r, const char *dir, const char *base, json_t *json) {
    if (!r) return -1;
    if (r->oom) return fail(r, "out of memory while building the report");
    if (make_dir(r, dir)) return -1;
    report_draw_charts(r, base);
    if (r->oom) return fail(r, "out of memory while drawing the charts");
    char *path = NULL;
    int rc = 0;
    json_t *charts = json_array();
    for (size_t i = 0; i < r->n && !rc; i++) {
        rchart *c = r->b[i].chart;
        if (!c || !c->svg) continue;
        free(path);
        if (!(path = report_fmt("%s/%s", dir, c->file))) rc = fail(r, "out of memory");
        else rc = write_file(r, path, w_svg, c->svg);
        json_array_append_new(charts, json_string(c->file));
    }
    char *md = report_fmt("%s.md", base), *html = report_fmt("%s.html", base), *js = report_fmt("%s.json", base);
    if (!md || !html || !js) rc = rc ? rc : fail(r, "out of memory");
    if (!rc) {
        free(path);
        path = report_fmt("%s/%s", dir, md);
        rc = path ? write_file(r, path, w_md, NULL) : fail(r, "out of memory");
    }
    if (!rc) {
        free(path);
        path = report_fmt("%s/%s", dir, html);
        rc = path ? write_file(r, path, w_html, NULL) : fail(r, "out of memory");
    }
    if (!rc && json) {
        json_t *rep = json_object();
        json_t *files = json_object();
        json_object_set_new(files, "markdown", json_string(md));
        json_object_set_new(files, "html", json_string(html));
        json_object_set_new(files, "json", json_string(js));
        json_object_set_new(files, "charts", charts);
        charts = NULL;
        json_object_set_new(rep, "files", files);
        json_object_set_new(rep, "charts_drawn", json_integer(r->charts_drawn));
        json_object_set_new(rep, "charts_note", r->charts_note ? json_string(r->charts_note) : json_null());
        json_object_set_new(json, "report", rep);
        free(path);
        path = report_fmt("%s/%s", dir, js);
        rc = path ? write_file(r, path, w_json, json) : fail(r, "out of memory");
    }
    json_decref(charts);
    free(path);
    free(md);
    free(html);
    free(js);
    return rc;
}

const char *report_error(const report *r) { return r ? r->err : "no report"; }

int report_make_dir(const char *dir, char *err, size_t cap) {
    report r = {0};
    int rc = make_dir(&r, dir);
    if (rc && err && cap) snprintf(err, cap, "%s", r.err);
    return rc;
}
int report_charts_drawn(const report *r) { return r ? r->charts_drawn : 0; }
const char *report_charts_note(const report *r) { return r ? r->charts_note : NULL; }
