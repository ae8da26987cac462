/* Element type table (ids are GGML's, then lgpu's own above LGPU_TYPE_COUNT_). */
#include "lgpu/lgpu.h"

#include <strings.h>

typedef struct {
    int id;
    const char *name;
    int64_t block_elems;
    size_t block_bytes;
} type_info;

static const type_info types[] = {
    {LGPU_TYPE_F32, "f32", 1, 4},      {LGPU_TYPE_F16, "f16", 1, 2},       {LGPU_TYPE_Q4_0, "q4_0", 32, 18},
    {LGPU_TYPE_Q8_0, "q8_0", 32, 34},  {LGPU_TYPE_Q4_K, "q4_k", 256, 144}, {LGPU_TYPE_Q6_K, "q6_k", 256, 210},
    {LGPU_TYPE_I32, "i32", 1, 4},      {LGPU_TYPE_BF16, "bf16", 1, 2},
    /* lgpu's own: NF4 blocks run across rows (a row is whole blocks only
     * when 64 divides it), and need the tensor's side table (quant/nf4.h) */
    {LGPU_TYPE_NF4, "nf4", 64, 33},    {LGPU_TYPE_NF4_NODQ, "nf4_nodq", 64, 36},
};

static const type_info *find(int id) {
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].id == id) return &types[i];
    return NULL;
}

const char *lgpu_type_name(int type) {
    const type_info *t = find(type);
    return t ? t->name : NULL;
}

int lgpu_type_from_name(const char *name) {
    for (size_t i = 0; name && i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(types[i].name, name)) return types[i].id;
    return -1;
}

int64_t lgpu_type_block_elems(int type) {
    const type_info *t = find(type);
    return t ? t->block_elems : 0;
}

size_t lgpu_type_block_bytes(int type) {
    const type_info *t = find(type);
    return t ? t->block_bytes : 0;
}

size_t lgpu_type_row_bytes(int type, int64_t n) {
    const type_info *t = find(type);
    if (!t || n < 0 || n % t->block_elems) return 0;
    return (size_t)(n / t->block_elems) * t->block_bytes;
}
