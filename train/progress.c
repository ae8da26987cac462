/* lgpu-train's progress display (see progress.h). */
#include "progress.h"

#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

volatile sig_atomic_t train_stop_signal;

static void on_signal(int sig) {
    train_stop_signal = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills at once (checkpoints are atomic) */
}

void train_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void fmt_duration(double s, char *buf, size_t len) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, len, "?");
        return;
    }
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, len, "%lu:%02lu", t / 60, t % 60);
}

void fmt_bytes(double b, char *buf, size_t len) {
    if (b >= 1024.0 * 1024 * 1024) snprintf(buf, len, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024) snprintf(buf, len, "%.1f MiB", b / (1024.0 * 1024));
    else snprintf(buf, len, "%.1f KiB", b / 1024.0);
}

void fmt_count(uint64_t n, char *buf, size_t len) {
    char digits[32];
    int k = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n), o = 0;
    for (int i = 0; i < k && (size_t)o + 2 < len; i++) {
        if (i && (k - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

void progress_init(progress *pr, FILE *f, lgpu_dev *dev, uint64_t log_every) {
    memset(pr, 0, sizeof *pr);
    pr->f = f;
    pr->tty = isatty(fileno(f));
    pr->dev = dev;
    pr->log_every = log_every ? log_every : 1;
    pr->first_loss = pr->first_val = pr->last_val = pr->first_step_loss = pr->last_step_loss = NAN;
}

static int term_width(FILE *f) {
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 120;
}

/* Tokens/s and seconds per step over the recent window. */
static void rates(const progress *pr, double *tok_s, double *s_per_step) {
    *tok_s = *s_per_step = NAN;
    if (pr->w_n < 2) return;
    unsigned newest = (pr->w_i + PROG_WINDOW - 1) % PROG_WINDOW;
    unsigned oldest = pr->w_n < PROG_WINDOW ? 0 : pr->w_i;
    double dt = pr->w_el[newest] - pr->w_el[oldest];
    if (dt <= 0) return;
    *tok_s = (double)(pr->w_tok[newest] - pr->w_tok[oldest]) / dt;
    *s_per_step = dt / (double)(pr->w_step[newest] - pr->w_step[oldest]);
}

static void clear_line(progress *pr) {
    if (pr->line_open) fprintf(pr->f, "\r\033[K");
    pr->line_open = false;
}

double progress_tail_loss(const progress *pr) {
    unsigned n = pr->tail_n < PROG_WINDOW ? pr->tail_n : PROG_WINDOW;
    double s = 0;
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++)
        if (isfinite(pr->loss_tail[i])) s += pr->loss_tail[i], k++;
    return k ? s / k : NAN;
}

double progress_rate(const progress *pr) {
    if (pr->step_time > 0) return pr->step_tokens / pr->step_time;
    return pr->n_steps ? pr->last_rate : NAN;
}

static void step_line(progress *pr, const lgpu_train_progress *p) {
    double tok_s, sps;
    rates(pr, &tok_s, &sps);
    if (!isfinite(tok_s)) tok_s = p->tokens_per_s;
    double eta = isfinite(sps) ? sps * (double)(p->total_steps - p->step) : p->eta_s;
    char el[32], et[32], mem[32], peak[32], line[512], loss[32], lr[32];
    fmt_duration(p->elapsed_s, el, sizeof el);
    fmt_duration(eta, et, sizeof et);
    /* the engine's own buffers (lgpu_dev_memory counts the driver's blocks) */
    fmt_bytes((double)lgpu_dev_buffer_bytes(pr->dev), mem, sizeof mem);
    fmt_bytes((double)lgpu_dev_memory_peak(pr->dev), peak, sizeof peak);
    if (isfinite(p->loss)) snprintf(loss, sizeof loss, "%.4f", p->loss);
    else snprintf(loss, sizeof loss, "-");
    snprintf(lr, sizeof lr, "%.3g", p->lr);
    int pct = p->total_steps ? (int)(100 * p->step / p->total_steps) : 100;
    if (pr->tty) {
        /* the figures that fit the terminal's width (so \r rewrites one
         * line), dropped in this order: memory, epoch, lr, tokens/s */
        char f_step[64], f_epoch[32], f_loss[48], f_lr[48], f_rate[32], f_mem[80], f_time[80];
        int tw = snprintf(f_step, sizeof f_step, "%llu", (unsigned long long)p->total_steps);
        snprintf(f_step, sizeof f_step, "step %*llu/%llu %3d%%", tw, (unsigned long long)p->step,
                 (unsigned long long)p->total_steps, pct);
        snprintf(f_epoch, sizeof f_epoch, "epoch %.2f", p->epoch);
        snprintf(f_loss, sizeof f_loss, "loss %s", loss);
        snprintf(f_lr, sizeof f_lr, "lr %s", lr);
        snprintf(f_rate, sizeof f_rate, "%.0f tok/s", tok_s);
        snprintf(f_mem, sizeof f_mem, "mem %s (peak %s)", mem, peak);
        snprintf(f_time, sizeof f_time, "%s<%s", el, et);
        const char *fields[] = {f_step, f_epoch, f_loss, f_lr, f_rate, f_mem, f_time};
        const int drop_order[] = {5, 1, 3, 4};
        bool keep[7] = {true, true, true, true, true, true, true};
        int width = term_width(pr->f) - 1, n = 0;
        for (int d = 0; d <= 4; d++) {
            n = 0;
            line[0] = 0;
            for (int i = 0; i < 7; i++)
                if (keep[i]) n += snprintf(line + n, sizeof line - (size_t)n, "%s%s", n ? " | " : "", fields[i]);
            if (n <= width || d == 4) break;
            keep[drop_order[d]] = false;
        }
        if (n > width) line[width] = 0;
        fprintf(pr->f, "\r%s\033[K", line);
        pr->line_open = true;
    } else {
        fprintf(pr->f, "step %llu/%llu  epoch %.2f  loss %s  lr %s  grad_norm %.3g  %.0f tok/s  mem %s  peak %s  elapsed %s  eta %s\n",
                (unsigned long long)p->step, (unsigned long long)p->total_steps, p->epoch, loss, lr, p->grad_norm,
                tok_s, mem, peak, el, et);
    }
    fflush(pr->f);
}

int progress_cb(void *ud, const lgpu_train_progress *p) {
    progress *pr = ud;
    switch (p->event) {
    case LGPU_TRAIN_STEP:
    case LGPU_TRAIN_TICK:
        pr->w_el[pr->w_i] = p->elapsed_s;
        pr->w_tok[pr->w_i] = p->tokens_seen;
        pr->w_step[pr->w_i] = p->step;
        pr->w_i = (pr->w_i + 1) % PROG_WINDOW;
        if (pr->w_n < PROG_WINDOW) pr->w_n++;
        if (pr->n_steps && p->tokens_per_s > 0) { /* the first step (shader compiles) left out */
            double tok = (double)(p->tokens_seen - pr->last_tok);
            pr->step_tokens += tok;
            pr->step_time += tok / p->tokens_per_s;
        }
        if (!pr->n_steps++) pr->first_step = p->step;
        if (isfinite(p->loss)) {
            if (isnan(pr->first_step_loss)) pr->first_step_loss = p->loss;
            pr->last_step_loss = p->loss;
        }
        if (isfinite(p->loss) && pr->head_n < PROG_WINDOW) { /* the mean of the first 16 losses */
            pr->first_loss = isnan(pr->first_loss) ? p->loss : (pr->first_loss * pr->head_n + p->loss) / (pr->head_n + 1);
            pr->head_n++;
        }
        pr->last_tok = p->tokens_seen;
        pr->last_rate = p->tokens_per_s;
        pr->last_step = p->step;
        pr->loss_tail[pr->tail_n++ % PROG_WINDOW] = p->loss;
        if (pr->tty || p->event == LGPU_TRAIN_STEP) step_line(pr, p);
        break;
    case LGPU_TRAIN_EVAL: {
        clear_line(pr);
        pr->w_n = pr->w_i = 0; /* the rate of steps, not of the evaluation */
        if (!pr->n_evals++) pr->first_val = p->val_loss;
        pr->last_val = p->val_loss;
        fprintf(pr->f, "eval  step %llu: val_loss %.4f (perplexity %.2f)\n", (unsigned long long)p->step, p->val_loss,
                exp(p->val_loss));
        break;
    }
    case LGPU_TRAIN_SAVE:
        clear_line(pr);
        pr->w_n = pr->w_i = 0;
        snprintf(pr->last_checkpoint, sizeof pr->last_checkpoint, "%s", p->checkpoint ? p->checkpoint : "");
        fprintf(pr->f, "saved step %llu: %s\n", (unsigned long long)p->step, p->checkpoint ? p->checkpoint : "?");
        break;
    }
    fflush(pr->f);
    return train_stop_signal != 0;
}

void progress_finish(progress *pr) {
    if (pr->line_open) fprintf(pr->f, "\n");
    pr->line_open = false;
    fflush(pr->f);
}
