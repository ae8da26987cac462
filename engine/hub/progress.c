/* A one-line download progress bar on stderr: name, bar, %, MB, MB/s, ETA.
 * On a terminal it is redrawn in place 10 times a second; when forced onto a
 * file or pipe it prints a plain line every 2 s instead. Resumed bytes count
 * toward the % but not toward the speed. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub_internal.h"
#include "lgpu/lgpu.h"

void lgpu_hub_progress_begin(hub_progress *p, bool enabled, const char *name, int64_t total, int64_t offset) {
    *p = (hub_progress){.enabled = enabled, .name = name, .total = total, .offset = offset, .tty = isatty(2)};
    p->t0 = lgpu_now_s();
    p->last = 0;
}

static void draw(hub_progress *p, bool final) {
    double t = lgpu_now_s(), dt = t - p->t0;
    double have = (double)(p->offset + p->now), mb = 1e-6;
    double speed = dt > 0 ? p->now / dt : 0;
    const char *base = p->name; /* "org/name:dir/file" -> "file" */
    for (const char *s = p->name; *s; s++)
        if (*s == '/' || *s == ':') base = s + 1;
    char bar[21];
    char tail[64] = "";
    if (p->total > 0) {
        double f = have / (double)p->total;
        if (f > 1) f = 1;
        int fill = (int)(f * 20);
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : ' ';
        bar[20] = 0;
        if (!final && speed > 0) {
            long eta = (long)((p->total - have) / speed + 0.5);
            snprintf(tail, sizeof tail, "  ETA %ld:%02ld:%02ld", eta / 3600, eta / 60 % 60, eta % 60);
        }
        fprintf(stderr, "%s%-28.28s [%s] %3d%%  %.1f/%.1f MB  %.1f MB/s%s%s", p->tty ? "\r" : "", base, bar,
                (int)(f * 100), have * mb, (double)p->total * mb, speed * mb, tail, p->tty ? "\033[K" : "");
    } else {
        fprintf(stderr, "%s%-28.28s %.1f MB  %.1f MB/s%s", p->tty ? "\r" : "", base, have * mb, speed * mb,
                p->tty ? "\033[K" : "");
    }
    if (final || !p->tty) fputc('\n', stderr);
    fflush(stderr);
    p->last = t;
}

int lgpu_hub_progress_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)ultotal, (void)ulnow;
    hub_progress *p = ud;
    p->now = dlnow;
    if (p->enabled && lgpu_now_s() - p->last >= (p->tty ? 0.1 : 2.0)) draw(p, false);
    return 0;
}

void lgpu_hub_progress_end(hub_progress *p, bool ok) {
    if (!p->enabled) return;
    if (ok) draw(p, true);
    else if (p->tty) fputs("\n", stderr); /* keep the broken-off bar visible */
}
