/* Parameters of elementwise add: the push-constant block of shaders/add*.comp, shared by the op layer
 * (engine/ops) and the C twin (engine/ref). */
#ifndef LGPU_PARAMS_ADD_H
#define LGPU_PARAMS_ADD_H

#include "params/common.h"

/* y[i] = a[i] + b[i] */
typedef struct lgpu_add_params {
    uint32_t n;
} lgpu_add_params;
LGPU_PARAMS_CHECK(lgpu_add_params);

#endif
