/* Read-only memory mapping of a whole file, shared by the model readers; or
 * the same view of memory the caller keeps alive (a model built into
 * liblgpu), which destroy leaves alone. */
#ifndef LGPU_MODEL_MAPFILE_H
#define LGPU_MODEL_MAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lgpu_mapfile {
    const uint8_t *data; /* NULL for an empty file */
    uint64_t size;
    bool borrowed; /* memory of the caller's: not unmapped */
} lgpu_mapfile;

/* 0, LGPU_ENOTFOUND (missing), LGPU_EIO (unreadable, a directory, mmap
 * failure). An empty file maps to {NULL, 0}. */
int lgpu_mapfile_create(const char *path, lgpu_mapfile *m);
/* A view of size bytes at data, which must outlive it (no copy, no file). */
void lgpu_mapfile_from_memory(const void *data, uint64_t size, lgpu_mapfile *m);
void lgpu_mapfile_destroy(lgpu_mapfile *m);
/* Base name of a path (pointer into it), for error details. */
const char *lgpu_path_base(const char *path);

#endif
