/* lgpu-train: LoRA fine-tuning from a JSONL dataset to a PEFT / GGUF
 * adapter, a thin program over lgpu/train.h.
 *   lgpu-train [-m MODEL] --data FILE.jsonl [--val-file FILE | --val-split F] -o OUTDIR [options]
 * Exit status: 0 done, 1 error, 2 usage, 130 interrupted (SIGINT; 143 for
 * SIGTERM) after a checkpoint was saved. docs/TRAINING.md describes it. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chart.h"
#include "lgpu/lgpu.h"
#include "lgpu/train.h"
#include "opts.h"
#include "progress.h"

static int engine_error(void) {
    fprintf(stderr, "lgpu-train: %s\n", lgpu_last_error());
    return 1;
}

/* ---- files ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

static int rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The newest checkpoint-N in dir (N, or 0 when none); *any: some run's files are there. */
static uint64_t find_run(const char *dir, bool *any) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    *any = exists(path);
    uint64_t newest = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned long long n;
        char rest[8];
        if (sscanf(e->d_name, "checkpoint-%llu%7s", &n, rest) == 1) {
            *any = true;
            if (n > newest) newest = n;
        }
    }
    if (d) closedir(d);
    return newest;
}

/* --overwrite-output-dir: what a run writes, nothing else. */
static int clear_run(const char *dir) {
    static const char *files[] = {"metrics.jsonl", "adapter", "adapter.gguf", "loss.png", "loss.svg", "train_config.json"};
    char path[4200];
    int st = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (rm_rf(path)) st = -1;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "checkpoint-", 11)) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (rm_rf(path)) st = -1;
        }
    if (d) closedir(d);
    return st;
}

static int write_file(const char *path, const char *text) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int append_metric(const char *dir, uint64_t step, const char *key, double v) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "a");
    if (!f) return -1;
    fprintf(f, "{\"step\":%llu,\"%s\":%.17g}\n", (unsigned long long)step, key, v);
    return fclose(f);
}

/* "ORG/NAME:FILE.gguf" / "dir/stories260K.gguf" / "embedded:stories260K" -> "stories260K" */
static void model_name(const char *model, char *buf, size_t len) {
    const char *base = model;
    const char *colon = strrchr(base, ':');
    if (colon && colon[1]) base = colon + 1;
    const char *slash = strrchr(base, '/');
    while (slash && !slash[1] && slash > base) { /* a trailing slash: the folder's name */
        const char *p = slash - 1;
        while (p > base && *p != '/') p--;
        base = *p == '/' ? p + 1 : p;
        slash = NULL;
    }
    if (slash && slash[1]) base = slash + 1;
    snprintf(buf, len, "%s", base);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '/') buf[--n] = 0;
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf && (!strcmp(dot, ".gguf") || !strcmp(dot, ".bin"))) *dot = 0;
}

static void targets_text(uint32_t m, char *buf, size_t len) {
    size_t k = 0;
    buf[0] = 0;
    for (int t = 0; t < LGPU_LORA_N_TARGETS; t++)
        if (m & (1u << t))
            k += (size_t)snprintf(buf + k, len > k ? len - k : 0, "%s%s", k ? "," : "", lgpu_lora_target_name((lgpu_lora_target)t));
}

static void device_text(lgpu_model *m, int threads, char *buf, size_t len) {
    lgpu_dev *dev = lgpu_model_dev(m);
    if (lgpu_dev_kind_of(dev) == LGPU_DEV_CPU)
        snprintf(buf, len, "the host C path, %d thread%s", threads > 0 ? threads : lgpu_dev_threads(dev),
                 (threads > 0 ? threads : lgpu_dev_threads(dev)) == 1 ? "" : "s");
    else snprintf(buf, len, "%s (Vulkan)", lgpu_dev_name(dev));
}

static int load_model(const train_opts *o, lgpu_model **m) {
    if (!o->model)
        fprintf(stderr, "lgpu-train: no -m given: using the embedded %s model\n", LGPU_MODEL_EMBEDDED_NAME);
    lgpu_model_params mp = {.path = o->model ? o->model : LGPU_MODEL_EMBEDDED, .tokenizer_path = o->tokenizer,
                            .device = o->device, .progress = isatty(2)};
    if (lgpu_model_create(&mp, m)) return engine_error();
    return 0;
}

/* ---- before training: what will happen ---- */

static void print_skips(const lgpu_dataset *ds) {
    if (!ds) return;
    for (size_t k = 0; k < 5; k++) {
        const char *r = lgpu_dataset_skip_reason(ds, k);
        if (!r) break;
        fprintf(stderr, "               %s\n", r);
    }
    size_t n = lgpu_dataset_n_skipped(ds) + lgpu_dataset_n_dropped(ds);
    if (n > 5) fprintf(stderr, "               ... and %zu more\n", n - 5);
}

static void print_plan(const train_opts *o, lgpu_model *m, lgpu_trainer *t, uint64_t resumed_at) {
    const lgpu_train_params *p = &o->p;
    lgpu_train_data_info di;
    lgpu_trainer_data_info(t, &di);
    const lgpu_dataset *tds = lgpu_trainer_dataset(t, false), *vds = lgpu_trainer_dataset(t, true);
    lgpu_lora *lora = lgpu_trainer_lora(t);
    char a[64], b[64], c[64], dev[256], tg[64];
    device_text(m, p->threads, dev, sizeof dev);
    fprintf(stderr, "lgpu-train: model      %s, %s parameters\n", lgpu_model_desc(m),
            (fmt_count(lgpu_model_n_params(m), a, sizeof a), a));
    fprintf(stderr, "            device     %s\n", dev);
    fmt_count(di.n_train, a, sizeof a);
    fmt_count(di.train_tokens, b, sizeof b);
    fmt_count(di.counted_tokens, c, sizeof c);
    fprintf(stderr, "            data       %s: %s examples (%s), %s tokens, %s in the loss (%s)\n", p->train_file, a,
            lgpu_dataset_format_name(lgpu_dataset_format_of(tds)), b, c,
            p->train_on_prompt ? "prompt and response" : "responses only");
    size_t skipped = lgpu_dataset_n_skipped(tds) + (vds ? lgpu_dataset_n_skipped(vds) : 0);
    if (skipped) {
        fprintf(stderr, "            skipped    %zu bad line%s (--skip-invalid):\n", skipped, skipped == 1 ? "" : "s");
        print_skips(tds);
        print_skips(vds);
    }
    size_t dropped = lgpu_dataset_n_dropped(tds);
    if (di.n_truncated)
        fprintf(stderr, "            truncated  %llu example%s cut to --seq-len %u%s%zu dropped: no response token fit)\n",
                (unsigned long long)(di.n_truncated - dropped), di.n_truncated - dropped == 1 ? "" : "s", p->seq_len,
                dropped ? " (" : "", dropped);
    if (p->val_file) fprintf(stderr, "            validation %s: %llu examples\n", p->val_file, (unsigned long long)di.n_val);
    else if (di.n_val)
        fprintf(stderr, "            validation %llu examples held out of the data (--val-split %g)\n",
                (unsigned long long)di.n_val, p->val_split);
    else fprintf(stderr, "            validation none (--val-file or --val-split for a validation loss)\n");
    uint64_t total = lgpu_trainer_total_steps(t);
    double epochs = di.batches_per_epoch ? (double)total * p->grad_accum / (double)di.batches_per_epoch : 0;
    fmt_count((uint64_t)p->micro_batch * p->grad_accum * p->seq_len, a, sizeof a);
    fprintf(stderr, "            steps      %llu (%.2f epoch%s of %llu micro-batches), %u x %u tokens x grad-accum %u = %s tokens a step%s\n",
            (unsigned long long)total, epochs, epochs == 1 ? "" : "s", (unsigned long long)di.batches_per_epoch,
            p->micro_batch, p->seq_len, p->grad_accum, a, p->pack ? ", packed" : "");
    if (resumed_at) fprintf(stderr, "            resume     from %s at step %llu\n", o->resume, (unsigned long long)resumed_at);
    uint64_t warm = p->warmup_steps ? p->warmup_steps : (uint64_t)ceil(p->warmup_ratio * (double)total);
    fprintf(stderr, "            optimizer  AdamW lr %g, %s schedule, %llu warmup steps, weight decay %g, clip %g, seed %llu\n",
            p->lr, lgpu_lr_kind_name(p->schedule), (unsigned long long)warm, p->weight_decay, p->max_grad_norm,
            (unsigned long long)p->seed);
    targets_text(lgpu_lora_targets(lora), tg, sizeof tg);
    fmt_count(lgpu_lora_n_params(lora), a, sizeof a);
    fmt_bytes((double)lgpu_lora_bytes(lora), b, sizeof b);
    fprintf(stderr, "            adapter    LoRA r=%u alpha=%g on %s%s: %s trainable parameters (%.2f%% of the model), %s on the device\n",
            lgpu_lora_rank(lora), lgpu_lora_alpha(lora), tg, p->lora.path ? " (from --adapter)" : "", a,
            100.0 * (double)lgpu_lora_n_params(lora) / (double)lgpu_model_n_params(m), b);
    size_t used, budget;
    lgpu_dev_memory(lgpu_model_dev(m), &used, &budget);
    fmt_bytes((double)lgpu_dev_buffer_bytes(lgpu_model_dev(m)), a, sizeof a);
    fmt_bytes((double)lgpu_model_weight_bytes(m), b, sizeof b);
    fmt_bytes((double)used, c, sizeof c);
    fprintf(stderr, "            memory     %s in device buffers (model weights %s; %s allocated from the driver", a, b, c);
    if (budget) fmt_bytes((double)budget, c, sizeof c);
    fprintf(stderr, "%s%s)\n", budget ? " of a budget of " : "", budget ? c : "");
    if (p->save_every)
        fprintf(stderr, "            output     %s: a checkpoint every %llu steps and at the end\n", p->output_dir,
                (unsigned long long)p->save_every);
    else fprintf(stderr, "            output     %s: a checkpoint at the end (--save-every N for more)\n", p->output_dir);
}

/* ---- training ---- */

static int run_train(train_opts *o) {
    lgpu_train_params *p = &o->p;
    char *resume_dir = NULL;
    if (!p->train_file) {
        fprintf(stderr, "lgpu-train: --data FILE.jsonl is required (see lgpu-train --help)\n");
        return 2;
    }
    if (!p->output_dir && o->resume) p->output_dir = resume_dir = train_resume_output_dir(o->resume);
    if (!p->output_dir) {
        fprintf(stderr, "lgpu-train: -o OUTDIR is required (see lgpu-train --help)\n");
        return 2;
    }
    if (p->val_file && p->val_split > 0) {
        fprintf(stderr, "lgpu-train: --val-file and --val-split exclude each other (see lgpu-train --help)\n");
        free(resume_dir);
        return 2;
    }
    bool any;
    uint64_t newest = find_run(p->output_dir, &any);
    if (any && !o->resume) {
        if (!o->overwrite) {
            fprintf(stderr, "lgpu-train: %s already has a run%s: --resume %s continues it, --overwrite-output-dir "
                            "starts over (see lgpu-train --help)\n", p->output_dir,
                    newest ? " (checkpoints up to step " : "", p->output_dir);
            if (newest) fprintf(stderr, "  (its newest checkpoint: %s/checkpoint-%llu)\n", p->output_dir, (unsigned long long)newest);
            free(resume_dir);
            return 2;
        }
        if (clear_run(p->output_dir)) {
            fprintf(stderr, "lgpu-train: %s: cannot remove the earlier run: %s\n", p->output_dir, strerror(errno));
            free(resume_dir);
            return 1;
        }
    }
    if (o->config_from_resume) fprintf(stderr, "lgpu-train: settings of the resumed run from %s/train_config.json\n", p->output_dir);

    lgpu_model *m = NULL;
    lgpu_trainer *t = NULL;
    char *cfg = NULL;
    int rc = load_model(o, &m);
    if (rc) goto out;
    lgpu_train_params tp = *p; /* with what the program decides, not saved in train_config.json */
    if (!tp.base_model) tp.base_model = o->model ? o->model : LGPU_MODEL_EMBEDDED;
    tp.progress_every_step = true;
    if (lgpu_trainer_create(m, &tp, &t)) {
        rc = engine_error(); /* a bad line: file:line, id, the problem, and --skip-invalid */
        goto out;
    }
    if (o->resume && lgpu_trainer_resume(t, o->resume)) {
        rc = engine_error();
        goto out;
    }
    uint64_t start = lgpu_trainer_steps_done(t), total = lgpu_trainer_total_steps(t);
    print_plan(o, m, t, start);
    char path[4200];
    snprintf(path, sizeof path, "%s/train_config.json", p->output_dir);
    if (!(cfg = train_opts_to_json(o)) || write_file(path, cfg))
        fprintf(stderr, "lgpu-train: warning: cannot write %s: %s\n", path, strerror(errno));

    progress pr;
    progress_init(&pr, stderr, lgpu_model_dev(m), p->log_every);
    train_install_signals();
    if (start == 0 && !train_stop_signal) {
        /* the validation loss before training, the start of its curve */
        double vl;
        lgpu_train_data_info di;
        lgpu_trainer_data_info(t, &di);
        if (di.n_val) {
            if (lgpu_trainer_evaluate(t, &vl)) {
                rc = engine_error();
                goto out;
            }
            append_metric(p->output_dir, 0, "val_loss", vl);
            lgpu_train_progress ev = {.total_steps = total, .val_loss = vl, .event = LGPU_TRAIN_EVAL};
            progress_cb(&pr, &ev);
        }
    }
    double t0 = lgpu_now_s();
    /* a Ctrl-C already seen stops it after one step and its checkpoint */
    int st = lgpu_trainer_run(t, progress_cb, &pr);
    double wall = lgpu_now_s() - t0;
    progress_finish(&pr);
    if (st) {
        rc = engine_error();
        goto out;
    }
    uint64_t done = lgpu_trainer_steps_done(t);
    char a[64], b[64], title[512], name[256];
    fmt_duration(wall, a, sizeof a);
    double rate = progress_rate(&pr);
    fmt_count((uint64_t)(isfinite(rate) ? rate : 0), b, sizeof b);
    model_name(o->model ? o->model : LGPU_MODEL_EMBEDDED, name, sizeof name);
    bool finished = done >= total;
    if (finished) {
        printf("lgpu-train: done: %llu steps", (unsigned long long)done);
        if (start) printf(" (%llu after the resume)", (unsigned long long)(done - start));
        printf(" in %s, %s tokens/s", a, b);
    } else {
        printf("lgpu-train: stopped at step %llu of %llu after %s (%s)", (unsigned long long)done,
               (unsigned long long)total, a, train_stop_signal == SIGTERM ? "SIGTERM" : "Ctrl-C");
    }
    double tail = progress_tail_loss(&pr);
    if (pr.n_steps >= 2 * PROG_WINDOW)
        printf("; training loss %.4f -> %.4f (means of the first and last %d steps)", pr.first_loss, tail, PROG_WINDOW);
    else if (pr.n_steps) printf("; training loss %.4f -> %.4f (first and last step)", pr.first_step_loss, pr.last_step_loss);
    if (pr.n_evals > 1)
        printf("; validation loss %.4f -> %.4f (%+.1f%%)", pr.first_val, pr.last_val,
               100.0 * (pr.last_val - pr.first_val) / pr.first_val);
    else if (pr.n_evals) printf("; validation loss %.4f", pr.last_val);
    printf("\n");
    if (finished) {
        printf("  adapter     %s/adapter (PEFT), %s/adapter.gguf (llama.cpp)\n", p->output_dir, p->output_dir);
    }
    if (pr.last_checkpoint[0]) printf("  checkpoint  %s\n", pr.last_checkpoint);
    printf("  metrics     %s/metrics.jsonl\n", p->output_dir);
    fflush(stdout);
    snprintf(title, sizeof title, "%s: LoRA r=%u alpha=%g, lr %g %s, %s", name, lgpu_lora_rank(lgpu_trainer_lora(t)),
             lgpu_lora_alpha(lgpu_trainer_lora(t)), p->lr, lgpu_lr_kind_name(p->schedule), p->output_dir);
    if (!o->no_chart && train_chart(p->output_dir, title) == 0)
        printf("  chart       %s/loss.png, %s/loss.svg\n", p->output_dir, p->output_dir);
    if (!finished) {
        fprintf(stderr, "lgpu-train: interrupted; continue with: lgpu-train --resume %s\n", p->output_dir);
        rc = 128 + (train_stop_signal ? train_stop_signal : SIGINT);
    }
out:
    free(cfg);
    lgpu_trainer_destroy(t);
    lgpu_model_destroy(m);
    free(resume_dir);
    return rc;
}

/* ---- --bench ---- */

/* Plain story-like text, deterministic: enough for packed rows. */
static int write_bench_data(const char *path) {
    static const char *words[] = {"Once", "upon", "a", "time", "there", "was", "little", "cat", "dog", "bird", "who",
                                  "lived", "in", "the", "big", "green", "forest", "and", "liked", "to", "play", "with",
                                  "her", "his", "friend", "ball", "sun", "tree", "happy", "sad", "one", "day", "saw",
                                  "went", "home", "said", "hello", "they", "were", "best", "friends", "mom", "park"};
    FILE *f = fopen(path, "w");
    if (!f) return lgpu_set_error(LGPU_EIO, "%s: %s", path, strerror(errno));
    uint64_t x = 42;
    for (int line = 0; line < 256; line++) {
        fputs("{\"text\": \"Once upon a time,", f);
        for (int w = 0; w < 120; w++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            fprintf(f, " %s%s", words[(x >> 33) % (sizeof words / sizeof words[0])], (x >> 20) % 9 == 0 ? "." : "");
        }
        fputs(" And from that day on, they were best friends.\"}\n", f);
    }
    return fclose(f) == 0 ? 0 : lgpu_set_error(LGPU_EIO, "%s: write failed", path);
}

static int run_bench(train_opts *o) {
    lgpu_train_params *p = &o->p;
    const char *tmpdir = getenv("TMPDIR");
    char dir[4200], data[4300];
    snprintf(dir, sizeof dir, "%s/lgpu-train-bench-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "lgpu-train: cannot make a temporary folder %s: %s\n", dir, strerror(errno));
        return 1;
    }
    lgpu_model *m = NULL;
    lgpu_trainer *t = NULL;
    int rc = load_model(o, &m);
    if (rc) goto out;
    if (!p->train_file) {
        snprintf(data, sizeof data, "%s/bench.jsonl", dir);
        if (write_bench_data(data)) {
            rc = engine_error();
            goto out;
        }
        p->train_file = data;
        p->pack = true;
        p->format = LGPU_DATASET_AUTO;
    }
    p->output_dir = dir;
    p->val_file = NULL;
    p->val_split = 0;
    p->max_steps = (uint64_t)o->bench_warmup + o->bench_steps;
    if (!p->base_model) p->base_model = o->model ? o->model : LGPU_MODEL_EMBEDDED;
    if (lgpu_trainer_create(m, p, &t)) {
        rc = engine_error();
        goto out;
    }
    lgpu_dev *dev = lgpu_model_dev(m);
    char name[256], devs[256];
    model_name(o->model ? o->model : LGPU_MODEL_EMBEDDED, name, sizeof name);
    int nt = p->threads > 0 ? p->threads : lgpu_dev_threads(dev);
    if (lgpu_dev_kind_of(dev) == LGPU_DEV_CPU) snprintf(devs, sizeof devs, "cpu (%d thread%s)", nt, nt == 1 ? "" : "s");
    else snprintf(devs, sizeof devs, "%s", lgpu_dev_name(dev));
    fprintf(stderr, "lgpu-train: bench %s%s%s: %u warm-up and %u timed steps of micro-batch %u x seq %u x grad-accum %u\n",
            lgpu_model_desc(m), lgpu_dev_kind_of(dev) == LGPU_DEV_CPU ? ", " : "",
            lgpu_dev_kind_of(dev) == LGPU_DEV_CPU ? devs : "", o->bench_warmup, o->bench_steps, p->micro_batch, p->seq_len, p->grad_accum);
    lgpu_train_progress pr;
    double loss = NAN;
    for (uint32_t i = 0; i < o->bench_warmup; i++)
        if (lgpu_trainer_step(t, &pr)) {
            rc = engine_error();
            goto out;
        }
    lgpu_dev_memory_peak_reset(dev);
    double t0 = lgpu_now_s();
    for (uint32_t i = 0; i < o->bench_steps; i++) {
        if (lgpu_trainer_step(t, &pr)) {
            rc = engine_error();
            goto out;
        }
        loss = pr.loss;
    }
    double dt = lgpu_now_s() - t0;
    double tokens = (double)o->bench_steps * p->grad_accum * p->micro_batch * p->seq_len;
    char peak[32];
    fmt_bytes((double)lgpu_dev_memory_peak(dev), peak, sizeof peak);
    printf("train: %s %s micro-batch %u x seq %u, rank %u: %.0f tokens/s, peak %s (%.3f s/step, grad-accum %u, "
           "%u steps after %u warm-up, loss %.3f)\n",
           name, devs, p->micro_batch, p->seq_len, lgpu_lora_rank(lgpu_trainer_lora(t)), tokens / dt, peak,
           dt / o->bench_steps, p->grad_accum, o->bench_steps, o->bench_warmup, loss);
out:
    lgpu_trainer_destroy(t);
    lgpu_model_destroy(m);
    rm_rf(dir);
    return rc;
}

int main(int argc, char **argv) {
    train_opts o;
    int st = train_opts_parse(&o, argc, argv);
    if (st) {
        train_opts_free(&o);
        return st == 1 ? 0 : 2;
    }
    int rc = o.bench ? run_bench(&o) : run_train(&o);
    train_opts_free(&o);
    return rc;
}
