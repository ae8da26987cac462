/* lgpu-train settings: defaults < config file < flags (see opts.h). */
#include "opts.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lgpu/lgpu.h"

typedef enum { K_STR, K_U32, K_U64, K_INT, K_FLOAT, K_BOOL, K_TARGETS, K_SCHEDULE, K_FORMAT } opt_kind;

enum {
    F_CLI = 1,     /* command line only: not a config key, not saved */
    F_NOSAVE = 2,  /* a config key, but not written to train_config.json */
    F_MIN_OPEN = 4 /* value > min (else >= min) */
};

typedef struct {
    const char *group;   /* starts a group of --help */
    const char *key;     /* config key; the flag is --key with '_' -> '-' */
    const char *aliases; /* space-separated: "-x" short flags; other long names (flag and key) */
    opt_kind kind;
    size_t off; /* into train_opts */
    double min, max; /* numbers: min <= v (< min with F_MIN_OPEN) and v < max */
    int flags;
    const char *metavar;
    const char *help;
    const char *dflt; /* default as --help shows it; NULL: none */
} opt_def;

#define OFF(f) offsetof(train_opts, f)
#define BIG 1e300
static const opt_def OPTS[] = {
    {"model and device", "model", "-m", K_STR, OFF(model), 0, 0, 0, "MODEL",
     "base model: GGUF file, HF directory, llama2.c .bin or ORG/NAME[:FILE] on the Hub", "the embedded " LGPU_MODEL_EMBEDDED_NAME},
    {NULL, "tokenizer", NULL, K_STR, OFF(tokenizer), 0, 0, 0, "FILE", "tokenizer file (tokenizer.bin / tokenizer.json / GGUF)", NULL},
    {NULL, "device", NULL, K_STR, OFF(device), 0, 0, 0, "DEV", "device: Vulkan index, name substring or cpu (the C path)", "$LGPU_DEVICE, else automatic"},
    {NULL, "threads", NULL, K_INT, OFF(p.threads), 0, 4096, 0, "N", "C path threads (0: all cores)", "$LGPU_THREADS or all cores"},

    {"data", "data", "train_file dataset", K_STR, OFF(p.train_file), 0, 0, 0, "FILE.jsonl",
     "training data, JSONL: alpaca, prompt/completion, chat messages or text (required)", NULL},
    {NULL, "val_file", "validation_file", K_STR, OFF(p.val_file), 0, 0, 0, "FILE.jsonl", "held-out data for the validation loss", "none"},
    {NULL, "val_split", "validation_split", K_FLOAT, OFF(p.val_split), 0, 1, 0, "F",
     "without --val-file: hold out this fraction of --data", "0, none"},
    {NULL, "format", "dataset_format", K_FORMAT, OFF(p.format), 0, 0, 0, "NAME",
     "data format: auto, alpaca, prompt_completion, chat, text", "auto: from the first line"},
    {NULL, "prompt_template", NULL, K_STR, OFF(p.prompt_template), 0, 0, 0, "TEXT",
     "alpaca prompt for examples with an input, with {instruction} and {input}", "Stanford Alpaca's"},
    {NULL, "prompt_template_no_input", NULL, K_STR, OFF(p.prompt_template_no_input), 0, 0, 0, "TEXT",
     "alpaca prompt for examples without an input, with {instruction}", "Stanford Alpaca's"},
    {NULL, "chat_template", NULL, K_STR, OFF(p.chat_template), 0, 0, 0, "NAME",
     "chat data: chatml, llama2, llama3, zephyr", "the model's, else chatml"},
    {NULL, "seq_len", "max_seq_length max_length cutoff_len", K_U32, OFF(p.seq_len), 2, 1 << 20, 0, "T",
     "tokens per row; longer examples are cut (without --pack)", NULL},
    {NULL, "pack", "packing", K_BOOL, OFF(p.pack), 0, 0, 0, NULL, "pack examples into full rows instead of one per row", "off"},
    {NULL, "train_on_prompt", "train_on_inputs", K_BOOL, OFF(p.train_on_prompt), 0, 0, 0, NULL,
     "count the prompt tokens in the loss too, not only the response's", "off"},
    {NULL, "skip_invalid", NULL, K_BOOL, OFF(p.skip_invalid), 0, 0, 0, NULL,
     "skip (and count) bad lines instead of refusing to start", "off"},

    {"LoRA adapter", "rank", "r lora_r", K_U32, OFF(p.lora.rank), 1, 4097, 0, "R", "LoRA rank r", NULL},
    {NULL, "alpha", "lora_alpha", K_FLOAT, OFF(p.lora.alpha), 0, BIG, F_MIN_OPEN, "A", "lora_alpha: the update is scaled by alpha / r", NULL},
    {NULL, "dropout", "lora_dropout", K_FLOAT, OFF(p.lora.dropout), 0, 1, 0, "P",
     "lora_dropout: drop this fraction of each adapter input in training, as PEFT", NULL},
    {NULL, "targets", "target_modules", K_TARGETS, OFF(p.lora.targets), 0, 0, 0, "LIST",
     "projections to adapt: any of q,k,v,o,gate,up,down (or q_proj, ...), or all", NULL},
    {NULL, "adapter", "init_adapter", K_STR, OFF(p.lora.path), 0, 0, 0, "PATH",
     "train this adapter further (PEFT folder or GGUF LoRA; its r, alpha and targets)", "a new adapter"},
    {NULL, "lora_seed", NULL, K_U64, OFF(p.lora.seed), 0, BIG, 0, "N", "seed of the new adapter's A matrices (0: --seed)", "--seed"},

    {"optimizer (AdamW)", "lr", "learning_rate", K_FLOAT, OFF(p.lr), 0, BIG, F_MIN_OPEN, "LR", "peak learning rate", NULL},
    {NULL, "schedule", "lr_scheduler_type lr_scheduler", K_SCHEDULE, OFF(p.schedule), 0, 0, 0, "NAME",
     "learning-rate schedule after warmup: constant, linear or cosine (decay to 0)", NULL},
    {NULL, "warmup_steps", NULL, K_U64, OFF(p.warmup_steps), 0, BIG, 0, "N", "linear warmup steps (0: --warmup-ratio)", NULL},
    {NULL, "warmup_ratio", NULL, K_FLOAT, OFF(p.warmup_ratio), 0, 1, 0, "F", "warmup as a fraction of the run's steps", NULL},
    {NULL, "weight_decay", NULL, K_FLOAT, OFF(p.weight_decay), 0, BIG, 0, "WD", "decoupled weight decay", NULL},
    {NULL, "adam_beta1", "beta1", K_FLOAT, OFF(p.beta1), 0, 1, 0, "B", "AdamW beta1", NULL},
    {NULL, "adam_beta2", "beta2", K_FLOAT, OFF(p.beta2), 0, 1, 0, "B", "AdamW beta2", NULL},
    {NULL, "adam_epsilon", "adam_eps", K_FLOAT, OFF(p.adam_eps), 0, BIG, F_MIN_OPEN, "EPS", "AdamW epsilon", NULL},
    {NULL, "max_grad_norm", NULL, K_FLOAT, OFF(p.max_grad_norm), 0, BIG, 0, "N", "clip the global gradient norm to this (0: off)", NULL},
    {NULL, "seed", NULL, K_U64, OFF(p.seed), 0, BIG, 0, "N", "seed of the data order, the split and the adapter", NULL},

    {"length and batch", "epochs", "num_train_epochs", K_U32, OFF(p.epochs), 1, 1e9, 0, "N", "passes over the training data", NULL},
    {NULL, "max_steps", NULL, K_U64, OFF(p.max_steps), 0, BIG, 0, "N", "optimizer steps; overrides --epochs when > 0", "0"},
    {NULL, "micro_batch", "batch_size per_device_train_batch_size", K_U32, OFF(p.micro_batch), 1, 1 << 20, 0, "B",
     "rows per forward/backward", NULL},
    {NULL, "grad_accum", "gradient_accumulation_steps", K_U32, OFF(p.grad_accum), 1, 1 << 20, 0, "N",
     "micro-batches per optimizer step (the batch is B x N rows)", NULL},
    {NULL, "vocab_chunk", NULL, K_U32, OFF(p.vocab_chunk), 0, 1 << 30, 0, "N", "vocabulary rows per chunk of the loss (0: 4096)", "4096"},

    {"output", "output_dir", "-o output", K_STR, OFF(p.output_dir), 0, 0, 0, "DIR",
     "checkpoints, metrics.jsonl, the adapter and the loss chart (required)", NULL},
    {NULL, "overwrite_output_dir", NULL, K_BOOL, OFF(overwrite), 0, 0, F_NOSAVE, NULL,
     "start over in an output folder that has a run (removes its checkpoints and metrics)", "off: refuse"},
    {NULL, "base_model_name", "base_model_name_or_path", K_STR, OFF(p.base_model), 0, 0, 0, "NAME",
     "base_model_name_or_path written into the adapter", "the -m argument"},
    {NULL, "log_every", "logging_steps", K_U64, OFF(p.log_every), 1, BIG, 0, "N",
     "a metrics.jsonl line (and a log line when stderr is not a terminal) every N steps", NULL},
    {NULL, "eval_every", "eval_steps", K_U64, OFF(p.eval_every), 0, BIG, 0, "N",
     "validation loss every N steps (0: at the start and the end only)", NULL},
    {NULL, "save_every", "save_steps", K_U64, OFF(p.save_every), 0, BIG, 0, "N", "checkpoint every N steps (0: at the end only)", NULL},
    {NULL, "resume", "resume_from_checkpoint", K_STR, OFF(resume), 0, 0, F_NOSAVE, "DIR",
     "continue from a checkpoint-N folder or an output folder's newest one", NULL},
    {NULL, "no_chart", NULL, K_BOOL, OFF(no_chart), 0, 0, F_NOSAVE, NULL, "draw no loss chart (loss.png, loss.svg)", "off"},
    {NULL, "config", NULL, K_STR, OFF(config), 0, 0, F_CLI, "FILE.json",
     "settings as a JSON object with these keys (snake_case or as the flags); flags override it", NULL},

    {"benchmark", "bench", NULL, K_BOOL, OFF(bench), 0, 0, F_CLI, NULL,
     "time training steps instead (no -o needed; --data optional: synthetic text)", NULL},
    {NULL, "bench_steps", NULL, K_U32, OFF(bench_steps), 1, 1e9, F_CLI, "N", "timed steps", NULL},
    {NULL, "bench_warmup", NULL, K_U32, OFF(bench_warmup), 0, 1e9, F_CLI, "N", "untimed steps first", NULL},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static void *field(train_opts *o, const opt_def *d) { return (char *)o + d->off; }
static const void *cfield(const train_opts *o, const opt_def *d) { return (const char *)o + d->off; }

/* "micro-batch" == "micro_batch" */
static bool same_name(const char *a, size_t alen, const char *k, size_t klen) {
    if (alen != klen) return false;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i] == '-' ? '_' : a[i], y = k[i] == '-' ? '_' : k[i];
        if (x != y) return false;
    }
    return true;
}

/* The option a long name (no dashes, as a key or after "--") names. */
static const opt_def *find_long(const char *name, size_t len, bool config) {
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_def *d = &OPTS[i];
        if (config && (d->flags & F_CLI)) continue;
        if (same_name(name, len, d->key, strlen(d->key))) return d;
        for (const char *a = d->aliases; a && *a;) {
            size_t n = strcspn(a, " ");
            if (a[0] != '-' && same_name(name, len, a, n)) return d;
            a += n;
            a += strspn(a, " ");
        }
    }
    return NULL;
}

static const opt_def *find_short(const char *arg) {
    for (size_t i = 0; i < N_OPTS; i++)
        for (const char *a = OPTS[i].aliases; a && *a;) {
            size_t n = strcspn(a, " ");
            if (a[0] == '-' && strlen(arg) == n && !strncmp(a, arg, n)) return &OPTS[i];
            a += n;
            a += strspn(a, " ");
        }
    return NULL;
}

/* "--micro-batch" for messages */
static const char *flag_name(const opt_def *d) {
    static char buf[8][64];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 64, "--%s", d->key);
    for (char *p = b + 2; *p; p++)
        if (*p == '_') *p = '-';
    return b;
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lgpu-train: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see lgpu-train --help)\n");
    va_end(ap);
}

static int check_range(const opt_def *d, double v, const char *where, const char *text) {
    bool lo = (d->flags & F_MIN_OPEN) ? v > d->min : v >= d->min;
    if (lo && v < d->max && !isnan(v)) return 0;
    if (d->max >= BIG) usage_error("bad value '%s' for %s: must be %s %g", text, where, (d->flags & F_MIN_OPEN) ? ">" : ">=", d->min);
    else if (d->kind == K_FLOAT)
        usage_error("bad value '%s' for %s: must be in %s%g, %g)", text, where, (d->flags & F_MIN_OPEN) ? "(" : "[", d->min, d->max);
    else usage_error("bad value '%s' for %s: must be in %g..%.0f", text, where, d->min, d->max - 1);
    return 2;
}

static int set_targets(train_opts *o, const opt_def *d, const char *list, const char *where) {
    uint32_t mask = 0;
    int st = lgpu_lora_targets_parse(list, &mask);
    if (st || !mask) {
        usage_error("bad value '%s' for %s: %s", list, where,
                    st ? lgpu_last_error() : "no target (any of q,k,v,o,gate,up,down, or all)");
        return 2;
    }
    *(uint32_t *)field(o, d) = mask;
    return 0;
}

/* A value given as text (a flag, or a string in the config). */
static int set_text(train_opts *o, const opt_def *d, const char *v, const char *where) {
    char *end;
    errno = 0;
    switch (d->kind) {
    case K_STR:
        if (!*v) {
            usage_error("%s: empty value", where);
            return 2;
        }
        *(const char **)field(o, d) = v;
        return 0;
    case K_U32:
    case K_U64:
    case K_INT: {
        while (*v == ' ') v++;
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || errno || v[0] == '-' || v[0] == '+') {
            usage_error("bad value '%s' for %s: not a whole number", v, where);
            return 2;
        }
        if (check_range(d, (double)x, where, v)) return 2;
        if (d->kind == K_U32) *(uint32_t *)field(o, d) = (uint32_t)x;
        else if (d->kind == K_INT) *(int *)field(o, d) = (int)x;
        else *(uint64_t *)field(o, d) = x;
        return 0;
    }
    case K_FLOAT: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) {
            usage_error("bad value '%s' for %s: not a number", v, where);
            return 2;
        }
        if (check_range(d, x, where, v)) return 2;
        *(float *)field(o, d) = (float)x;
        return 0;
    }
    case K_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) *(bool *)field(o, d) = true;
        else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) *(bool *)field(o, d) = false;
        else {
            usage_error("bad value '%s' for %s: true or false", v, where);
            return 2;
        }
        return 0;
    case K_TARGETS: return set_targets(o, d, v, where);
    case K_SCHEDULE: {
        int k = lgpu_lr_kind_parse(v);
        if (k < 0) {
            usage_error("bad value '%s' for %s: constant, linear or cosine", v, where);
            return 2;
        }
        *(lgpu_lr_kind *)field(o, d) = (lgpu_lr_kind)k;
        return 0;
    }
    case K_FORMAT: {
        int f = lgpu_dataset_format_from_name(v);
        if (f < 0) {
            usage_error("bad value '%s' for %s: auto, alpaca, prompt_completion, chat or text", v, where);
            return 2;
        }
        *(lgpu_dataset_format *)field(o, d) = (lgpu_dataset_format)f;
        return 0;
    }
    }
    return 2;
}

/* A value from the config file. */
static int set_json(train_opts *o, const opt_def *d, json_t *v, const char *where) {
    if (json_is_null(v) && (d->kind == K_STR)) {
        *(const char **)field(o, d) = NULL;
        return 0;
    }
    if (json_is_string(v)) {
        if (d->kind == K_STR || d->kind == K_TARGETS || d->kind == K_SCHEDULE || d->kind == K_FORMAT)
            return set_text(o, d, json_string_value(v), where);
    } else if (d->kind == K_TARGETS && json_is_array(v) && json_array_size(v) > 0) {
        /* PEFT's target_modules: ["q_proj", "v_proj"] */
        char list[512] = "";
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e) || strlen(list) + strlen(json_string_value(e)) + 2 > sizeof list) {
                usage_error("%s: a list of target names", where);
                return 2;
            }
            if (i) strcat(list, ",");
            strcat(list, json_string_value(e));
        }
        return set_targets(o, d, list, where);
    } else if (d->kind == K_BOOL && json_is_boolean(v)) {
        *(bool *)field(o, d) = json_is_true(v);
        return 0;
    } else if (d->kind == K_FLOAT && json_is_number(v)) {
        char text[64];
        snprintf(text, sizeof text, "%.9g", json_number_value(v));
        return set_text(o, d, text, where);
    } else if ((d->kind == K_U32 || d->kind == K_U64 || d->kind == K_INT) && json_is_integer(v)) {
        char text[64];
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
        return set_text(o, d, text, where);
    }
    static const char *want[] = {"a string", "a whole number", "a whole number", "a whole number", "a number",
                                 "true or false", "a string or a list of strings", "a string", "a string"};
    usage_error("%s must be %s", where, want[d->kind]);
    return 2;
}

static int load_config(train_opts *o, const char *path) {
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        struct stat sb;
        if (stat(path, &sb) != 0) usage_error("config %s: %s", path, strerror(errno));
        else usage_error("config %s:%d:%d: %s", path, je.line, je.column, je.text);
        return 2;
    }
    o->json = root;
    if (!json_is_object(root)) {
        usage_error("config %s: the top level must be a JSON object", path);
        return 2;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        char where[320];
        snprintf(where, sizeof where, "config %s: key \"%s\"", path, key);
        const opt_def *d = find_long(key, strlen(key), true);
        if (!d) {
            usage_error("config %s: unknown key \"%s\"", path, key);
            return 2;
        }
        int st = set_json(o, d, v, where);
        if (st) return st;
    }
    return 0;
}

static void defaults(train_opts *o) {
    memset(o, 0, sizeof *o);
    o->p = lgpu_train_params_default();
    o->p.log_every = 10;
    o->bench_steps = 10;
    o->bench_warmup = 2;
}

/* ---- --help ---- */

static void default_text(const opt_def *d, char *buf, size_t len) {
    train_opts def;
    defaults(&def);
    buf[0] = 0;
    if (d->dflt) {
        snprintf(buf, len, "%s", d->dflt);
        return;
    }
    const void *f = cfield(&def, d);
    switch (d->kind) {
    case K_U32: snprintf(buf, len, "%u", *(const uint32_t *)f); break;
    case K_U64: snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)f); break;
    case K_INT: snprintf(buf, len, "%d", *(const int *)f); break;
    case K_FLOAT: snprintf(buf, len, "%g", *(const float *)f); break;
    case K_SCHEDULE: snprintf(buf, len, "%s", lgpu_lr_kind_name(*(const lgpu_lr_kind *)f)); break;
    case K_TARGETS: {
        uint32_t m = *(const uint32_t *)f;
        if (m == LGPU_LORA_ALL_TARGETS) snprintf(buf, len, "all");
        break;
    }
    default: break;
    }
}

static void print_help(FILE *f) {
    fprintf(f, "usage: lgpu-train [-m MODEL] --data FILE.jsonl [--val-file FILE | --val-split F] -o OUTDIR [options]\n"
               "       lgpu-train --resume OUTDIR [options]       continue a run (its settings from OUTDIR/train_config.json)\n"
               "       lgpu-train --bench [-m MODEL] [options]    training speed: tokens/s and peak device memory\n\n"
               "LoRA fine-tuning of a LLaMA-family model on Vulkan or the C path. Writes OUTDIR/adapter (PEFT),\n"
               "OUTDIR/adapter.gguf (llama.cpp), checkpoint-N/, metrics.jsonl, loss.png and loss.svg.\n"
               "Every flag is also a --config key (\"micro_batch\" or \"micro-batch\"), and so are the aliases\n"
               "(\"also ...\": transformers / PEFT spellings).\n"
               "Booleans: --pack turns on, --no-pack off (or --pack=false).\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_def *d = &OPTS[i];
        if (d->group) fprintf(f, "\n%s:\n", d->group);
        char names[96] = "", aliases[160] = "", dflt[96];
        size_t n = 0;
        for (const char *a = d->aliases; a && *a;) { /* short flags first */
            size_t k = strcspn(a, " ");
            if (a[0] == '-') n += (size_t)snprintf(names + n, sizeof names - n, "%.*s, ", (int)k, a);
            a += k;
            a += strspn(a, " ");
        }
        snprintf(names + n, sizeof names - n, "%s%s%s", flag_name(d), d->metavar ? " " : "", d->metavar ? d->metavar : "");
        n = 0;
        for (const char *a = d->aliases; a && *a;) { /* long aliases as flags */
            size_t k = strcspn(a, " ");
            if (a[0] != '-') {
                n += (size_t)snprintf(aliases + n, sizeof aliases - n, "%s--", n ? ", " : "");
                for (size_t j = 0; j < k && n + 1 < sizeof aliases; j++) aliases[n++] = a[j] == '_' ? '-' : a[j];
                aliases[n] = 0;
            }
            a += k;
            a += strspn(a, " ");
        }
        default_text(d, dflt, sizeof dflt);
        char text[512];
        snprintf(text, sizeof text, "%s%s%s%s%s%s%s", d->help, dflt[0] || aliases[0] ? " (" : "",
                 dflt[0] ? "default: " : "", dflt, dflt[0] && aliases[0] ? "; " : "", aliases[0] ? "also " : "",
                 aliases);
        if (dflt[0] || aliases[0]) strncat(text, ")", sizeof text - strlen(text) - 1);
        /* the text wrapped at 100 columns, in a column of its own */
        enum { COL = 32, WIDTH = 100 };
        if (strlen(names) + 2 > COL - 1) fprintf(f, "  %s\n%*s", names, COL, "");
        else fprintf(f, "  %-*s", COL - 2, names);
        const char *t = text;
        while (*t) {
            size_t len = strlen(t);
            if (len > WIDTH - COL) {
                len = WIDTH - COL;
                while (len > 0 && t[len] != ' ') len--;
                if (!len) len = strcspn(t, " ");
            }
            fprintf(f, "%.*s\n", (int)len, t);
            t += len;
            while (*t == ' ') t++;
            if (*t) fprintf(f, "%*s", COL, "");
        }
    }
    fprintf(f, "\nExit status: 0 done, 1 error, 2 usage, 130 interrupted (Ctrl-C: a checkpoint is saved first;\n"
               "--resume OUTDIR continues). Environment: LGPU_DEVICE, LGPU_THREADS, LGPU_LOG. See docs/TRAINING.md.\n");
}

/* ---- argv ---- */

/* The option argv[i] names, and (for "--name=value") where its value is;
 * *negated for "--no-name" of a boolean. NULL if none. */
static const opt_def *match_arg(const char *arg, const char **eqval, bool *negated) {
    *eqval = NULL;
    *negated = false;
    if (arg[0] != '-') return NULL;
    if (arg[1] != '-') return find_short(arg);
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (eq) *eqval = eq + 1;
    const opt_def *d = find_long(name, len, false);
    if (!d && len > 3 && (!strncmp(name, "no-", 3) || !strncmp(name, "no_", 3))) {
        d = find_long(name + 3, len - 3, false);
        if (d && d->kind != K_BOOL) d = NULL;
        if (d) *negated = true;
    }
    return d;
}

int train_opts_parse(train_opts *o, int argc, char **argv) {
    defaults(o);
    /* first the config file (and --help) wherever they are */
    const char *config = NULL, *resume = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eqv;
        bool neg;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(stdout);
            return 1;
        }
        if (!strcmp(a, "--version")) {
            printf("lgpu-train %s\n", LGPU_VERSION_STRING);
            return 1;
        }
        const opt_def *d = match_arg(a, &eqv, &neg);
        if (!d || d->kind == K_BOOL) continue;
        const char *v = eqv ? eqv : i + 1 < argc ? argv[++i] : NULL;
        if (d->off == OFF(config)) config = v;
        if (d->off == OFF(resume)) resume = v;
    }
    int st;
    if (config) {
        if ((st = load_config(o, config))) return st;
    } else if (resume) {
        /* a resumed run's settings, unless a config says otherwise */
        char *dir = train_resume_output_dir(resume);
        char path[4200];
        snprintf(path, sizeof path, "%s/train_config.json", dir ? dir : resume);
        free(dir);
        struct stat sb;
        if (stat(path, &sb) == 0) {
            if ((st = load_config(o, path))) return st;
            o->config_from_resume = true;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eqv;
        bool neg;
        const opt_def *d = match_arg(a, &eqv, &neg);
        if (!d) {
            if (a[0] == '-' && a[1]) usage_error("unknown option '%s'", a);
            else usage_error("unexpected argument '%s'", a);
            return 2;
        }
        char where[96];
        snprintf(where, sizeof where, "%s", neg || eqv || a[1] != '-' ? flag_name(d) : a);
        if (d->kind == K_BOOL) {
            if (neg && eqv) {
                usage_error("%s takes no value", a);
                return 2;
            }
            if (eqv) {
                if ((st = set_text(o, d, eqv, where))) return st;
            } else *(bool *)field(o, d) = !neg;
            continue;
        }
        const char *v = eqv;
        if (!v) {
            if (i + 1 >= argc) {
                usage_error("%s needs a value", a);
                return 2;
            }
            v = argv[++i];
        }
        if ((st = set_text(o, d, v, where))) return st;
    }
    if (o->config_from_resume) o->config = NULL;
    else o->config = config;
    return 0;
}

void train_opts_free(train_opts *o) {
    if (o && o->json) json_decref(o->json);
    if (o) o->json = NULL;
}

/* ---- train_config.json ---- */

/* The shortest decimal that gives the float back. */
static json_t *float_json(float v) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return json_real(strtod(buf, NULL));
}

char *train_opts_to_json(const train_opts *o) {
    json_t *root = json_object();
    if (!root) return NULL;
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_def *d = &OPTS[i];
        if (d->flags & (F_CLI | F_NOSAVE)) continue;
        const void *f = cfield(o, d);
        json_t *v = NULL;
        switch (d->kind) {
        case K_STR: v = *(const char *const *)f ? json_string(*(const char *const *)f) : NULL; break;
        case K_U32: v = json_integer(*(const uint32_t *)f); break;
        case K_U64: v = json_integer((json_int_t) * (const uint64_t *)f); break;
        case K_INT: v = json_integer(*(const int *)f); break;
        case K_FLOAT: v = float_json(*(const float *)f); break;
        case K_BOOL: v = json_boolean(*(const bool *)f); break;
        case K_SCHEDULE: v = json_string(lgpu_lr_kind_name(*(const lgpu_lr_kind *)f)); break;
        case K_FORMAT: v = json_string(lgpu_dataset_format_name(*(const lgpu_dataset_format *)f)); break;
        case K_TARGETS: {
            uint32_t m = *(const uint32_t *)f;
            char list[128] = "";
            if (!m || m == LGPU_LORA_ALL_TARGETS) snprintf(list, sizeof list, "all");
            for (int t = 0; m && m != LGPU_LORA_ALL_TARGETS && t < LGPU_LORA_N_TARGETS; t++)
                if (m & (1u << t)) {
                    if (list[0]) strcat(list, ",");
                    strcat(list, lgpu_lora_target_name((lgpu_lora_target)t));
                }
            v = json_string(list);
            break;
        }
        }
        if (v) json_object_set_new(root, d->key, v);
    }
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    return s;
}

char *train_resume_output_dir(const char *resume) {
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/trainer_state.json", resume);
    char *dir = strdup(resume);
    if (!dir) return NULL;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;
    if (stat(path, &sb) == 0) { /* a checkpoint folder: its parent */
        char *slash = strrchr(dir, '/');
        if (!slash) strcpy(dir, ".");
        else if (slash == dir) dir[1] = 0;
        else *slash = 0;
    }
    return dir;
}
