/* The Markdown writer (GitHub-flavoured: pipe tables, inline HTML for line
 * breaks in cells). Text is escaped so that it reads as written: Markdown's
 * markup characters get a backslash, HTML's are written as entities. */
#include <string.h>

#include "lgpu/lgpu.h"
#include "report_impl.h"

/* in_cell: a table cell, where a line break becomes <br> and | is escaped */
static void md_text(FILE *f, const char *s, bool in_cell) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '\r': break;
        case '\n': fputs(in_cell ? "<br>" : "\n", f); break;
        case '\\':
        case '`':
        case '*':
        case '_':
        case '[':
        case ']':
        case '|':
        case '#':
        case '~':
            fputc('\\', f);
            fputc(*s, f);
            break;
        default: fputc(*s, f);
        }
    }
}

static void md_table(FILE *f, const report_table *t) {
    fputs("|", f);
    for (int c = 0; c < t->n_cols; c++) {
        fputc(' ', f);
        md_text(f, t->headers[c], true);
        fputs(" |", f);
    }
    fputs("\n|", f);
    for (int c = 0; c < t->n_cols; c++) {
        /* a column is right-aligned when its first row's cell is a number */
        const char *st = t->n_rows ? t->cells[c].style : NULL;
        fputs(st && (!strcmp(st, REPORT_NUM)) ? "---:|" : "---|", f);
    }
    fputc('\n', f);
    for (int row = 0; row < t->n_rows; row++) {
        fputs("|", f);
        for (int c = 0; c < t->n_cols; c++) {
            size_t i = (size_t)row * t->n_cols + c;
            const rcell *cell = i < t->n_cells ? &t->cells[i] : NULL;
            fputc(' ', f);
            if (cell) {
                if (cell->style && !strcmp(cell->style, REPORT_PASS)) fputs("✅ ", f);
                else if (cell->style && !strcmp(cell->style, REPORT_FAIL)) fputs("❌ ", f);
                if (cell->style && !strcmp(cell->style, REPORT_TEXT) && *cell->text) {
                    /* leading spaces of a model's output would vanish in Markdown */
                    const char *p = cell->text;
                    while (*p == ' ') fputs("&#32;", f), p++;
                    md_text(f, p, true);
                } else {
                    md_text(f, cell->text, true);
                }
            }
            fputs(" |", f);
        }
        fputc('\n', f);
    }
    fputc('\n', f);
}

int report_write_md(const report *r, FILE *f) {
    fputs("# ", f);
    md_text(f, r->title, false);
    fputs("\n\n", f);
    if (r->charts_note) { /* first, where a reader looks */
        fputs("> **Note:** ", f);
        md_text(f, r->charts_note, true);
        fputs("\n\n", f);
    }
    for (size_t i = 0; i < r->n; i++) {
        const rblock *b = &r->b[i];
        switch (b->kind) {
        case RB_HEADING:
            for (int k = 0; k < b->level; k++) fputc('#', f);
            fputc(' ', f);
            md_text(f, b->text, false);
            fputs("\n\n", f);
            break;
        case RB_PARA:
            md_text(f, b->text, false);
            fputs("\n\n", f);
            break;
        case RB_NOTE:
            fputs("> **Note:** ", f);
            md_text(f, b->text, true);
            fputs("\n\n", f);
            break;
        case RB_KV:
            fputs("- **", f);
            md_text(f, b->key, true);
            fputs(":** ", f);
            md_text(f, b->text, true);
            fputc('\n', f);
            if (i + 1 == r->n || r->b[i + 1].kind != RB_KV) fputc('\n', f);
            break;
        case RB_TABLE: md_table(f, b->table); break;
        case RB_CHART:
            if (b->chart->svg) {
                fputs("![", f);
                md_text(f, b->chart->title, true);
                fprintf(f, "](%s)\n\n", b->chart->file);
            } else {
                fputs("> **Chart not drawn** (", f);
                md_text(f, b->chart->title, true);
                fputs("): ", f);
                md_text(f, b->chart->why ? b->chart->why : "", true);
                fputs("\n\n", f);
            }
            break;
        }
    }
    fprintf(f, "---\nWritten by lgpu-eval %s.\n", LGPU_VERSION_STRING);
    return ferror(f) ? -1 : 0;
}
