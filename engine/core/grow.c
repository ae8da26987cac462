/* Growable arrays (core/grow.h). */
#include "core/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lgpu/lgpu.h"

int lgpu_grow(void *pp, size_t *cap, size_t need, size_t elem, size_t first, const char *what) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : first ? first : 1;
    while (c < need) {
        if (c > SIZE_MAX / 2) return lgpu_set_error(LGPU_ENOMEM, "%s: %zu elements are too many", what, need);
        c *= 2;
    }
    if (elem && c > SIZE_MAX / elem) return lgpu_set_error(LGPU_ENOMEM, "%s: %zu elements are too many", what, need);
    /* The pointer is read and written through memcpy: pp is the address of a
     * T * of any object type, which has void *'s representation. */
    void *old;
    memcpy(&old, pp, sizeof old);
    void *p = realloc(old, c * elem);
    if (!p) return lgpu_set_error(LGPU_ENOMEM, "%s: out of memory for %zu elements", what, c);
    memcpy(pp, &p, sizeof p);
    *cap = c;
    return 0;
}
