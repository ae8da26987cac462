/* GGUF from memory instead of a file: the models built into liblgpu
 * (engine/model/model_file.c, "embedded:NAME"). */
#ifndef LGPU_FORMAT_GGUF_MEM_H
#define LGPU_FORMAT_GGUF_MEM_H

#include <stdint.h>

#include "lgpu/gguf.h"

/* As lgpu_gguf_create, over size bytes at data, which must outlive the
 * handle; name stands for the path (lgpu_gguf_path, error details). */
int lgpu_gguf_create_from_memory(const char *name, const void *data, uint64_t size, lgpu_gguf **out);

#endif
