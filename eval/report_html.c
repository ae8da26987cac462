/* The HTML writer: one self-contained page. The style sheet is inline, the
 * charts are gnuplot's SVG inline (their ids prefixed per chart so that two
 * charts' definitions do not collide), the icon is an empty data: URL so
 * that a browser asks for no favicon; there is no script and no external
 * resource. Long texts in tables fold into <details>, which needs no
 * script. */
#include <string.h>

#include "lgpu/lgpu.h"
#include "report_impl.h"

/* Texts longer than this fold away in table cells. */
#define FOLD_CHARS 280

static const char CSS[] =
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;background:#f6f7f9;"
    "margin:0}\n"
    "main{max-width:1180px;margin:0 auto;padding:24px 28px 40px;background:#fff;min-height:100vh;"
    "box-shadow:0 0 12px rgba(0,0,0,.06)}\n"
    "h1{font-size:1.7em;margin:.2em 0 .6em;border-bottom:2px solid #1f77b4;padding-bottom:.25em}\n"
    "h2{font-size:1.3em;margin:1.6em 0 .5em;color:#173f5f}\nh3{font-size:1.1em;margin:1.2em 0 .4em}\n"
    "p{margin:.5em 0}\n"
    ".note{background:#fff7e0;border-left:4px solid #e6a700;padding:.5em .8em;margin:.8em 0}\n"
    "dl.kv{display:grid;grid-template-columns:max-content auto;gap:.2em 1.2em;margin:.6em 0}\n"
    "dl.kv dt{font-weight:600;color:#444}\ndl.kv dd{margin:0;overflow-wrap:anywhere}\n"
    ".scroll{overflow-x:auto;margin:.6em 0 1em}\n"
    "table{border-collapse:collapse;font-size:.92em;min-width:40%}\n"
    "th,td{border:1px solid #d5d9e0;padding:.35em .6em;vertical-align:top;text-align:left}\n"
    "th{background:#eef2f7;font-weight:600}\ntr:nth-child(even) td{background:#fafbfc}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "td.pass{background:#e3f6e8!important;color:#14532d}\ntd.fail{background:#fde8e8!important;color:#7f1d1d}\n"
    "td.pass::before{content:'\\2714\\00a0'}\ntd.fail::before{content:'\\2718\\00a0'}\n"
    "td.text{white-space:pre-wrap;font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;"
    "font-size:.88em;max-width:30em;overflow-wrap:anywhere}\n"
    "details summary{cursor:pointer;color:#1f5f99}\n"
    "figure.chart{margin:1em 0;max-width:760px}\nfigure.chart svg{width:100%;height:auto;display:block}\n"
    ".missing{color:#8a5a00;font-style:italic}\n"
    "footer{margin-top:2.5em;color:#777;font-size:.85em;border-top:1px solid #e3e6ea;padding-top:.6em}\n";

static void esc(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n && s[i]; i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        case '\r': break;
        default: fputc(s[i], f);
        }
    }
}

static void esc_all(FILE *f, const char *s) { esc(f, s, (size_t)-1); }

/* Bytes of s that hold at most `chars` UTF-8 characters. */
static size_t utf8_prefix(const char *s, size_t chars) {
    size_t i = 0;
    for (size_t c = 0; s[i] && c < chars; c++) {
        i++;
        while ((s[i] & 0xC0) == 0x80) i++;
    }
    return i;
}

static size_t utf8_len(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += (*s & 0xC0) != 0x80;
    return n;
}

static void cell(FILE *f, const rcell *c) {
    const char *st = c->style;
    if (st) fprintf(f, "<td class=\"%s\">", st);
    else fputs("<td>", f);
    if (st && !strcmp(st, REPORT_TEXT) && utf8_len(c->text) > FOLD_CHARS) {
        fputs("<details><summary>", f);
        esc(f, c->text, utf8_prefix(c->text, 80));
        fputs("…</summary>", f);
        esc_all(f, c->text);
        fputs("</details>", f);
    } else {
        esc_all(f, c->text);
    }
    fputs("</td>", f);
}

static void table(FILE *f, const report_table *t) {
    fputs("<div class=\"scroll\"><table>\n<thead><tr>", f);
    for (int c = 0; c < t->n_cols; c++) {
        fputs("<th>", f);
        esc_all(f, t->headers[c]);
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (int row = 0; row < t->n_rows; row++) {
        fputs("<tr>", f);
        for (int c = 0; c < t->n_cols; c++) {
            size_t i = (size_t)row * t->n_cols + c;
            if (i < t->n_cells) cell(f, &t->cells[i]);
            else fputs("<td></td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
}

/* The <svg> element of gnuplot's file, ids and references to them prefixed
 * with "cK-". */
static void inline_svg(FILE *f, const char *svg, int k) {
    const char *s = strstr(svg, "<svg");
    if (!s) return;
    static const char *const REFS[] = {" id='", " id=\"", "href='#", "href=\"#", "url(#"};
    while (*s) {
        const char *next = NULL;
        size_t len = 0;
        for (size_t i = 0; i < sizeof REFS / sizeof *REFS; i++) {
            const char *p = strstr(s, REFS[i]);
            if (p && (!next || p < next)) next = p, len = strlen(REFS[i]);
        }
        if (!next) {
            fputs(s, f);
            break;
        }
        fwrite(s, 1, (size_t)(next - s) + len, f);
        fprintf(f, "c%d-", k);
        s = next + len;
    }
}

int report_write_html(const report *r, FILE *f) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<link rel=\"icon\" href=\"data:,\">\n<title>",
          f);
    esc_all(f, r->title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>", CSS);
    esc_all(f, r->title);
    fputs("</h1>\n", f);
    if (r->charts_note) { /* first, where a reader looks */
        fputs("<p class=\"note\"><strong>Note:</strong> ", f);
        esc_all(f, r->charts_note);
        fputs("</p>\n", f);
    }
    int chart_no = 0;
    for (size_t i = 0; i < r->n; i++) {
        const rblock *b = &r->b[i];
        switch (b->kind) {
        case RB_HEADING:
            fprintf(f, "<h%d>", b->level);
            esc_all(f, b->text);
            fprintf(f, "</h%d>\n", b->level);
            break;
        case RB_PARA:
            fputs("<p>", f);
            esc_all(f, b->text);
            fputs("</p>\n", f);
            break;
        case RB_NOTE:
            fputs("<p class=\"note\"><strong>Note:</strong> ", f);
            esc_all(f, b->text);
            fputs("</p>\n", f);
            break;
        case RB_KV:
            if (!i || r->b[i - 1].kind != RB_KV) fputs("<dl class=\"kv\">\n", f);
            fputs("<dt>", f);
            esc_all(f, b->key);
            fputs("</dt><dd>", f);
            esc_all(f, b->text);
            fputs("</dd>\n", f);
            if (i + 1 == r->n || r->b[i + 1].kind != RB_KV) fputs("</dl>\n", f);
            break;
        case RB_TABLE: table(f, b->table); break;
        case RB_CHART:
            chart_no++;
            fputs("<figure class=\"chart\">\n", f);
            if (b->chart->svg) {
                inline_svg(f, b->chart->svg, chart_no);
            } else {
                fputs("<p class=\"missing\">Chart not drawn (", f);
                esc_all(f, b->chart->title);
                fputs("): ", f);
                esc_all(f, b->chart->why ? b->chart->why : "");
                fputs("</p>", f);
            }
            fputs("\n</figure>\n", f);
            break;
        }
    }
    fprintf(f, "<footer>Written by lgpu-eval %s.</footer>\n</main>\n</body>\n</html>\n", LGPU_VERSION_STRING);
    return ferror(f) ? -1 : 0;
}
