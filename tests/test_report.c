/* lgpu-eval's report writer (eval/report.h), the module every subcommand's
 * report goes through: each block kind in Markdown and HTML, escaping, the
 * JSON's "report" member, charts drawn by gnuplot (inline SVG with ids kept
 * apart, SVG files beside the Markdown), and without gnuplot: absent, turned
 * off, failing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"
#include "test_util.h"

static char tmp_dir[512];

static int setup(void **state) { return tu_tmpdir_create("report", tmp_dir, sizeof tmp_dir) ? 0 : -1; }
static int teardown(void **state) { return tu_tmpdir_remove(tmp_dir); }

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static size_t count(const char *hay, const char *needle) {
    size_t k = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) k++;
    return k;
}

#define HAS(text, needle) \
    do { \
        if (!strstr((text), (needle))) fail_msg("%s lacks \"%s\"", #text, (needle)); \
    } while (0)

#define LONG_TEXT \
    "A long answer that goes on and on. A long answer that goes on and on. A long answer that goes on and on. " \
    "A long answer that goes on and on. A long answer that goes on and on. A long answer that goes on and on. " \
    "A long answer that goes on and on. A long answer that goes on and on. The end."

/* A report with every kind of block; the caller's JSON object. */
static report *sample(json_t **json) {
    report *r = report_create("Sample <report> & co");
    assert_non_null(r);
    report_kv(r, "Model", "m.gguf (%d params)", 260);
    report_kv(r, "Data", "t.jsonl");
    report_heading(r, 2, "Results");
    report_para(r, "Tricky text: <b>bold</b> & \"quotes\" 'single' | pipe *star* _under_ [link](x) `tick`");
    report_note(r, "something to know");
    report_table *t = report_table_add(r, 4, (const char *[]){"id", "output", "score", "verdict"});
    report_row(t);
    report_cell(t, NULL, "q%d", 1);
    report_cell_text(t, REPORT_TEXT, "  two\nlines | with pipe");
    report_cell(t, REPORT_NUM, "%.3f", 0.5);
    report_cell(t, REPORT_PASS, "pass");
    report_row(t);
    report_cell(t, NULL, "q2");
    report_cell_text(t, REPORT_TEXT, LONG_TEXT);
    report_cell(t, REPORT_NUM, "%.3f", 0.0);
    /* the fourth cell left out: padded */
    report_row(t);
    report_cell(t, NULL, "q3");
    report_cell(t, NULL, "x");
    report_cell(t, NULL, "y");
    report_cell(t, REPORT_FAIL, "fail");
    report_cell(t, NULL, "a fifth cell is dropped");
    const char *groups[] = {"exact_match", "it's f1"}, *series[] = {"base", "tuned"};
    double vals[] = {0.25, 0.5, 0.75, NAN};
    report_bar_chart(r, &(report_bars){.title = "Scores", .ylabel = "mean", .n_groups = 2, .n_series = 2,
                                       .groups = groups, .series = series, .values = vals, .ymin = 0, .ymax = 1,
                                       .value_fmt = "%.2f"});
    double x[] = {1, 2, 4, 8}, y1[] = {10, 20, 30, 35}, y2[] = {5, 9, 12, NAN};
    report_series s[] = {{"p50", x, y1, 4}, {"p99", x, y2, 4}};
    report_line_chart(r, &(report_lines){.title = "Latency", .xlabel = "concurrency", .ylabel = "ms", .n_series = 2,
                                         .series = s, .style = REPORT_STEPS, .log_x = true});
    *json = json_pack("{s:s, s:i}", "schema", "test/1", "n", 3);
    return r;
}

static bool have_gnuplot(void) { return system("gnuplot --version >/dev/null 2>&1") == 0; }

static void check_common(const char *dir, json_t *json) {
    char *md = slurp(tu_path(dir, "r.md")), *html = slurp(tu_path(dir, "r.html"));
    /* Markdown: escaped markup, a table with padding, a note, key/values */
    HAS(md, "# Sample &lt;report&gt; &amp; co\n");
    HAS(md, "- **Model:** m.gguf (260 params)\n- **Data:** t.jsonl\n\n");
    HAS(md, "&lt;b&gt;bold&lt;/b&gt; &amp; \"quotes\" 'single' \\| pipe \\*star\\* \\_under\\_ \\[link\\](x) \\`tick\\`");
    HAS(md, "> **Note:** something to know");
    HAS(md, "| id | output | score | verdict |\n|---|---|---:|---|\n");
    HAS(md, "| q1 | &#32;&#32;two<br>lines \\| with pipe | 0.500 | ✅ pass |");
    HAS(md, "| q2 | " LONG_TEXT " | 0.000 |  |\n");
    HAS(md, "| q3 | x | y | ❌ fail |\n");
    assert_null(strstr(md, "fifth"));
    /* HTML: one page, escaped, no script, no external reference */
    assert_int_equal(strncmp(html, "<!DOCTYPE html>\n", 16), 0);
    HAS(html, "<title>Sample &lt;report&gt; &amp; co</title>");
    HAS(html, "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quotes&quot; &#39;single&#39; | pipe");
    HAS(html, "<p class=\"note\"><strong>Note:</strong> something to know</p>");
    HAS(html, "<dl class=\"kv\">\n<dt>Model</dt><dd>m.gguf (260 params)</dd>\n<dt>Data</dt><dd>t.jsonl</dd>\n</dl>");
    HAS(html, "<td class=\"text\">  two\nlines | with pipe</td><td class=\"num\">0.500</td><td class=\"pass\">pass</td>");
    HAS(html, "<td class=\"text\"><details><summary>A long answer that goes on and on. A long answer");
    HAS(html, "<td class=\"fail\">fail</td>");
    HAS(html, "<link rel=\"icon\" href=\"data:,\">");
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http://www.w3.org/1999/xhtml\" src"));
    assert_null(strstr(html, " src="));
    assert_null(strstr(html, "fifth"));
    /* JSON: the caller's object and the report member */
    json_error_t err;
    json_t *j = json_load_file(tu_path(dir, "r.json"), 0, &err);
    if (!j) fail_msg("r.json: %s", err.text);
    assert_string_equal(json_string_value(json_object_get(j, "schema")), "test/1");
    json_t *rep = json_object_get(j, "report");
    assert_non_null(rep);
    assert_string_equal(json_string_value(json_object_get(json_object_get(rep, "files"), "html")), "r.html");
    assert_true(json_equal(j, json)); /* the caller's object gained the same member */
    json_decref(j);
    free(md);
    free(html);
}

static void test_without_gnuplot(void **state) {
    static const char *const PROGS[] = {"none", "", "/nonexistent/gnuplot", "/bin/false"};
    static const char *const WANT[] = {"charts are turned off (LGPU_GNUPLOT=none)", "charts are turned off (LGPU_GNUPLOT=)",
                                       "gnuplot was not found (/nonexistent/gnuplot: install gnuplot-nox",
                                       "gnuplot failed (exit 1)"};
    for (int k = 0; k < 4; k++) {
        setenv("LGPU_GNUPLOT", PROGS[k], 1);
        char dir[600];
        snprintf(dir, sizeof dir, "%s/nognuplot%d/sub", tmp_dir, k); /* made, parents too */
        json_t *json;
        report *r = sample(&json);
        if (report_write(r, dir, "r", json)) fail_msg("report_write: %s", report_error(r));
        assert_int_equal(report_charts_drawn(r), 0);
        HAS(report_charts_note(r), WANT[k]);
        check_common(dir, json);
        char *md = slurp(tu_path(dir, "r.md")), *html = slurp(tu_path(dir, "r.html"));
        /* the report says so at the top, each chart's place says why, the tables stay */
        HAS(md, "> **Note:** ");
        HAS(md, " not drawn: ");
        HAS(md, "> **Chart not drawn** (Scores): ");
        HAS(md, "> **Chart not drawn** (Latency): ");
        assert_int_equal(count(html, "<p class=\"missing\">Chart not drawn"), 2);
        assert_int_equal(count(html, "<svg"), 0);
        assert_int_equal(count(html, "<table>"), 1);
        json_t *rep = json_object_get(json, "report");
        assert_int_equal(json_integer_value(json_object_get(rep, "charts_drawn")), 0);
        HAS(json_string_value(json_object_get(rep, "charts_note")), WANT[k]);
        assert_int_equal(json_array_size(json_object_get(json_object_get(rep, "files"), "charts")), 0);
        assert_int_equal(access(tu_path(dir, "r-chart1.svg"), F_OK), -1);
        free(md);
        free(html);
        json_decref(json);
        report_destroy(r);
    }
    unsetenv("LGPU_GNUPLOT");
}

static void test_with_gnuplot(void **state) {
    if (!have_gnuplot()) {
        print_message("SKIP part: gnuplot is not installed\n");
        skip();
    }
    unsetenv("LGPU_GNUPLOT");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/charts", tmp_dir);
    json_t *json;
    report *r = sample(&json);
    if (report_write(r, dir, "r", json)) fail_msg("report_write: %s", report_error(r));
    if (report_charts_drawn(r) != 2) fail_msg("%d charts drawn: %s", report_charts_drawn(r), report_charts_note(r));
    assert_null(report_charts_note(r));
    check_common(dir, json);
    char *md = slurp(tu_path(dir, "r.md")), *html = slurp(tu_path(dir, "r.html"));
    HAS(md, "![Scores](r-chart1.svg)");
    HAS(md, "![Latency](r-chart2.svg)");
    char *svg1 = slurp(tu_path(dir, "r-chart1.svg")), *svg2 = slurp(tu_path(dir, "r-chart2.svg"));
    HAS(svg1, "<svg");
    HAS(svg1, "exact_match");
    HAS(svg1, "it's f1"); /* a quote in a label reaches gnuplot intact (as an entity or not) */
    HAS(svg2, "concurrency");
    /* inline: the <svg> element only (no XML declaration), each chart's ids apart */
    assert_int_equal(count(html, "<svg"), 2);
    assert_null(strstr(html, "<?xml"));
    HAS(html, "id=\"c1-gnuplot_canvas\"");
    HAS(html, "id=\"c2-gnuplot_canvas\"");
    assert_null(strstr(html, "id='gpPt"));
    assert_null(strstr(html, "href='#gpPt"));
    json_t *files = json_object_get(json_object_get(json, "report"), "files");
    assert_int_equal(json_array_size(json_object_get(files, "charts")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json, "report"), "charts_drawn")), 2);
    free(svg1);
    free(svg2);
    free(md);
    free(html);
    json_decref(json);
    report_destroy(r);
}

static void test_write_errors(void **state) {
    setenv("LGPU_GNUPLOT", "none", 1);
    /* a file where the directory should be */
    const char *file = tu_path(tmp_dir, "plain-file");
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    char dir[600];
    snprintf(dir, sizeof dir, "%s", file);
    json_t *json;
    report *r = sample(&json);
    assert_int_equal(report_write(r, dir, "r", json), -1);
    HAS(report_error(r), "plain-file is not a directory");
    report_destroy(r);
    json_decref(json);
    snprintf(dir, sizeof dir, "%s/below", file);
    r = sample(&json);
    assert_int_equal(report_write(r, dir, "r", NULL), -1); /* no JSON wanted, still the error */
    HAS(report_error(r), "cannot create the directory");
    HAS(report_error(r), "plain-file/below");
    report_destroy(r);
    json_decref(json);
    /* without JSON: no .json file */
    snprintf(dir, sizeof dir, "%s/nojson", tmp_dir);
    r = sample(&json);
    assert_int_equal(report_write(r, dir, "r", NULL), 0);
    assert_int_equal(access(tu_path(dir, "r.json"), F_OK), -1);
    assert_int_equal(access(tu_path(dir, "r.html"), F_OK), 0);
    report_destroy(r);
    json_decref(json);
    /* NULL everywhere is harmless */
    report_destroy(NULL);
    report_row(NULL);
    report_cell_text(NULL, NULL, "x");
    unsetenv("LGPU_GNUPLOT");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_gnuplot),
        cmocka_unit_test(test_with_gnuplot),
        cmocka_unit_test(test_write_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
