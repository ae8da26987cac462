/* Growable arrays: the one doubling realloc behind every list, queue and
 * text buffer in the engine. */
#ifndef LGPU_CORE_GROW_H
#define LGPU_CORE_GROW_H

#include <stddef.h>

/* Makes the array at *(T **)pp, of *cap elements of `elem` bytes, hold at
 * least `need` elements: the capacity doubles from `first` (or from *cap)
 * until it does. Returns 0, or LGPU_ENOMEM with a detail naming `what`
 * (*pp and *cap unchanged, so the caller still owns the old array). */
int lgpu_grow(void *pp, size_t *cap, size_t need, size_t elem, size_t first, const char *what);

/* LGPU_GROW(ptr, cap, need, first, what): lgpu_grow for a typed pointer
 * `ptr` and its size_t capacity `cap`. */
#define LGPU_GROW(ptr, cap, need, first, what) lgpu_grow(&(ptr), &(cap), (need), sizeof *(ptr), (first), (what))

#endif
