/* What every op parameter header shares: the push-constant size rule and the
 * operand layout conventions. Each engine/params/<op>.h holds one op's
 * parameter struct (field for field its shader's push-constant block) and
 * the op's semantics; the op layer (engine/ops) and the C twins
 * (engine/ref) both include it.
 *
 * Layout conventions (GGUF order: ne[0] is the fastest-varying dimension):
 *   a matrix W of N rows and K columns stores row n at W + n*row_bytes(type,K);
 *   activations are F32, row-major, contiguous unless a stride is given. */
#ifndef LGPU_PARAMS_COMMON_H
#define LGPU_PARAMS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "lgpu/lgpu.h"

#define LGPU_PARAMS_CHECK(T) _Static_assert(sizeof(T) <= 128 && sizeof(T) % 4 == 0, #T " must fit push constants")

#endif
