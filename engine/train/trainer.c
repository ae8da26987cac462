/* The training loop (lgpu/train.h): data, adapter, graph, optimizer and
 * checkpoints put together.
 *
 * Data position: micro-batch k of the run is batch k % n of epoch k / n
 * (n micro-batches per epoch), so a step is a pure function of k and a
 * resumed run, restoring k, sees exactly the data it would have. One
 * optimizer step takes grad_accum micro-batches; the loss of the step is
 * the mean over every counted token of all of them (each micro-batch's
 * gradient is scaled by 1 / that count), so accumulation equals one batch
 * grad_accum times larger. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/atomic_file.h"
#include "core/grow.h"
#include "dev/device.h"
#include "lgpu/train.h"
#include "train/batch.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/graph.h"
#include "train/optim.h"
#include "train/schedule.h"

struct lgpu_trainer {
    lgpu_model *model;
    lgpu_train_params p;
    char *train_file, *val_file, *output_dir, *base_model; /* owned copies of p's strings */
    char *prompt_template, *prompt_template_no_input, *chat_template;
    lgpu_dataset *train_ds, *val_ds;
    lgpu_batcher *train_b, *val_b;
    lgpu_lora *lora;
    lgpu_train_graph *graph;
    lgpu_optim *optim;
    lgpu_lr_schedule sched;
    uint64_t step, total_steps, micro, tokens_seen;
    uint64_t n_batches; /* micro-batches per epoch */
    double val_loss, t0, elapsed_before; /* elapsed_before: time of the run before a resume */
    int32_t *tokens, *targets;           /* grad_accum micro-batches of B*T */
    uint32_t *counted;
    char ckpt[4200];
    lgpu_train_data_info info;
};

lgpu_train_params lgpu_train_params_default(void) {
    return (lgpu_train_params){.seq_len = 512, .micro_batch = 1, .grad_accum = 1, .epochs = 1,
                               .lora = {.rank = 8, .alpha = 16, .targets = LGPU_LORA_ALL_TARGETS},
                               .lr = 2e-4f, .schedule = LGPU_LR_LINEAR, .beta1 = 0.9f, .beta2 = 0.999f,
                               .adam_eps = 1e-8f, .max_grad_norm = 1.0f, .seed = 42, .log_every = 1};
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int check_params(const lgpu_train_params *p, const lgpu_hparams *hp) {
    if (!p->train_file) return lgpu_set_error(LGPU_EINVAL, "training: no training data (train_file)");
    if (!p->output_dir) return lgpu_set_error(LGPU_EINVAL, "training: no output folder (output_dir)");
    if (p->seq_len < 2 || (hp->n_ctx_train && p->seq_len > hp->n_ctx_train && p->seq_len > 4096))
        return lgpu_set_error(LGPU_EINVAL, "training: seq_len %u must be in 2..max(model context %u, 4096)",
                              p->seq_len, hp->n_ctx_train);
    if (!p->micro_batch || !p->grad_accum)
        return lgpu_set_error(LGPU_EINVAL, "training: micro_batch and grad_accum must be at least 1");
    if (!(p->lr > 0) || !(p->val_split >= 0 && p->val_split < 1) || !(p->warmup_ratio >= 0 && p->warmup_ratio < 1))
        return lgpu_set_error(LGPU_EINVAL, "training: lr %g must be > 0, val_split %g and warmup_ratio %g in [0, 1)",
                              p->lr, p->val_split, p->warmup_ratio);
    if ((unsigned)p->schedule > LGPU_LR_COSINE) return lgpu_set_error(LGPU_EINVAL, "training: schedule %d", p->schedule);
    if ((unsigned)p->format > LGPU_DATASET_TEXT) return lgpu_set_error(LGPU_EINVAL, "training: format %d", p->format);
    return 0;
}

static int load_data(lgpu_trainer *t) {
    const lgpu_train_params *p = &t->p;
    lgpu_tokenizer *tok = lgpu_model_tokenizer(t->model);
    if (!tok) return lgpu_set_error(LGPU_EINVAL, "training: the model has no tokenizer");
    lgpu_dataset_params dp = lgpu_dataset_params_default();
    dp.path = p->train_file, dp.skip_invalid = p->skip_invalid, dp.train_on_prompt = p->train_on_prompt;
    /* one example per row: cut (and count) what passes a row; packed rows
     * carry long examples across rows instead */
    dp.max_tokens = p->pack ? 0 : p->seq_len;
    dp.format = p->format;
    dp.prompt_template = p->prompt_template, dp.prompt_template_no_input = p->prompt_template_no_input;
    dp.chat_template = p->chat_template;
    int st = lgpu_dataset_create(tok, &dp, &t->train_ds);
    if (st) return st;
    size_t n = lgpu_dataset_size(t->train_ds);
    size_t *train_idx = NULL, *val_idx = NULL, n_train = n, n_val = 0;
    if (p->val_file) {
        dp.path = p->val_file;
        if ((st = lgpu_dataset_create(tok, &dp, &t->val_ds))) return st;
    } else if (p->val_split > 0) {
        if ((st = lgpu_dataset_split(t->train_ds, p->val_split, p->seed, &train_idx, &n_train, &val_idx, &n_val)))
            return st;
    }
    if (!n_train) {
        st = lgpu_set_error(LGPU_EINVAL, "%s: no training examples", p->train_file);
        goto done;
    }
    if ((st = lgpu_batcher_create(t->train_ds, train_idx, n_train, p->micro_batch, p->seq_len, p->pack, p->seed,
                                  &t->train_b)))
        goto done;
    if (t->val_ds) st = lgpu_batcher_create(t->val_ds, NULL, lgpu_dataset_size(t->val_ds), p->micro_batch, p->seq_len,
                                            p->pack, p->seed, &t->val_b);
    else if (n_val) st = lgpu_batcher_create(t->train_ds, val_idx, n_val, p->micro_batch, p->seq_len, p->pack,
                                             p->seed, &t->val_b);
    if (st) goto done;
    t->n_batches = lgpu_batcher_n_batches(t->train_b);
    t->info.n_train = n_train;
    t->info.n_val = t->val_ds ? lgpu_dataset_size(t->val_ds) : n_val;
    t->info.n_skipped = lgpu_dataset_n_skipped(t->train_ds) + (t->val_ds ? lgpu_dataset_n_skipped(t->val_ds) : 0);
    t->info.n_truncated = lgpu_dataset_n_truncated(t->train_ds) + lgpu_dataset_n_dropped(t->train_ds);
    t->info.batches_per_epoch = t->n_batches;
    for (size_t i = 0; i < n_train; i++) {
        const int32_t *tk;
        const uint8_t *mask;
        uint32_t len;
        lgpu_dataset_example(t->train_ds, train_idx ? train_idx[i] : i, &tk, &mask, &len, NULL);
        t->info.train_tokens += len;
        for (uint32_t j = 0; j < len; j++) t->info.counted_tokens += mask[j];
    }
done:
    free(train_idx);
    free(val_idx);
    return st;
}

/* Device memory the step needs beyond what is allocated, as an error that
 * says what to lower: wraps LGPU_EDEVMEM from the allocations. */
static int explain_oom(lgpu_trainer *t, int st) {
    if (st != LGPU_EDEVMEM) return st;
    char detail[512];
    snprintf(detail, sizeof detail, "%s", lgpu_last_error());
    return lgpu_set_error(LGPU_EDEVMEM, "training does not fit on %s with micro-batch %u x sequence %u: %s. Lower "
                          "--micro-batch (and raise --grad-accum to keep the batch) or --seq-len, or the LoRA rank",
                          lgpu_dev_name(lgpu_model_dev(t->model)), t->p.micro_batch, t->p.seq_len, detail);
}

int lgpu_trainer_create(lgpu_model *model, const lgpu_train_params *params, lgpu_trainer **out) {
    if (!model || !params || !out) return lgpu_set_error(LGPU_EINVAL, "lgpu_trainer_create: NULL argument");
    *out = NULL;
    int st = check_params(params, lgpu_model_hparams(model));
    if (st) return st;
    lgpu_trainer *t = calloc(1, sizeof *t);
    if (!t) return lgpu_set_error(LGPU_ENOMEM, "lgpu_trainer_create");
    t->model = model;
    t->p = *params;
    t->train_file = dup_or_null(params->train_file);
    t->val_file = dup_or_null(params->val_file);
    t->output_dir = dup_or_null(params->output_dir);
    t->base_model = dup_or_null(params->base_model ? params->base_model : lgpu_model_desc(model));
    t->p.train_file = t->train_file, t->p.val_file = t->val_file, t->p.output_dir = t->output_dir;
    t->p.base_model = t->base_model;
    t->prompt_template = dup_or_null(params->prompt_template);
    t->prompt_template_no_input = dup_or_null(params->prompt_template_no_input);
    t->chat_template = dup_or_null(params->chat_template);
    t->p.prompt_template = t->prompt_template, t->p.prompt_template_no_input = t->prompt_template_no_input;
    t->p.chat_template = t->chat_template;
    t->val_loss = NAN;
    if (!t->train_file || !t->output_dir || !t->base_model || (params->prompt_template && !t->prompt_template) ||
        (params->prompt_template_no_input && !t->prompt_template_no_input) ||
        (params->chat_template && !t->chat_template)) {
        st = lgpu_set_error(LGPU_ENOMEM, "lgpu_trainer_create");
        goto fail;
    }
    if (mkdir(t->output_dir, 0777) != 0 && errno != EEXIST) {
        st = lgpu_set_error(LGPU_EIO, "%s: cannot create the output folder: %s", t->output_dir, strerror(errno));
        goto fail;
    }
    if ((st = load_data(t))) goto fail;
    const lgpu_train_params *p = &t->p;
    t->total_steps = p->max_steps ? p->max_steps : (p->epochs ? p->epochs : 1) * t->n_batches / p->grad_accum;
    if (!t->total_steps) t->total_steps = 1;
    t->sched = (lgpu_lr_schedule){.kind = p->schedule, .lr = p->lr, .total_steps = t->total_steps,
                                  .warmup_steps = p->warmup_steps ? p->warmup_steps
                                                                  : (uint64_t)ceil(p->warmup_ratio * t->total_steps)};
    /* a new adapter, or (lora.path) an existing one to train further */
    lgpu_lora_params lp = p->lora;
    if (!lp.seed) lp.seed = p->seed;
    lgpu_adamw_config ac = {.beta1 = p->beta1, .beta2 = p->beta2, .eps = p->adam_eps,
                            .weight_decay = p->weight_decay, .max_grad_norm = p->max_grad_norm};
    if ((st = lgpu_lora_create(model, &lp, &t->lora)) ||
        (st = lgpu_train_graph_create(t->lora, p->micro_batch, p->seq_len, p->vocab_chunk, &t->graph)) ||
        (st = lgpu_optim_create(t->lora, &ac, &t->optim))) {
        st = explain_oom(t, st);
        goto fail;
    }
    lgpu_exec_set_threads(lgpu_train_graph_exec(t->graph), p->threads);
    size_t rows = (size_t)p->grad_accum * p->micro_batch * p->seq_len;
    t->tokens = malloc(rows * sizeof *t->tokens);
    t->targets = malloc(rows * sizeof *t->targets);
    t->counted = calloc(p->grad_accum, sizeof *t->counted);
    if (!t->tokens || !t->targets || !t->counted) {
        st = lgpu_set_error(LGPU_ENOMEM, "training batches");
        goto fail;
    }
    t->t0 = lgpu_now_s();
    *out = t;
    return 0;
fail:
    lgpu_trainer_destroy(t);
    return st;
}

void lgpu_trainer_destroy(lgpu_trainer *t) {
    if (!t) return;
    lgpu_optim_destroy(t->optim);
    lgpu_train_graph_destroy(t->graph);
    lgpu_lora_destroy(t->lora);
    lgpu_batcher_destroy(t->train_b);
    lgpu_batcher_destroy(t->val_b);
    lgpu_dataset_destroy(t->train_ds);
    lgpu_dataset_destroy(t->val_ds);
    free(t->tokens);
    free(t->targets);
    free(t->counted);
    free(t->train_file);
    free(t->val_file);
    free(t->output_dir);
    free(t->base_model);
    free(t->prompt_template);
    free(t->prompt_template_no_input);
    free(t->chat_template);
    free(t);
}

lgpu_lora *lgpu_trainer_lora(lgpu_trainer *t) { return t ? t->lora : NULL; }
uint64_t lgpu_trainer_steps_done(const lgpu_trainer *t) { return t ? t->step : 0; }
uint64_t lgpu_trainer_total_steps(const lgpu_trainer *t) { return t ? t->total_steps : 0; }
void lgpu_trainer_data_info(const lgpu_trainer *t, lgpu_train_data_info *out) { *out = t->info; }
const lgpu_dataset *lgpu_trainer_dataset(const lgpu_trainer *t, bool validation) {
    return !t ? NULL : validation ? t->val_ds : t->train_ds;
}

static void fill_progress(lgpu_trainer *t, lgpu_train_progress *pr, int event) {
    double el = t->elapsed_before + (lgpu_now_s() - t->t0);
    pr->step = t->step;
    pr->total_steps = t->total_steps;
    pr->epoch = t->n_batches ? (double)t->micro / (double)t->n_batches : 0;
    pr->val_loss = t->val_loss;
    pr->elapsed_s = el;
    pr->eta_s = t->step ? el / (double)t->step * (double)(t->total_steps - t->step) : NAN;
    pr->tokens_seen = t->tokens_seen;
    lgpu_dev_memory(lgpu_model_dev(t->model), &pr->device_bytes, NULL);
    pr->event = event;
}

int lgpu_trainer_step(lgpu_trainer *t, lgpu_train_progress *out) {
    if (!t) return lgpu_set_error(LGPU_EINVAL, "lgpu_trainer_step: NULL trainer");
    const lgpu_train_params *p = &t->p;
    const size_t rows = (size_t)p->micro_batch * p->seq_len;
    double t_start = lgpu_now_s();
    uint64_t total = 0;
    int st;
    for (uint32_t k = 0; k < p->grad_accum; k++) {
        uint64_t mb = t->micro + k;
        if ((st = lgpu_batcher_get(t->train_b, mb / t->n_batches, mb % t->n_batches, t->tokens + k * rows,
                                   t->targets + k * rows, &t->counted[k])))
            return st;
        total += t->counted[k];
    }
    /* a step whose rows count no token still runs (zero gradient, as the
     * optimizer sees it), so the step count and the schedule stay aligned */
    float scale = total ? 1.0f / (float)total : 0.0f;
    double loss_sum = 0;
    if ((st = lgpu_train_graph_zero_grad(t->graph))) return st;
    for (uint32_t k = 0; k < p->grad_accum; k++) {
        double s;
        uint32_t c;
        /* LoRA dropout's masks: a function of (seed, step, micro-batch), so
         * a resumed run draws the ones the uninterrupted run would have */
        lgpu_train_mb_key key = {.seed = p->seed, .step = t->step, .micro = k};
        if ((st = lgpu_train_graph_run(t->graph, t->tokens + k * rows, t->targets + k * rows, true, scale, &key, &s,
                                       &c)))
            return explain_oom(t, st);
        loss_sum += s;
    }
    float lr = lgpu_lr_at(&t->sched, t->step);
    double norm;
    lgpu_buf *grads[1024];
    uint32_t L = lgpu_model_hparams(t->model)->n_layers;
    if (L > 1024) return lgpu_set_error(LGPU_EUNSUPPORTED, "training: %u layers", L);
    for (uint32_t l = 0; l < L; l++) grads[l] = lgpu_train_graph_grad(t->graph, l);
    if ((st = lgpu_optim_step(t->optim, lgpu_train_graph_exec(t->graph), grads, lr, &norm))) return st;
    t->step++;
    t->micro += p->grad_accum;
    t->tokens_seen += (uint64_t)p->grad_accum * rows;
    if (out) {
        memset(out, 0, sizeof *out);
        fill_progress(t, out, LGPU_TRAIN_STEP);
        out->loss = total ? loss_sum / (double)total : NAN;
        out->lr = lr;
        out->grad_norm = norm;
        out->tokens_per_s = (double)p->grad_accum * rows / (lgpu_now_s() - t_start);
    }
    return 0;
}

int lgpu_trainer_evaluate(lgpu_trainer *t, double *val_loss) {
    if (!t || !t->val_b) return lgpu_set_error(LGPU_EINVAL, "training: no validation data (val_file or val_split)");
    uint64_t n = lgpu_batcher_n_batches(t->val_b), counted = 0;
    double sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t c;
        double s;
        /* epoch 0 of the validation batcher: the same batches every time */
        int st = lgpu_batcher_get(t->val_b, 0, i, t->tokens, t->targets, &c);
        /* no backward: no dropout, as in model.eval() */
        if (!st) st = lgpu_train_graph_run(t->graph, t->tokens, t->targets, false, 0, NULL, &s, &c);
        if (st) return st;
        sum += s;
        counted += c;
    }
    t->val_loss = counted ? sum / (double)counted : NAN;
    if (val_loss) *val_loss = t->val_loss;
    return 0;
}

/* ---- metrics.jsonl: one JSON line per logged step and evaluation ---- */

static void metrics_path(const lgpu_trainer *t, char *path, size_t len) {
    snprintf(path, len, "%s/metrics.jsonl", t->output_dir);
}

/* A number, or null for NaN / infinity (a step that counted no token has no
 * loss), which JSON cannot hold. */
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static int metrics_line(lgpu_trainer *t, json_t *line) {
    char path[4200];
    metrics_path(t, path, sizeof path);
    if (!line) return lgpu_set_error(LGPU_ENOMEM, "%s", path);
    FILE *f = fopen(path, "a");
    if (!f) {
        json_decref(line);
        return lgpu_set_error(LGPU_EIO, "%s: %s", path, strerror(errno));
    }
    int st = json_dumpf(line, f, JSON_COMPACT) == 0 && fputc('\n', f) != EOF ? 0 : LGPU_EIO;
    if (fclose(f) != 0) st = LGPU_EIO;
    json_decref(line);
    return st ? lgpu_set_error(st, "%s: write failed", path) : 0;
}

/* On resume: keeps the lines of steps up to the checkpoint's, so the file
 * (and the loss chart drawn from it) has each step once. */
static int metrics_truncate(const lgpu_trainer *t) {
    char path[4200];
    metrics_path(t, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return 0; /* none yet */
    char *kept = NULL, line[4096];
    size_t n = 0, cap = 0;
    int st = 0;
    while (!st && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *s = j ? json_object_get(j, "step") : NULL;
        bool keep = json_is_integer(s) && (uint64_t)json_integer_value(s) <= t->step;
        json_decref(j);
        if (!keep) continue;
        size_t len = strlen(line);
        if (!(st = LGPU_GROW(kept, cap, n + len + 1, 4096, path))) {
            memcpy(kept + n, line, len);
            n += len;
        }
    }
    fclose(f);
    if (!st) st = lgpu_write_file_atomic(path, kept ? kept : "", n);
    free(kept);
    return st;
}

/* ---- checkpoints ---- */

/* The settings a resumed run must share for its steps to be the same. */
static json_t *run_identity(const lgpu_trainer *t) {
    const lgpu_train_params *p = &t->p;
    /* the data's fingerprint (tokens and masks) as text: JSON integers are signed */
    char fingerprint[24];
    snprintf(fingerprint, sizeof fingerprint, "%016llx", (unsigned long long)lgpu_dataset_fingerprint(t->train_ds));
    return json_pack("{s:s, s:s?, s:f, s:b, s:b, s:b, s:i, s:i, s:i, s:I, s:I, s:i, s:f, s:f, s:i, s:s, s:I, s:s}",
                     "train_file", p->train_file, "val_file", p->val_file, "val_split", (double)p->val_split,
                     "skip_invalid", p->skip_invalid, "train_on_prompt", p->train_on_prompt, "pack", p->pack,
                     "seq_len", (int)p->seq_len, "micro_batch", (int)p->micro_batch, "grad_accum",
                     (int)p->grad_accum, "seed", (json_int_t)p->seed, "train_examples", (json_int_t)t->info.n_train,
                     "lora_rank", (int)t->lora->rank, "lora_alpha", (double)t->lora->alpha, "lora_dropout",
                     (double)t->lora->dropout, "lora_targets", (int)t->lora->targets, "model",
                     lgpu_model_desc(t->model), "model_params", (json_int_t)lgpu_model_n_params(t->model),
                     "train_data", fingerprint);
}

int lgpu_trainer_save(lgpu_trainer *t, const char **dir) {
    if (!t) return lgpu_set_error(LGPU_EINVAL, "lgpu_trainer_save: NULL trainer");
    json_t *state = json_pack("{s:I, s:I, s:I, s:I, s:f, s:o}", "step", (json_int_t)t->step, "micro_batches",
                              (json_int_t)t->micro, "total_steps", (json_int_t)t->total_steps, "tokens_seen",
                              (json_int_t)t->tokens_seen, "elapsed_s",
                              t->elapsed_before + (lgpu_now_s() - t->t0), "run", run_identity(t));
    if (!state) return lgpu_set_error(LGPU_ENOMEM, "checkpoint state");
    if (!isnan(t->val_loss)) json_object_set_new(state, "val_loss", json_real(t->val_loss));
    int st = lgpu_checkpoint_write(t->output_dir, t->step, t->lora, t->optim, t->base_model, state, t->ckpt,
                                   sizeof t->ckpt);
    json_decref(state);
    if (!st && dir) *dir = t->ckpt;
    return st;
}

int lgpu_trainer_resume(lgpu_trainer *t, const char *path) {
    if (!t || !path) return lgpu_set_error(LGPU_EINVAL, "lgpu_trainer_resume: NULL argument");
    char dir[4200];
    json_t *state = NULL;
    int st = lgpu_checkpoint_find(path, dir, sizeof dir);
    if (!st) st = lgpu_checkpoint_read_state(dir, &state);
    if (st) return st;
    json_t *mine = run_identity(t), *theirs = json_object_get(state, "run");
    const char *key;
    json_t *v;
    json_object_foreach(mine, key, v) {
        json_t *w = theirs ? json_object_get(theirs, key) : NULL;
        if (!w || !json_equal(v, w)) {
            char *a = json_dumps(v, JSON_ENCODE_ANY), *b = w ? json_dumps(w, JSON_ENCODE_ANY) : NULL;
            st = lgpu_set_error(LGPU_EINVAL, "%s: cannot resume: the checkpoint's %s is %s, this run's is %s", dir, key,
                                b ? b : "(absent)", a ? a : "?");
            free(a);
            free(b);
            break;
        }
    }
    json_decref(mine);
    json_t *js = json_object_get(state, "step"), *jm = json_object_get(state, "micro_batches");
    if (!st && (!json_is_integer(js) || !json_is_integer(jm)))
        st = lgpu_set_error(LGPU_EFORMAT, "%s/trainer_state.json: step / micro_batches missing", dir);
    if (!st) st = lgpu_checkpoint_read_weights(dir, t->lora, t->optim);
    if (!st) {
        t->step = (uint64_t)json_integer_value(js);
        t->micro = (uint64_t)json_integer_value(jm);
        t->tokens_seen = (uint64_t)json_integer_value(json_object_get(state, "tokens_seen"));
        t->elapsed_before = json_number_value(json_object_get(state, "elapsed_s"));
        json_t *vl = json_object_get(state, "val_loss");
        t->val_loss = json_is_number(vl) ? json_number_value(vl) : NAN;
        lgpu_optim_set_steps(t->optim, t->step);
        t->t0 = lgpu_now_s();
        st = metrics_truncate(t);
        if (!st && t->step > t->total_steps)
            st = lgpu_set_error(LGPU_EINVAL, "%s: the checkpoint is at step %llu, past this run's %llu steps", dir,
                                (unsigned long long)t->step, (unsigned long long)t->total_steps);
    }
    json_decref(state);
    return st;
}

/* ---- the loop ---- */

int lgpu_trainer_run(lgpu_trainer *t, lgpu_train_callback cb, void *ud) {
    if (!t) return lgpu_set_error(LGPU_EINVAL, "lgpu_trainer_run: NULL trainer");
    const lgpu_train_params *p = &t->p;
    uint64_t log_every = p->log_every ? p->log_every : 1;
    int st = 0;
    bool stop = false;
    lgpu_train_progress pr;
    while (!st && !stop && t->step < t->total_steps) {
        if ((st = lgpu_trainer_step(t, &pr))) break;
        bool last = t->step == t->total_steps;
        if (t->step % log_every == 0 || last) {
            st = metrics_line(t, json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "step", (json_int_t)t->step, "epoch",
                                           num(pr.epoch), "loss", num(pr.loss), "lr", num(pr.lr), "grad_norm",
                                           num(pr.grad_norm), "tokens_per_s", num(pr.tokens_per_s)));
            if (!st && cb && cb(ud, &pr)) stop = true;
        } else if (p->progress_every_step && cb) {
            pr.event = LGPU_TRAIN_TICK;
            if (cb(ud, &pr)) stop = true;
        }
        if (!st && t->val_b && ((p->eval_every && t->step % p->eval_every == 0) || last)) {
            double vl;
            if (!(st = lgpu_trainer_evaluate(t, &vl)))
                st = metrics_line(t, json_pack("{s:I, s:o}", "step", (json_int_t)t->step, "val_loss", num(vl)));
            fill_progress(t, &pr, LGPU_TRAIN_EVAL);
            if (!st && cb && cb(ud, &pr)) stop = true;
        }
        if (!st && ((p->save_every && t->step % p->save_every == 0) || last || stop)) {
            const char *dir;
            st = lgpu_trainer_save(t, &dir);
            fill_progress(t, &pr, LGPU_TRAIN_SAVE);
            pr.checkpoint = dir;
            if (!st && cb && cb(ud, &pr)) stop = true;
        }
    }
    if (st || t->step < t->total_steps) return st;
    /* the final adapter, in both formats */
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter", t->output_dir);
    if (!(st = lgpu_lora_save(t->lora, path, t->base_model))) {
        snprintf(path, sizeof path, "%s/adapter.gguf", t->output_dir);
        st = lgpu_lora_save(t->lora, path, t->base_model);
    }
    return st;
}
