/* lgpu-train's progress display: the trainer's callback.
 *
 * On a terminal (stderr a tty) one line rewritten in place after every step:
 *   step 120/320 38% | epoch 0.38 | loss 2.1341 | lr 1.26e-04 | 2,315 tok/s | mem 14.2 MiB peak 14.9 MiB | 0:52<1:26
 * Otherwise one line per --log-every steps. Evaluations and checkpoints
 * print a line each either way. SIGINT / SIGTERM set a flag that the
 * callback returns, so the trainer saves a checkpoint and stops. */
#ifndef LGPU_TRAIN_PROGRESS_H
#define LGPU_TRAIN_PROGRESS_H

#include <signal.h>
#include <stdio.h>

#include "lgpu/train.h"

#define PROG_WINDOW 16

typedef struct progress {
    FILE *f;
    bool tty;
    lgpu_dev *dev;
    uint64_t log_every;
    bool line_open; /* a \r line is on the terminal */
    /* recent (elapsed, tokens, step) for the rate and the ETA */
    double w_el[PROG_WINDOW];
    uint64_t w_tok[PROG_WINDOW], w_step[PROG_WINDOW];
    unsigned w_n, w_i;
    /* for the summary */
    uint64_t n_steps, first_step, last_step;
    double first_loss, loss_tail[PROG_WINDOW];
    double first_step_loss, last_step_loss; /* the first and last finite ones */
    unsigned tail_n, head_n;
    double first_val, last_val;
    uint64_t n_evals;
    double last_rate, step_tokens, step_time; /* tokens and seconds of the steps after the first */
    uint64_t last_tok;
    char last_checkpoint[4200];
} progress;

/* The signal that stopped the run (0: none). */
extern volatile sig_atomic_t train_stop_signal;
/* SIGINT and SIGTERM stop the run cleanly; a second one kills at once. */
void train_install_signals(void);

void progress_init(progress *pr, FILE *f, lgpu_dev *dev, uint64_t log_every);
/* lgpu_train_callback */
int progress_cb(void *ud, const lgpu_train_progress *p);
/* Ends a line left open by the terminal display. */
void progress_finish(progress *pr);
/* Train loss at the end: the mean of the last 16 steps' losses (NaN if
 * none); first_loss is the mean of the first 16. */
double progress_tail_loss(const progress *pr);
/* Tokens/s of the steps this process ran, the first (shader compiles) left
 * out, evaluations and checkpoints too. */
double progress_rate(const progress *pr);

/* "1:02:03" / "2:03"; "?" for NaN. */
void fmt_duration(double s, char *buf, size_t len);
/* "14.2 MiB" */
void fmt_bytes(double bytes, char *buf, size_t len);
/* 12345 -> "12,345" */
void fmt_count(uint64_t n, char *buf, size_t len);

#endif
