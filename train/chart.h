/* lgpu-train's loss chart: OUTDIR/metrics.jsonl drawn by gnuplot (run as a
 * subprocess, fed a script) as OUTDIR/loss.png (pngcairo, else png) and
 * OUTDIR/loss.svg: the training loss per logged step (raw, and an
 * exponential moving average when there are many points) and the
 * validation loss per evaluation. */
#ifndef LGPU_TRAIN_CHART_H
#define LGPU_TRAIN_CHART_H

/* 0: drawn; 1: not drawn, and why is on stderr (no gnuplot, no data, gnuplot
 * failed): the chart is not essential, the caller carries on. */
int train_chart(const char *output_dir, const char *title);

#endif
