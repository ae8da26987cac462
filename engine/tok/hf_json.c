/* Shared readings of HF tokenizer files (see hf_json.h). */
#include "tok/hf_json.h"

#include <string.h>

static bool is_type(json_t *o, const char *type) {
    json_t *t = json_object_get(o, "type");
    return json_is_string(t) && !strcmp(json_string_value(t), type);
}

json_t *lgpu_hf_find_component(json_t *o, const char *type) {
    if (!json_is_object(o)) return NULL;
    if (is_type(o, type)) return o;
    static const char *lists[] = {"pretokenizers", "processors", "decoders", "normalizers"};
    for (size_t k = 0; k < 4; k++) {
        json_t *arr = json_object_get(o, lists[k]), *it;
        size_t i;
        json_array_foreach(arr, i, it) {
            json_t *r = lgpu_hf_find_component(it, type);
            if (r) return r;
        }
    }
    return NULL;
}

static bool is_ws_string(json_t *s) { return json_is_string(s) && !strcmp(json_string_value(s), "\xE2\x96\x81"); }

lgpu_hf_style lgpu_hf_bpe_style(json_t *root, bool *space_prefix) {
    *space_prefix = false;
    json_t *pre = json_object_get(root, "pre_tokenizer"), *norm = json_object_get(root, "normalizer");
    if (lgpu_hf_find_component(pre, "ByteLevel") || lgpu_hf_find_component(json_object_get(root, "decoder"), "ByteLevel"))
        return LGPU_HF_BYTELEVEL;
    json_t *prep = lgpu_hf_find_component(norm, "Prepend"), *meta = lgpu_hf_find_component(pre, "Metaspace");
    json_t *rep = lgpu_hf_find_component(norm, "Replace");
    json_t *scheme = meta ? json_object_get(meta, "prepend_scheme") : NULL;
    *space_prefix = (prep && is_ws_string(json_object_get(prep, "prepend"))) ||
                    (meta && !json_is_false(json_object_get(meta, "add_prefix_space")) &&
                     !(json_is_string(scheme) && !strcmp(json_string_value(scheme), "never")));
    if (json_is_true(json_object_get(json_object_get(root, "model"), "byte_fallback")) || meta ||
        (rep && is_ws_string(json_object_get(rep, "content"))))
        return LGPU_HF_SPM;
    *space_prefix = false;
    return LGPU_HF_UNSUPPORTED;
}

const char *lgpu_hf_chat_template(json_t *config) {
    json_t *v = json_object_get(config, "chat_template");
    const char *tmpl = json_string_value(v);
    if (json_is_array(v)) { /* [{"name": "default", "template": ...}, ...] */
        json_t *it;
        size_t i;
        json_array_foreach(v, i, it) {
            const char *name = json_string_value(json_object_get(it, "name"));
            if (!tmpl || (name && !strcmp(name, "default"))) tmpl = json_string_value(json_object_get(it, "template"));
        }
    }
    return tmpl;
}

const char *lgpu_hf_token_string(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) {
        json_t *c = json_object_get(v, "content");
        if (json_is_string(c)) return json_string_value(c);
    }
    return NULL;
}
