/* Files written whole or not at all. Data goes to "<path>.tmp"; commit
 * flushes and fsyncs it, renames it over <path> and fsyncs the directory,
 * so a crash or a kill -9 at any moment leaves either the previous file or
 * the complete new one, never a torn one. */
#ifndef LGPU_CORE_ATOMIC_FILE_H
#define LGPU_CORE_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct lgpu_atomic_file {
    FILE *f;
    char *path, *tmp;
    bool failed; /* a write failed: commit refuses */
} lgpu_atomic_file;

int lgpu_atomic_file_begin(lgpu_atomic_file *af, const char *path);
/* Appends n bytes; the first failure is reported here and again by commit. */
int lgpu_atomic_file_write(lgpu_atomic_file *af, const void *data, size_t n);
int lgpu_atomic_file_commit(lgpu_atomic_file *af);
/* Removes the temporary file (after a failure, or to give up); no-op after commit. */
void lgpu_atomic_file_abort(lgpu_atomic_file *af);

/* The whole of data[0..n) as <path>, atomically. */
int lgpu_write_file_atomic(const char *path, const void *data, size_t n);
/* fsync of the directory holding `path`, making a rename in it durable. */
int lgpu_fsync_parent_dir(const char *path);

#endif
