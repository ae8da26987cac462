/* lgpu-train's loss chart (see chart.h). */
#include "chart.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    double *x, *y;
    size_t n, cap;
} series;

static int push(series *s, double x, double y) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (!nx) return -1;
        s->x = nx;
        double *ny = realloc(s->y, cap * sizeof *ny);
        if (!ny) return -1;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
    return 0;
}

/* metrics.jsonl: {"step", "loss", ...} per logged step, {"step", "val_loss"} per evaluation. */
static int read_metrics(const char *path, series *train, series *val) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    int st = 0;
    while (!st && getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *step = j ? json_object_get(j, "step") : NULL;
        if (json_is_integer(step)) {
            double x = (double)json_integer_value(step);
            json_t *loss = json_object_get(j, "loss"), *vl = json_object_get(j, "val_loss");
            if (json_is_number(loss) && isfinite(json_number_value(loss))) st = push(train, x, json_number_value(loss));
            if (!st && json_is_number(vl) && isfinite(json_number_value(vl))) st = push(val, x, json_number_value(vl));
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    return st;
}

/* A string for the script in single quotes ('' is a quote). */
static void put_quoted(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        if (*s != '\n') fputc(*s, f);
    }
    fputc('\'', f);
}

static bool in_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        char full[4200];
        snprintf(full, sizeof full, "%.*s/%s", (int)(n ? n : 1), n ? path : ".", prog);
        if (access(full, X_OK) == 0) return true;
        path += n;
        if (*path == ':') path++;
    }
    return false;
}

static void write_script(FILE *g, const char *dir, const char *title, const series *tr, const series *va) {
    char out[4200];
    /* data first: the smoothed curve (TensorBoard-style EMA, 0.9) as a third column */
    bool smooth = tr->n >= 30;
    fprintf(g, "$train << EOD\n");
    double ema = 0, debias = 0; /* debiased as TensorBoard does: the first point is the first value */
    for (size_t i = 0; i < tr->n; i++) {
        ema = 0.9 * ema + 0.1 * tr->y[i];
        debias = 0.9 * debias + 0.1;
        fprintf(g, "%.0f %.6g %.6g\n", tr->x[i], tr->y[i], ema / debias);
    }
    fprintf(g, "EOD\n$val << EOD\n");
    for (size_t i = 0; i < va->n; i++) fprintf(g, "%.0f %.6g\n", va->x[i], va->y[i]);
    fprintf(g, "EOD\n");
    fprintf(g, "if (strstrt(GPVAL_TERMINALS, ' pngcairo ') > 0) {\n"
               "  set terminal pngcairo size 1000,560 noenhanced font 'sans,11'\n"
               "} else {\n"
               "  set terminal png size 1000,560 noenhanced\n"
               "}\n");
    snprintf(out, sizeof out, "%s/loss.png", dir);
    fprintf(g, "set output ");
    put_quoted(g, out);
    fprintf(g, "\nset title ");
    put_quoted(g, title);
    fprintf(g, "\nset xlabel 'step'\nset ylabel 'loss (cross-entropy per token)'\n"
               "set grid lc rgb '#dddddd'\nset key top right box opaque\nset border 3\nset tics nomirror\n"
               "set style line 1 lc rgb '%s' lw %s\n"
               "set style line 2 lc rgb '#08519c' lw 2.5\n"
               "set style line 3 lc rgb '#e6550d' lw 2 pt 7 ps 1.1\n"
               "set xrange [0:*]\n",
            smooth ? "#9ecae1" : "#08519c", smooth ? "1" : "2");
    const char *train_style = tr->n <= 40 ? "linespoints ls 1 pt 7 ps 0.6" : "lines ls 1";
    const char *val_style = va->n == 1 ? "points" : "linespoints";
    char plot[1024];
    int k = snprintf(plot, sizeof plot, "plot $train using 1:2 with %s title 'training loss'", train_style);
    if (smooth) k += snprintf(plot + k, sizeof plot - (size_t)k, ", $train using 1:3 with lines ls 2 title 'training loss (smoothed)'");
    if (va->n) snprintf(plot + k, sizeof plot - (size_t)k, ", $val using 1:2 with %s ls 3 title 'validation loss'", val_style);
    fprintf(g, "%s\nset output\n", plot);
    fprintf(g, "set terminal svg size 1000,560 dynamic noenhanced font 'sans,11' background '#ffffff'\n");
    snprintf(out, sizeof out, "%s/loss.svg", dir);
    fprintf(g, "set output ");
    put_quoted(g, out);
    fprintf(g, "\nreplot\nset output\n");
}

int train_chart(const char *dir, const char *title) {
    if (!in_path("gnuplot")) {
        fprintf(stderr, "lgpu-train: gnuplot is not installed: no loss chart (apt-get install gnuplot-nox; "
                        "%s/metrics.jsonl has the figures)\n", dir);
        return 1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    series tr = {0}, va = {0};
    int st = read_metrics(path, &tr, &va);
    if (st || !tr.n) {
        fprintf(stderr, "lgpu-train: no loss chart: %s\n", st ? strerror(errno) : "no training loss in metrics.jsonl yet");
        goto out;
    }
    const char *tmp = getenv("TMPDIR");
    char script[4200], errf[4300];
    snprintf(script, sizeof script, "%s/lgpu-train-chart-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(script);
    FILE *g = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!g) {
        fprintf(stderr, "lgpu-train: no loss chart: cannot write a script: %s\n", strerror(errno));
        if (fd >= 0) close(fd), unlink(script);
        st = 1;
        goto out;
    }
    write_script(g, dir, title, &tr, &va);
    if (fclose(g) != 0) st = 1;
    snprintf(errf, sizeof errf, "%s.err", script);
    pid_t pid = st ? -1 : fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_RDWR), ef = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (dn >= 0) dup2(dn, 0), dup2(dn, 1);
        if (ef >= 0) dup2(ef, 2);
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    if (pid > 0) {
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    }
    if (pid < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        fprintf(stderr, "lgpu-train: gnuplot failed: no loss chart\n");
        FILE *e = fopen(errf, "r");
        char line[512];
        for (int i = 0; e && i < 8 && fgets(line, sizeof line, e); i++) fprintf(stderr, "  gnuplot: %s", line);
        if (e) fclose(e);
        st = 1;
    }
    unlink(script);
    unlink(errf);
out:
    free(tr.x);
    free(tr.y);
    free(va.x);
    free(va.y);
    return st ? 1 : 0;
}
