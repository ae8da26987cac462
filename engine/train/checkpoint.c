/* Training checkpoints (train/checkpoint.h). */
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "format/safetensors.h"
#include "format/safetensors_write.h"

/* Removes a folder this module wrote (plain files only, one level). */
static void remove_folder(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

static int write_optim(const char *path, const lgpu_lora *lora, const lgpu_optim *o) {
    lgpu_st_writer *w;
    int st = lgpu_st_writer_create(&w);
    if (st) return st;
    char steps[32];
    snprintf(steps, sizeof steps, "%llu", (unsigned long long)lgpu_optim_steps(o));
    st = lgpu_st_writer_meta(w, "step", steps);
    for (uint32_t l = 0; l < lora->n_layers && !st; l++) {
        size_t b = lora->layer[l].bytes;
        void *m = malloc(b), *v = malloc(b);
        if (!m || !v) st = lgpu_set_error(LGPU_ENOMEM, "%s", path);
        if (!st) st = lgpu_optim_get(o, l, m, v);
        char name[64];
        int64_t n = (int64_t)(b / 4);
        snprintf(name, sizeof name, "layers.%u.exp_avg", l);
        if (!st) st = lgpu_st_writer_add(w, name, "F32", 1, &n, m, b);
        snprintf(name, sizeof name, "layers.%u.exp_avg_sq", l);
        if (!st) st = lgpu_st_writer_add(w, name, "F32", 1, &n, v, b);
        free(m);
        free(v);
    }
    if (!st) st = lgpu_st_writer_write(w, path);
    lgpu_st_writer_destroy(w);
    return st;
}

int lgpu_checkpoint_write(const char *output_dir, uint64_t step, const lgpu_lora *lora, const lgpu_optim *optim,
                          const char *base_model, json_t *state, char *dir, size_t dir_len) {
    char tmp[4096], path[4200], old[4200];
    snprintf(dir, dir_len, "%s/checkpoint-%llu", output_dir, (unsigned long long)step);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    remove_folder(tmp); /* a save a crash interrupted */
    if (mkdir(tmp, 0777) != 0) return lgpu_set_error(LGPU_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    int st = lgpu_lora_save(lora, tmp, base_model);
    /* tests prove the crash safety by dying here, half-way through a save */
    const char *crash = getenv("LGPU_TRAIN_TEST_CRASH_IN_SAVE");
    if (!st && crash && strtoull(crash, NULL, 10) == step) raise(SIGKILL);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    if (!st) st = write_optim(path, lora, optim);
    if (!st) {
        json_object_set_new(state, "version", json_integer(LGPU_CKPT_VERSION));
        char *text = json_dumps(state, JSON_INDENT(2) | JSON_SORT_KEYS);
        snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
        st = text ? lgpu_write_file_atomic(path, text, strlen(text)) : lgpu_set_error(LGPU_ENOMEM, "%s", path);
        free(text);
    }
    if (!st) st = lgpu_fsync_parent_dir(path); /* the files of tmp */
    if (st) {
        remove_folder(tmp);
        return st;
    }
    /* a checkpoint of this step already there (a resumed run saving again) */
    snprintf(old, sizeof old, "%s.old", dir);
    bool replaced = rename(dir, old) == 0;
    if (rename(tmp, dir) != 0) {
        st = lgpu_set_error(LGPU_EIO, "%s: rename to %s failed: %s", tmp, dir, strerror(errno));
        if (replaced) rename(old, dir);
        return st;
    }
    if (replaced) remove_folder(old);
    return lgpu_fsync_parent_dir(dir);
}

/* A folder name checkpoint-<digits>, nothing after. */
static bool checkpoint_step(const char *name, uint64_t *step) {
    if (strncmp(name, "checkpoint-", 11) || !name[11]) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(name + 11, &end, 10);
    if (*end || errno) return false;
    *step = v;
    return true;
}

int lgpu_checkpoint_find(const char *path, char *dir, size_t dir_len) {
    char p[4200];
    snprintf(p, sizeof p, "%s/trainer_state.json", path);
    if (access(p, R_OK) == 0) {
        snprintf(dir, dir_len, "%s", path);
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) return lgpu_set_error(LGPU_ENOTFOUND, "%s: %s", path, strerror(errno));
    uint64_t best = 0;
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t s;
        if (!checkpoint_step(e->d_name, &s)) continue;
        snprintf(p, sizeof p, "%s/%s/trainer_state.json", path, e->d_name);
        if (access(p, R_OK) == 0 && (!found || s > best)) best = s, found = true;
    }
    closedir(d);
    if (!found)
        return lgpu_set_error(LGPU_ENOTFOUND, "%s: no complete checkpoint-<step> folder (and not a checkpoint itself)",
                              path);
    snprintf(dir, dir_len, "%s/checkpoint-%llu", path, (unsigned long long)best);
    return 0;
}

int lgpu_checkpoint_read_state(const char *dir, json_t **state) {
    char p[4200];
    snprintf(p, sizeof p, "%s/trainer_state.json", dir);
    json_error_t err;
    json_t *s = json_load_file(p, 0, &err);
    if (!s) return lgpu_set_error(LGPU_EFORMAT, "%s: line %d: %s", p, err.line, err.text);
    json_t *v = json_object_get(s, "version");
    if (!json_is_integer(v) || json_integer_value(v) != LGPU_CKPT_VERSION) {
        json_decref(s);
        return lgpu_set_error(LGPU_EFORMAT, "%s: checkpoint version %lld, this lgpu reads version %d (resume it with "
                              "the lgpu that wrote it, or start a new run)", p,
                              json_is_integer(v) ? (long long)json_integer_value(v) : -1LL, LGPU_CKPT_VERSION);
    }
    *state = s;
    return 0;
}

static int read_optim(const char *path, lgpu_lora *lora, lgpu_optim *o) {
    lgpu_safetensors *s;
    int st = lgpu_safetensors_create(path, &s);
    if (st) return st;
    for (uint32_t l = 0; l < lora->n_layers && !st; l++) {
        char nm[64], nv[64];
        snprintf(nm, sizeof nm, "layers.%u.exp_avg", l);
        snprintf(nv, sizeof nv, "layers.%u.exp_avg_sq", l);
        const lgpu_st_tensor *m = lgpu_safetensors_find(s, nm), *v = lgpu_safetensors_find(s, nv);
        size_t b = lora->layer[l].bytes;
        if (!m || !v || m->nbytes != b || v->nbytes != b || m->type != LGPU_TYPE_F32 || v->type != LGPU_TYPE_F32) {
            st = lgpu_set_error(LGPU_EFORMAT, "%s: %s / %s missing or not %zu bytes of F32 (another adapter shape?)",
                                path, nm, nv, b);
            break;
        }
        /* the mapping may be unaligned for floats: copy */
        void *cm = malloc(b), *cv = malloc(b);
        if (!cm || !cv) st = lgpu_set_error(LGPU_ENOMEM, "%s", path);
        if (!st) {
            memcpy(cm, m->data, b);
            memcpy(cv, v->data, b);
            st = lgpu_optim_set(o, l, cm, cv);
        }
        free(cm);
        free(cv);
    }
    lgpu_safetensors_destroy(s);
    return st;
}

int lgpu_checkpoint_read_weights(const char *dir, lgpu_lora *lora, lgpu_optim *optim) {
    lgpu_lora *saved;
    lgpu_lora_params lp = {.path = dir};
    int st = lgpu_lora_create(lora->model, &lp, &saved);
    if (st) return st;
    if (saved->rank != lora->rank || saved->targets != lora->targets) {
        st = lgpu_set_error(LGPU_EFORMAT, "%s: adapter of rank %u / targets 0x%x, this run has rank %u / targets 0x%x",
                            dir, saved->rank, saved->targets, lora->rank, lora->targets);
    }
    float *buf = NULL;
    for (uint32_t l = 0; l < lora->n_layers && !st; l++)
        for (int t = 0; t < LGPU_LORA_N_TARGETS && !st; t++)
            for (int b = 0; b < 2 && lora->layer[l].mat[t].on && !st; b++) {
                const lgpu_lora_mat *mt = &lora->layer[l].mat[t];
                float *nb = realloc(buf, (size_t)lora->rank * (b ? mt->out : mt->in) * sizeof *buf);
                if (!nb) {
                    st = lgpu_set_error(LGPU_ENOMEM, "%s", dir);
                    break;
                }
                buf = nb;
                if (!(st = lgpu_lora_get(saved, l, (lgpu_lora_target)t, b, buf)))
                    st = lgpu_lora_set(lora, l, (lgpu_lora_target)t, b, buf);
            }
    free(buf);
    lgpu_lora_destroy(saved);
    char p[4200];
    snprintf(p, sizeof p, "%s/optimizer.safetensors", dir);
    if (!st) st = read_optim(p, lora, optim);
    return st;
}
