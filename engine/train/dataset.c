/* The dataset (lgpu/dataset.h): reads the file line by line, checks each
 * line (fields.c), renders it (render.c), tokenizes it with its loss mask
 * (tokens.c) and keeps every example's tokens in one array. Bad lines are
 * collected rather than returned at once, so that one run over a broken
 * file says how much of it is broken. */
#include "train/dataset.h"

#include "core/grow.h"
#include "train/fields.h"
#include "train/jsonl.h"
#include "train/render.h"
#include "train/tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ds_example {
    size_t off;    /* first token in ds->tokens */
    uint32_t n;    /* tokens */
    uint64_t line; /* 1-based line in the file */
    char *id;      /* "id" as text, or NULL */
} ds_example;

struct lgpu_dataset {
    lgpu_dataset_format format;
    int32_t *tokens;
    uint8_t *mask;
    size_t n_tokens, cap_tokens, cap_mask;
    ds_example *ex;
    size_t n_ex, cap_ex;
    size_t n_skipped, n_truncated, n_dropped;
    uint64_t n_counted;
    uint32_t max_len;
    char *reasons[LGPU_DATASET_MAX_REASONS];
    size_t n_reasons;
    int32_t pad_id;
    uint64_t fingerprint;
};

/* How many bad lines the creation error lists. */
#define ERROR_LINES 5
/* Bytes kept of one line's message for that list. */
#define MSG_BYTES 512

static const char *const FORMAT_NAMES[] = {"auto", "alpaca", "prompt_completion", "chat", "text"};

const char *lgpu_dataset_format_name(lgpu_dataset_format f) {
    return (unsigned)f < sizeof FORMAT_NAMES / sizeof *FORMAT_NAMES ? FORMAT_NAMES[f] : NULL;
}

int lgpu_dataset_format_from_name(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof FORMAT_NAMES / sizeof *FORMAT_NAMES; i++)
        if (!strcmp(name, FORMAT_NAMES[i])) return (int)i;
    if (!strcmp(name, "prompt-completion") || !strcmp(name, "pc")) return LGPU_DATASET_PROMPT_COMPLETION;
    return -1;
}

lgpu_dataset_params lgpu_dataset_params_default(void) { return (lgpu_dataset_params){0}; }

/* What creation keeps while it reads: the bad lines seen so far. */
typedef struct load_state {
    const lgpu_dataset_params *p;
    lgpu_dataset *ds;
    size_t n_bad;
    char first_bad[ERROR_LINES][MSG_BYTES];
    lgpu_tokens ids; /* scratch: one example */
    uint8_t *part;
    size_t part_cap;
} load_state;

/* "file:line (id "x"): " in front of a problem; id_label is the id as the
 * message shows it ("\"a-1\"" for a string, "17" for a number) or NULL */
static void line_message(char *out, size_t cap, const char *path, uint64_t line, const char *id_label,
                         const char *what) {
    if (id_label) snprintf(out, cap, "%s:%llu (id %s): %s", path, (unsigned long long)line, id_label, what);
    else snprintf(out, cap, "%s:%llu: %s", path, (unsigned long long)line, what);
}

static int keep_reason(lgpu_dataset *ds, const char *msg) {
    if (ds->n_reasons == LGPU_DATASET_MAX_REASONS) return 0;
    if (!(ds->reasons[ds->n_reasons] = strdup(msg))) return lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
    ds->n_reasons++;
    return 0;
}

static int bad_line(load_state *st, uint64_t line, const char *id_label, const char *why) {
    char msg[512];
    line_message(msg, sizeof msg, st->p->path, line, id_label, why);
    if (st->p->skip_invalid) {
        st->ds->n_skipped++;
        return keep_reason(st->ds, msg);
    }
    if (st->n_bad < ERROR_LINES) {
        memcpy(st->first_bad[st->n_bad], msg, sizeof msg);
    }
    st->n_bad++;
    return 0;
}

/* Cuts the scratch example to max_tokens, or says it must be dropped: true
 * when no response token would be left where it can be a target (the first
 * token of a row never is). */
static bool fit(load_state *st, size_t *n) {
    uint32_t max = st->p->max_tokens;
    if (!max || *n <= max) return true;
    for (size_t j = 1; j < max; j++)
        if (st->part[j] == LGPU_DS_RESPONSE) {
            *n = max;
            st->ds->n_truncated++;
            return true;
        }
    return false;
}

static int add_example(load_state *st, uint64_t line, char **id, const char *id_label) {
    lgpu_dataset *ds = st->ds;
    size_t n = st->ids.n;
    if (!fit(st, &n)) {
        char why[160], msg[512];
        size_t prompt = 0;
        while (prompt < st->ids.n && st->part[prompt] != LGPU_DS_RESPONSE) prompt++;
        snprintf(why, sizeof why, "dropped: %zu tokens, %zu before the response, and max_tokens is %u", st->ids.n,
                 prompt, st->p->max_tokens);
        line_message(msg, sizeof msg, st->p->path, line, id_label, why);
        ds->n_dropped++;
        return keep_reason(ds, msg);
    }
    int rc = LGPU_GROW(ds->tokens, ds->cap_tokens, ds->n_tokens + n, 4096, "dataset tokens");
    if (!rc) rc = LGPU_GROW(ds->mask, ds->cap_mask, ds->n_tokens + n, 4096, "dataset masks");
    if (!rc) rc = LGPU_GROW(ds->ex, ds->cap_ex, ds->n_ex + 1, 256, "dataset examples");
    if (rc) return rc;
    memcpy(ds->tokens + ds->n_tokens, st->ids.ids, n * sizeof *ds->tokens);
    for (size_t j = 0; j < n; j++) {
        uint8_t part = st->part[j];
        uint8_t m = part == LGPU_DS_RESPONSE || (st->p->train_on_prompt && part == LGPU_DS_PROMPT);
        ds->mask[ds->n_tokens + j] = m;
        ds->n_counted += m;
    }
    ds->ex[ds->n_ex++] = (ds_example){.off = ds->n_tokens, .n = (uint32_t)n, .line = line, .id = *id};
    *id = NULL;
    ds->n_tokens += n;
    if (n > ds->max_len) ds->max_len = (uint32_t)n;
    return 0;
}

/* One non-blank line: a bad line is counted (returns 0), an example kept. */
static int load_line(load_state *st, const lgpu_tokenizer *tok, const lgpu_ds_renderer *r, char *decided_by,
                     size_t decided_cap, uint64_t line, const char *s, size_t n) {
    json_t *obj;
    char why[400];
    int rc = lgpu_jsonl_parse(s, n, &obj, why, sizeof why);
    if (rc < 0) return rc;
    bool id_is_string = false;
    char *id = obj ? lgpu_ds_id_text(obj, &id_is_string) : NULL;
    if (obj && json_object_get(obj, "id") && !json_is_null(json_object_get(obj, "id")) && !id) {
        json_decref(obj);
        return lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
    }
    char label[64];
    if (id) snprintf(label, sizeof label, id_is_string ? "\"%.40s\"" : "%.40s", id);
    if (rc == 0 && st->ds->format == LGPU_DATASET_AUTO) {
        st->ds->format = lgpu_ds_detect(obj);
        snprintf(decided_by, decided_cap, "line %llu", (unsigned long long)line);
    }
    lgpu_ds_fields f = {0};
    lgpu_ds_rendered text = {0};
    if (rc == 0) rc = lgpu_ds_fields_get(obj, st->ds->format, decided_by, &f, why, sizeof why);
    /* once creation is bound to fail, lines are only checked, not tokenized */
    bool keep = !st->n_bad;
    if (rc == 0) rc = lgpu_ds_render(r, &f, &text, why, sizeof why);
    if (rc == 0 && keep) {
        st->ids.n = 0;
        rc = lgpu_ds_tokenize(tok, &text, &st->ids, &st->part, &st->part_cap);
        if (rc) { /* the example's name makes an internal failure findable */
            char msg[600], detail[400];
            snprintf(detail, sizeof detail, "%s", lgpu_last_error());
            line_message(msg, sizeof msg, st->p->path, line, id ? label : NULL, detail);
            rc = lgpu_set_error(rc, "%s", msg);
        }
    }
    if (rc == 1) rc = bad_line(st, line, id ? label : NULL, why);
    else if (rc == 0 && keep) rc = add_example(st, line, &id, id ? label : NULL);
    lgpu_ds_rendered_free(&text);
    lgpu_ds_fields_free(&f);
    json_decref(obj);
    free(id);
    return rc;
}

/* The error detail (1 KiB, see lgpu_last_error): the first bad line whole,
 * the count, then the next ones shortened to share what room is left. */
static int fail_bad_lines(const load_state *st) {
    char detail[1024];
    size_t cap = sizeof detail, len = (size_t)snprintf(detail, cap, "%s", st->first_bad[0]);
    const char *path = st->p->path;
    size_t shown = st->n_bad < ERROR_LINES ? st->n_bad : ERROR_LINES;
    if (st->n_bad == 1)
        snprintf(detail + len, cap - len, "\n  (the only bad line in %s; skip_invalid, lgpu-train --skip-invalid, "
                 "skips and counts bad lines)", path);
    else
        len += (size_t)snprintf(detail + len, cap - len,
                                "\n  and %zu more bad line%s in %s (skip_invalid, lgpu-train --skip-invalid, skips and "
                                "counts them)%s",
                                st->n_bad - 1, st->n_bad == 2 ? "" : "s", path,
                                shown < st->n_bad ? "; the next ones:" : ":");
    for (size_t i = 1; i < shown && len + 8 < cap; i++) {
        size_t room = (cap - len) / (shown - i) - 4, n = strlen(st->first_bad[i]);
        if (n <= room) len += (size_t)snprintf(detail + len, cap - len, "\n  %s", st->first_bad[i]);
        else len += (size_t)snprintf(detail + len, cap - len, "\n  %.*s...", (int)(room - 3), st->first_bad[i]);
    }
    return lgpu_set_error(LGPU_EFORMAT, "%s", detail);
}

/* FNV-1a over the examples' lengths, tokens and mask bits */
static uint64_t fingerprint(const lgpu_dataset *ds) {
    uint64_t h = 0xCBF29CE484222325ull;
#define MIX(v)                                             \
    do {                                                   \
        uint64_t v_ = (uint64_t)(v);                       \
        for (int b_ = 0; b_ < 8; b_++, v_ >>= 8)           \
            h = (h ^ (v_ & 0xFF)) * 0x100000001B3ull;      \
    } while (0)
    for (size_t i = 0; i < ds->n_ex; i++) {
        MIX(ds->ex[i].n);
        for (size_t j = ds->ex[i].off; j < ds->ex[i].off + ds->ex[i].n; j++)
            MIX((uint64_t)(uint32_t)ds->tokens[j] << 1 | ds->mask[j]);
    }
#undef MIX
    return h;
}

static int check_params(const lgpu_tokenizer *tok, const lgpu_dataset_params *p, lgpu_dataset **out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_dataset_create: NULL out");
    *out = NULL;
    if (!tok || !p || !p->path) return lgpu_set_error(LGPU_EINVAL, "lgpu_dataset_create: NULL tokenizer, params or path");
    if (!lgpu_dataset_format_name(p->format))
        return lgpu_set_error(LGPU_EINVAL, "dataset: format %d unknown", (int)p->format);
    if (p->max_tokens == 1)
        return lgpu_set_error(LGPU_EINVAL, "dataset: max_tokens 1 leaves no token to predict (0: no limit)");
    return 0;
}

int lgpu_dataset_create(const lgpu_tokenizer *tok, const lgpu_dataset_params *p, lgpu_dataset **out) {
    int rc = check_params(tok, p, out);
    if (rc) return rc;
    lgpu_ds_renderer r;
    if ((rc = lgpu_ds_renderer_init(&r, tok, p))) return rc;
    lgpu_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return lgpu_set_error(LGPU_ENOMEM, "dataset: out of memory");
    ds->format = p->format;
    int32_t pad = lgpu_tokenizer_pad(tok), eos = lgpu_tokenizer_eos(tok);
    ds->pad_id = pad >= 0 ? pad : eos >= 0 ? eos : 0;
    load_state st = {.p = p, .ds = ds};
    char decided_by[64] = "the format parameter";
    lgpu_jsonl_reader rd;
    if ((rc = lgpu_jsonl_open(&rd, p->path))) goto fail;
    const char *line;
    size_t n;
    uint64_t n_lines = 0;
    while ((rc = lgpu_jsonl_next(&rd, &line, &n)) == 1) {
        n_lines++;
        if (lgpu_jsonl_blank(line, n)) continue;
        if ((rc = load_line(&st, tok, &r, decided_by, sizeof decided_by, rd.line_no, line, n))) break;
    }
    lgpu_jsonl_close(&rd);
    if (rc) goto fail;
    if (st.n_bad) {
        rc = fail_bad_lines(&st);
        goto fail;
    }
    if (!ds->n_ex) {
        if (ds->n_skipped || ds->n_dropped)
            rc = lgpu_set_error(LGPU_EFORMAT, "%s: no examples left: %zu bad line%s skipped, %zu dropped as too long%s%s",
                                p->path, ds->n_skipped, ds->n_skipped == 1 ? "" : "s", ds->n_dropped,
                                ds->n_reasons ? "; the first: " : "", ds->n_reasons ? ds->reasons[0] : "");
        else rc = lgpu_set_error(LGPU_EFORMAT, "%s: no examples (%llu line%s, none with an example)", p->path,
                                 (unsigned long long)n_lines, n_lines == 1 ? "" : "s");
        goto fail;
    }
    ds->fingerprint = fingerprint(ds);
    lgpu_tokens_destroy(&st.ids);
    free(st.part);
    *out = ds;
    return 0;
fail:
    lgpu_tokens_destroy(&st.ids);
    free(st.part);
    lgpu_dataset_destroy(ds);
    return rc;
}

void lgpu_dataset_destroy(lgpu_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n_ex; i++) free(ds->ex[i].id);
    for (size_t i = 0; i < ds->n_reasons; i++) free(ds->reasons[i]);
    free(ds->ex);
    free(ds->tokens);
    free(ds->mask);
    free(ds);
}

lgpu_dataset_format lgpu_dataset_format_of(const lgpu_dataset *ds) { return ds ? ds->format : LGPU_DATASET_AUTO; }
size_t lgpu_dataset_size(const lgpu_dataset *ds) { return ds ? ds->n_ex : 0; }

int lgpu_dataset_example(const lgpu_dataset *ds, size_t i, const int32_t **tokens, const uint8_t **mask,
                         uint32_t *n, const char **id) {
    if (!ds) return lgpu_set_error(LGPU_EINVAL, "lgpu_dataset_example: NULL dataset");
    if (i >= ds->n_ex) return lgpu_set_error(LGPU_ERANGE, "dataset: example %zu of %zu", i, ds->n_ex);
    const ds_example *e = &ds->ex[i];
    if (tokens) *tokens = ds->tokens + e->off;
    if (mask) *mask = ds->mask + e->off;
    if (n) *n = e->n;
    if (id) *id = e->id;
    return 0;
}

uint64_t lgpu_dataset_example_line(const lgpu_dataset *ds, size_t i) {
    return ds && i < ds->n_ex ? ds->ex[i].line : 0;
}

size_t lgpu_dataset_n_skipped(const lgpu_dataset *ds) { return ds ? ds->n_skipped : 0; }
size_t lgpu_dataset_n_truncated(const lgpu_dataset *ds) { return ds ? ds->n_truncated : 0; }
size_t lgpu_dataset_n_dropped(const lgpu_dataset *ds) { return ds ? ds->n_dropped : 0; }

const char *lgpu_dataset_skip_reason(const lgpu_dataset *ds, size_t k) {
    return ds && k < ds->n_reasons ? ds->reasons[k] : NULL;
}

uint64_t lgpu_dataset_n_tokens(const lgpu_dataset *ds) { return ds ? ds->n_tokens : 0; }
uint64_t lgpu_dataset_n_counted(const lgpu_dataset *ds) { return ds ? ds->n_counted : 0; }
uint32_t lgpu_dataset_max_example_tokens(const lgpu_dataset *ds) { return ds ? ds->max_len : 0; }
uint64_t lgpu_dataset_fingerprint(const lgpu_dataset *ds) { return ds ? ds->fingerprint : 0; }
int32_t lgpu_dataset_pad_id(const lgpu_dataset *ds) { return ds ? ds->pad_id : 0; }
