/* Model ids: the base and its LoRA adapters (see models.h). */
#include "models.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lgpu/lora.h"

int srv_models_load(srv_server *srv) {
    const srv_config *c = &srv->cfg;
    srv->n_loras = 0;
    for (int i = 0; i < c->n_lora; i++) {
        char *path = NULL;
        float scale = 1.0f;
        int st = lgpu_lora_spec_parse(c->lora_spec[i], &path, &scale);
        if (!st) st = lgpu_lora_create(srv->model, &(lgpu_lora_params){.path = path}, &srv->loras[i]);
        free(path);
        if (st) {
            char why[512];
            snprintf(why, sizeof why, "%s", lgpu_last_error());
            return lgpu_set_error(st, "adapter '%s' (%s): %s", c->lora_name[i], c->lora_spec[i], why);
        }
        srv->lora_scales[i] = scale;
        srv->n_loras = i + 1;
        /* copy it into the context now: a shape or room problem fails the
         * start, not the first request */
        int seq;
        if ((st = lgpu_seq_create(srv->ctx, &seq))) return st;
        st = lgpu_seq_set_adapters(srv->ctx, seq, (const lgpu_lora *const *)&srv->loras[i], &scale, 1);
        lgpu_seq_destroy(srv->ctx, seq);
        if (st) {
            char why[512];
            snprintf(why, sizeof why, "%s", lgpu_last_error());
            return lgpu_set_error(st, "adapter '%s': %s", c->lora_name[i], why);
        }
    }
    return 0;
}

void srv_models_free(srv_server *srv) {
    for (int i = 0; i < srv->n_loras; i++) lgpu_lora_destroy(srv->loras[i]);
    srv->n_loras = 0;
}

int srv_model_find(const srv_server *srv, const char *id) {
    if (!strcmp(id, srv->cfg.model_name) || !strcmp(id, srv->cfg.model)) return -1;
    for (int i = 0; i < srv->cfg.n_lora; i++)
        if (!strcmp(id, srv->cfg.lora_name[i])) return i;
    return -2;
}

int srv_model_pick(const srv_server *srv, const json_t *body, int *adapter, const char **id, srv_err *err) {
    const json_t *m = json_object_get(body, "model");
    *adapter = -1;
    *id = srv->cfg.model_name;
    if (!m || json_is_null(m)) return 0;
    if (!json_is_string(m))
        return srv_err_invalid(err, "model", "'model' must be a string, not %s", srv_json_type_name(m));
    const char *name = json_string_value(m);
    int i = srv_model_find(srv, name);
    if (i == -2) {
        char ids[512];
        size_t n = (size_t)snprintf(ids, sizeof ids, "'%s'", srv->cfg.model_name);
        for (int k = 0; k < srv->cfg.n_lora && n < sizeof ids; k++)
            n += (size_t)snprintf(ids + n, sizeof ids - n, ", '%s'", srv->cfg.lora_name[k]);
        return srv_err_set(err, 404, "invalid_request_error", "model_not_found", "model",
                           "the model '%.100s' does not exist; this server serves %s", name, ids);
    }
    *adapter = i;
    if (i >= 0) *id = srv->cfg.lora_name[i];
    return 0;
}

json_t *srv_model_json(const srv_server *srv, int i) {
    json_t *m = json_object();
    json_object_set_new(m, "id", json_string(i < 0 ? srv->cfg.model_name : srv->cfg.lora_name[i]));
    json_object_set_new(m, "object", json_string("model"));
    json_object_set_new(m, "created", json_integer((json_int_t)time(NULL) - (json_int_t)(srv_now() - srv->t_start)));
    json_object_set_new(m, "owned_by", json_string("lgpu"));
    if (i >= 0) { /* as vLLM lists LoRA modules: the base they apply to */
        json_object_set_new(m, "parent", json_string(srv->cfg.model_name));
        json_object_set_new(m, "root", json_string(srv->cfg.lora_spec[i]));
    }
    return m;
}
