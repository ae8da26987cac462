/* Test sets (lgpu/testset.h): each line checked and kept as its JSON object,
 * whose strings the examples borrow. Bad lines are collected, not returned
 * at once, so that one run over a broken file says how much of it is broken
 * (the same messages as training data, engine/train/dataset.c). */
#include "lgpu/testset.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "train/jsonl.h"

typedef struct ts_item {
    lgpu_test_example ex;
    json_t *obj;
    char *id;
    lgpu_chat_msg *msgs;
} ts_item;

struct lgpu_testset {
    ts_item *items;
    size_t n, cap;
};

#define ERROR_LINES 5
#define MSG_BYTES 512

typedef struct load_state {
    const lgpu_testset_params *p;
    lgpu_testset *ts;
    size_t n_bad;
    char first_bad[ERROR_LINES][MSG_BYTES];
    /* ids seen: open addressing over the items' index + 1 */
    size_t *ids;
    size_t ids_cap;
} load_state;

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    return h;
}

/* The item with this id, or NULL; adds item k under it when absent. */
static int id_seen(load_state *st, const char *id, size_t k, const ts_item **dup) {
    *dup = NULL;
    if ((st->ts->n + 1) * 2 > st->ids_cap) { /* grow and rehash */
        size_t cap = st->ids_cap ? st->ids_cap * 2 : 64;
        size_t *t = calloc(cap, sizeof *t);
        if (!t) return lgpu_set_error(LGPU_ENOMEM, "test set: out of memory");
        for (size_t i = 0; i < st->ids_cap; i++) {
            if (!st->ids[i]) continue;
            size_t h = hash_str(st->ts->items[st->ids[i] - 1].id) & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = st->ids[i];
        }
        free(st->ids);
        st->ids = t;
        st->ids_cap = cap;
    }
    size_t h = hash_str(id) & (st->ids_cap - 1);
    for (; st->ids[h]; h = (h + 1) & (st->ids_cap - 1))
        if (!strcmp(st->ts->items[st->ids[h] - 1].id, id)) {
            *dup = &st->ts->items[st->ids[h] - 1];
            return 0;
        }
    st->ids[h] = k + 1;
    return 0;
}

static void bad_line(load_state *st, uint64_t line, const char *id_label, const char *why) {
    if (st->n_bad < ERROR_LINES) {
        char *m = st->first_bad[st->n_bad];
        if (id_label) snprintf(m, MSG_BYTES, "%s:%" PRIu64 " (id %s): %s", st->p->path, line, id_label, why);
        else snprintf(m, MSG_BYTES, "%s:%" PRIu64 ": %s", st->p->path, line, why);
    }
    st->n_bad++;
}

/* The detail of the creation error: the first bad line whole, the count,
 * the next ones shortened to share the room left (lgpu_last_error holds 1 KiB). */
static int fail_bad_lines(const load_state *st) {
    char detail[1024];
    size_t cap = sizeof detail, len = (size_t)snprintf(detail, cap, "%s", st->first_bad[0]);
    size_t shown = st->n_bad < ERROR_LINES ? st->n_bad : ERROR_LINES;
    if (st->n_bad == 1) snprintf(detail + len, cap - len, "\n  (the only bad line in %s)", st->p->path);
    else
        len += (size_t)snprintf(detail + len, cap - len, "\n  and %zu more bad line%s in %s%s", st->n_bad - 1,
                                st->n_bad == 2 ? "" : "s", st->p->path, shown < st->n_bad ? "; the next ones:" : ":");
    for (size_t i = 1; i < shown && len + 8 < cap; i++) {
        size_t room = (cap - len) / (shown - i) - 4, n = strlen(st->first_bad[i]);
        if (n <= room) len += (size_t)snprintf(detail + len, cap - len, "\n  %s", st->first_bad[i]);
        else len += (size_t)snprintf(detail + len, cap - len, "\n  %.*s...", (int)(room - 3), st->first_bad[i]);
    }
    return lgpu_set_error(LGPU_EFORMAT, "%s", detail);
}

static const char *const ROLES[] = {"system", "user", "assistant"};

static int get_messages(const json_t *v, ts_item *it, char *why, size_t cap) {
    if (!json_is_array(v)) {
        snprintf(why, cap, "\"messages\" must be an array, not %s", lgpu_json_type_name(v));
        return 1;
    }
    size_t n = json_array_size(v);
    if (!n) {
        snprintf(why, cap, "\"messages\" is empty");
        return 1;
    }
    if (!(it->msgs = calloc(n, sizeof *it->msgs))) return lgpu_set_error(LGPU_ENOMEM, "test set: out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(v, i), *role = json_object_get(m, "role"),
                     *content = json_object_get(m, "content");
        if (!json_is_object(m)) {
            snprintf(why, cap, "messages[%zu] must be an object with \"role\" and \"content\", not %s", i,
                     lgpu_json_type_name(m));
            return 1;
        }
        if (!json_is_string(role)) {
            snprintf(why, cap, "messages[%zu].role must be a string, not %s", i,
                     role ? lgpu_json_type_name(role) : "missing");
            return 1;
        }
        for (size_t k = 0; k < sizeof ROLES / sizeof *ROLES; k++)
            if (!strcmp(json_string_value(role), ROLES[k])) it->msgs[i].role = ROLES[k];
        if (!it->msgs[i].role) {
            snprintf(why, cap, "messages[%zu].role is \"%.40s\": it must be system, user or assistant", i,
                     json_string_value(role));
            return 1;
        }
        if (!json_is_string(content)) {
            snprintf(why, cap, "messages[%zu].content must be a string, not %s", i,
                     content ? lgpu_json_type_name(content) : "missing");
            return 1;
        }
        it->msgs[i].content = json_string_value(content);
    }
    if (strcmp(it->msgs[n - 1].role, "user")) {
        snprintf(why, cap, "the last message is from the %s: the model answers a user message", it->msgs[n - 1].role);
        return 1;
    }
    it->ex.messages = it->msgs;
    it->ex.n_messages = n;
    return 0;
}

static int string_field(const json_t *o, const char *key, const char **out, char *why, size_t cap) {
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v) return 0;
    if (!json_is_string(v)) {
        snprintf(why, cap, "\"%s\" must be a string, not %s", key, lgpu_json_type_name(v));
        return 1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Fills it from obj: 0, 1 with the problem in why, or a status. */
static int get_fields(const load_state *st, const json_t *o, ts_item *it, char *why, size_t cap) {
    const json_t *msgs = json_object_get(o, "messages"), *metric = json_object_get(o, "metric");
    int rc;
    if ((rc = string_field(o, "prompt", &it->ex.prompt, why, cap)) ||
        (rc = string_field(o, "expected", &it->ex.expected, why, cap)))
        return rc;
    if (st->p->perplexity && (rc = string_field(o, "text", &it->ex.text, why, cap))) return rc;
    int sources = (it->ex.prompt != NULL) + (msgs != NULL) + (it->ex.text != NULL);
    if (sources != 1) {
        const char *fields = st->p->perplexity ? "\"text\", \"prompt\" or \"messages\"" : "\"prompt\" or \"messages\"";
        if (sources) snprintf(why, cap, "it has more than one of %s: which is the input?", fields);
        else snprintf(why, cap, "it has none of %s", fields);
        return 1;
    }
    if (msgs && (rc = get_messages(msgs, it, why, cap))) return rc;
    it->ex.metric = st->p->metric;
    if (metric) {
        int m = json_is_string(metric) ? lgpu_metric_from_name(json_string_value(metric)) : -1;
        if (m < 0) {
            if (json_is_string(metric))
                snprintf(why, cap, "unknown \"metric\" \"%.40s\" (known: %s)", json_string_value(metric),
                         lgpu_metric_names());
            else snprintf(why, cap, "\"metric\" must be a string, not %s", lgpu_json_type_name(metric));
            return 1;
        }
        it->ex.metric = (lgpu_metric)m;
    }
    if (it->ex.text) return 0;
    if (st->p->perplexity) return 0; /* the text to score is there; expected may add to it */
    if (!it->ex.expected && it->ex.metric != LGPU_METRIC_JSON_VALID) {
        snprintf(why, cap, "missing \"expected\" (only json_valid does without)");
        return 1;
    }
    if (it->ex.expected && lgpu_metric_check(it->ex.metric, it->ex.expected)) {
        snprintf(why, cap, "\"expected\": %s", lgpu_last_error());
        return 1;
    }
    return 0;
}

static void item_free(ts_item *it) {
    json_decref(it->obj);
    free(it->id);
    free(it->msgs);
    memset(it, 0, sizeof *it);
}

/* "id" as text: 0, 1 with the problem, or LGPU_ENOMEM */
static int get_id(const json_t *o, char **id, char *why, size_t cap) {
    const json_t *v = json_object_get(o, "id");
    *id = NULL;
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) *id = strdup(json_string_value(v));
    else if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *id = strdup(buf);
    } else {
        snprintf(why, cap, "\"id\" must be a string or an integer, not %s", lgpu_json_type_name(v));
        return 1;
    }
    return *id ? 0 : lgpu_set_error(LGPU_ENOMEM, "test set: out of memory");
}

static int load_line(load_state *st, uint64_t line, const char *s, size_t n) {
    lgpu_testset *ts = st->ts;
    int rc = LGPU_GROW(ts->items, ts->cap, ts->n + 1, 64, "test set");
    if (rc) return rc;
    ts_item *it = &ts->items[ts->n];
    memset(it, 0, sizeof *it);
    it->ex.line = line;
    char why[400], label[64];
    rc = lgpu_jsonl_parse(s, n, &it->obj, why, sizeof why);
    if (rc < 0) return rc;
    if (it->obj) {
        char idwhy[120];
        int r = get_id(it->obj, &it->id, idwhy, sizeof idwhy);
        if (r < 0) rc = r;
        else if (r && !rc) rc = 1, memcpy(why, idwhy, sizeof idwhy);
    }
    const json_t *idv = it->obj ? json_object_get(it->obj, "id") : NULL;
    if (it->id) snprintf(label, sizeof label, json_is_string(idv) ? "\"%.40s\"" : "%.40s", it->id);
    if (rc == 0) rc = get_fields(st, it->obj, it, why, sizeof why);
    if (rc == 0 && it->id) {
        const ts_item *dup;
        if ((rc = id_seen(st, it->id, ts->n, &dup)) < 0) goto out;
        if (dup) {
            snprintf(why, sizeof why, "the id is used on line %" PRIu64 " already", dup->ex.line);
            rc = 1;
        }
    }
    if (rc == 1) {
        bad_line(st, line, it->id ? label : NULL, why);
        rc = 0;
        item_free(it);
        return 0;
    }
out:
    if (rc) {
        item_free(it);
        return rc;
    }
    it->ex.id = it->id;
    ts->n++;
    return 0;
}

int lgpu_testset_create(const lgpu_testset_params *p, lgpu_testset **out) {
    if (!out) return lgpu_set_error(LGPU_EINVAL, "lgpu_testset_create: NULL out");
    *out = NULL;
    if (!p || !p->path) return lgpu_set_error(LGPU_EINVAL, "lgpu_testset_create: NULL params or path");
    if (!lgpu_metric_name(p->metric)) return lgpu_set_error(LGPU_EINVAL, "test set: metric %d unknown", (int)p->metric);
    lgpu_testset *ts = calloc(1, sizeof *ts);
    if (!ts) return lgpu_set_error(LGPU_ENOMEM, "test set: out of memory");
    load_state st = {.p = p, .ts = ts};
    lgpu_jsonl_reader rd;
    int rc = lgpu_jsonl_open(&rd, p->path);
    if (rc) goto fail;
    const char *line;
    size_t n;
    uint64_t n_lines = 0;
    while ((rc = lgpu_jsonl_next(&rd, &line, &n)) == 1) {
        n_lines++;
        if (lgpu_jsonl_blank(line, n)) continue;
        if ((rc = load_line(&st, rd.line_no, line, n))) break;
    }
    lgpu_jsonl_close(&rd);
    if (rc) goto fail;
    if (st.n_bad) {
        rc = fail_bad_lines(&st);
        goto fail;
    }
    if (!ts->n) {
        rc = lgpu_set_error(LGPU_EFORMAT, "%s: no examples (%" PRIu64 " line%s, all blank)", p->path, n_lines,
                            n_lines == 1 ? "" : "s");
        goto fail;
    }
    free(st.ids);
    *out = ts;
    return 0;
fail:
    free(st.ids);
    lgpu_testset_destroy(ts);
    return rc;
}

void lgpu_testset_destroy(lgpu_testset *ts) {
    if (!ts) return;
    for (size_t i = 0; i < ts->n; i++) item_free(&ts->items[i]);
    free(ts->items);
    free(ts);
}

size_t lgpu_testset_size(const lgpu_testset *ts) { return ts ? ts->n : 0; }

const lgpu_test_example *lgpu_testset_get(const lgpu_testset *ts, size_t i) {
    return ts && i < ts->n ? &ts->items[i].ex : NULL;
}

size_t lgpu_testset_count_metric(const lgpu_testset *ts, lgpu_metric m) {
    size_t k = 0;
    for (size_t i = 0; ts && i < ts->n; i++) k += ts->items[i].ex.metric == m;
    return k;
}

static char *concat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

int lgpu_test_render_prompt(const lgpu_test_example *ex, const lgpu_tokenizer *tok, const char *chat_template,
                            char **out, bool *parse_special) {
    if (!ex || !out || !parse_special) return lgpu_set_error(LGPU_EINVAL, "lgpu_test_render_prompt: NULL argument");
    *out = NULL;
    *parse_special = ex->messages != NULL;
    if (ex->messages) return lgpu_chat_apply_tok(tok, chat_template, ex->messages, ex->n_messages, true, out);
    const char *s = ex->prompt ? ex->prompt : ex->text;
    if (!s) return lgpu_set_error(LGPU_EINVAL, "lgpu_test_render_prompt: the example has no prompt");
    return (*out = strdup(s)) ? 0 : lgpu_set_error(LGPU_ENOMEM, "test set: out of memory");
}

int lgpu_test_render_text(const lgpu_test_example *ex, const lgpu_tokenizer *tok, const char *chat_template,
                          char **out, bool *parse_special) {
    if (!ex || !out || !parse_special) return lgpu_set_error(LGPU_EINVAL, "lgpu_test_render_text: NULL argument");
    *out = NULL;
    *parse_special = ex->messages != NULL;
    if (ex->text) return (*out = strdup(ex->text)) ? 0 : lgpu_set_error(LGPU_ENOMEM, "test set: out of memory");
    const char *expected = ex->expected ? ex->expected : "";
    if (ex->prompt) return (*out = concat(ex->prompt, expected)) ? 0 : lgpu_set_error(LGPU_ENOMEM, "test set: out of memory");
    if (!ex->messages) return lgpu_set_error(LGPU_EINVAL, "lgpu_test_render_text: the example has no input");
    if (!ex->expected) return lgpu_chat_apply_tok(tok, chat_template, ex->messages, ex->n_messages, false, out);
    lgpu_chat_msg *all = malloc((ex->n_messages + 1) * sizeof *all);
    if (!all) return lgpu_set_error(LGPU_ENOMEM, "test set: out of memory");
    memcpy(all, ex->messages, ex->n_messages * sizeof *all);
    all[ex->n_messages] = (lgpu_chat_msg){"assistant", expected};
    int rc = lgpu_chat_apply_tok(tok, chat_template, all, ex->n_messages + 1, false, out);
    free(all);
    return rc;
}
