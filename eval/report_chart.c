/* Drawing a report's charts with gnuplot's svg terminal: one gnuplot run per
 * chart, in a private temporary directory (script, SVG, gnuplot's messages).
 * LGPU_GNUPLOT names the program (default "gnuplot"; "" or "none": no
 * charts). A missing gnuplot stops the drawing with a note; a chart gnuplot
 * fails on gets gnuplot's first message as its reason. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report_impl.h"

extern char **environ;

static char *slurp(const char *path, size_t max) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

static bool write_text(const char *path, const char *a, const char *b) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fputs(a, f) >= 0 && fputs(b, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Runs `prog script` with stdout and stderr to errpath: its exit status, or
 * -1 with *spawn_err when it could not be started. */
static int run_gnuplot(const char *prog, const char *script, const char *errpath, int *spawn_err) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    char *argv[] = {(char *)prog, (char *)script, NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e) {
        *spawn_err = e;
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) { /* a shell wrapper that found nothing */
        *spawn_err = ENOENT;
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* gnuplot's first message line, for the reason. */
static char *first_line(const char *errpath) {
    char *s = slurp(errpath, 4096);
    if (!s) return NULL;
    char *p = s;
    while (*p == '\n' || *p == ' ') p++;
    size_t n = strcspn(p, "\n");
    memmove(s, p, n);
    s[n] = 0;
    return s;
}

void report_draw_charts(report *r, const char *base) {
    int n_charts = 0, n_failed = 0;
    for (size_t i = 0; i < r->n; i++) n_charts += r->b[i].kind == RB_CHART;
    r->charts_drawn = 0;
    free(r->charts_note);
    r->charts_note = NULL;
    if (!n_charts) return;
    const char *prog = getenv("LGPU_GNUPLOT");
    if (!prog) prog = "gnuplot";
    char *none_why = NULL, *tmpdir = NULL;
    if (!*prog || !strcmp(prog, "none")) none_why = report_fmt("charts are turned off (LGPU_GNUPLOT=%s)", prog);
    if (!none_why) {
        const char *t = getenv("TMPDIR");
        tmpdir = report_fmt("%s/lgpu-report-XXXXXX", t && *t ? t : "/tmp");
        if (!tmpdir || !mkdtemp(tmpdir))
            none_why = report_fmt("no temporary directory for gnuplot (%s)", strerror(errno));
    }
    char *script = tmpdir ? report_fmt("%s/chart.gp", tmpdir) : NULL, *svg = tmpdir ? report_fmt("%s/chart.svg", tmpdir) : NULL,
         *errp = tmpdir ? report_fmt("%s/gnuplot.txt", tmpdir) : NULL;
    if (!none_why && (!script || !svg || !errp)) r->oom = true;
    int k = 0;
    for (size_t i = 0; i < r->n && !r->oom; i++) {
        rchart *c = r->b[i].chart;
        if (!c) continue;
        k++;
        if (none_why) {
            if (!(c->why = strdup(none_why))) r->oom = true;
            continue;
        }
        char *head = report_fmt("set terminal svg size 720,400 dynamic background rgb 'white' font 'sans,12' "
                                "noenhanced\nset output '%s'\n",
                                svg);
        unlink(svg);
        if (!head || !write_text(script, head, c->body)) {
            c->why = report_fmt("cannot write the gnuplot script %s", script);
            free(head);
            n_failed++;
            continue;
        }
        free(head);
        int spawn_err = 0, st = run_gnuplot(prog, script, errp, &spawn_err);
        if (st < 0 && spawn_err == ENOENT) {
            none_why = report_fmt("gnuplot was not found (%s: install gnuplot-nox, or set LGPU_GNUPLOT to the program)",
                                  prog);
            if (!none_why || !(c->why = strdup(none_why))) r->oom = true;
            continue;
        }
        if (st) {
            char *msg = st < 0 ? NULL : first_line(errp);
            c->why = st < 0 ? report_fmt("cannot run %s: %s", prog, strerror(spawn_err))
                            : report_fmt("gnuplot failed (exit %d): %s", st, msg && *msg ? msg : "no message");
            free(msg);
            n_failed++;
            continue;
        }
        c->svg = slurp(svg, 16u << 20);
        if (!c->svg || !strstr(c->svg, "<svg")) {
            free(c->svg);
            c->svg = NULL;
            c->why = report_fmt("gnuplot wrote no SVG");
            n_failed++;
            continue;
        }
        if (!(c->file = report_fmt("%s-chart%d.svg", base, k))) r->oom = true;
        r->charts_drawn++;
    }
    if (none_why) r->charts_note = report_fmt("Charts were not drawn: %s. The tables are complete without them.", none_why);
    else if (n_failed) {
        const char *first = NULL;
        for (size_t i = 0; i < r->n && !first; i++)
            if (r->b[i].chart && r->b[i].chart->why) first = r->b[i].chart->why;
        r->charts_note = report_fmt("%d of %d charts were not drawn: %s. The tables are complete without them.",
                                    n_failed, n_charts, first ? first : "?");
    }
    if (tmpdir) {
        const char *files[] = {script, svg, errp};
        for (int i = 0; i < 3; i++)
            if (files[i]) unlink(files[i]);
        rmdir(tmpdir);
    }
    free(none_why);
    free(tmpdir);
    free(script);
    free(svg);
    free(errp);
}
