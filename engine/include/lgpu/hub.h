/* lgpu — Hugging Face Hub client: resolves "ORG/NAME[:FILE]" to a local path,
 * downloading into the standard huggingface_hub cache so files are shared
 * with Python tools:
 *   <cache>/models--ORG--NAME/blobs/<etag>
 *   <cache>/models--ORG--NAME/snapshots/<commit>/<file> -> ../../blobs/<etag>
 *   <cache>/models--ORG--NAME/refs/<revision>            (holds <commit>)
 * <cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
 * else ~/.cache/huggingface/hub. Endpoint: $HF_ENDPOINT or https://huggingface.co.
 * Token: $HF_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token.
 * HF_HUB_OFFLINE=1 never touches the network; otherwise a cached copy is used,
 * with a warning, when the Hub cannot be reached. */
#ifndef LGPU_HUB_H
#define LGPU_HUB_H

#include "lgpu/lgpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LGPU_HUB_PROGRESS_AUTO = 0, /* a progress bar on stderr when it is a tty */
    LGPU_HUB_PROGRESS_OFF,
    LGPU_HUB_PROGRESS_ON,
} lgpu_hub_progress;

/* All fields optional: a zeroed struct (or a NULL pointer) means defaults. */
typedef struct lgpu_hub_opts {
    const char *revision;  /* branch, tag or commit; NULL: "main" */
    const char *endpoint;  /* NULL: $HF_ENDPOINT or https://huggingface.co */
    const char *cache_dir; /* NULL: see above */
    const char *token;     /* NULL: $HF_TOKEN or the token file; "" sends none */
    int progress;          /* lgpu_hub_progress */
    bool offline;          /* like HF_HUB_OFFLINE=1 */
    /* Extra attempts, each resuming where the last stopped, when a transfer
     * breaks off. 0: the default (3); < 0: none. */
    int retries;
} lgpu_hub_opts;

/* Resolves spec "ORG/NAME[:FILE]" to a local path, downloading what is
 * missing. Without FILE the repo's model is picked: its only .gguf (if
 * several: Q4_0, then Q8_0, Q4_K_M, Q4_K_S, Q6_K, F16, BF16, F32; mmproj
 * files are skipped), else config.json + safetensors weights, in which case
 * config/tokenizer/generation files, model.safetensors or the index and all
 * its shards are fetched and the snapshot DIRECTORY is returned.
 * Errors: ENOTFOUND (no such repo/file, or offline and not cached),
 * ENET (network or HTTP failure, including 401/403 for a gated or private
 * repo without a valid HF_TOKEN), EIO (size or sha256 mismatch, disk),
 * EINVAL (bad spec), ERANGE (path_out too small). */
int lgpu_hub_resolve(const char *spec, char *path_out, size_t cap, const lgpu_hub_opts *opts);

/* Downloads (or finds in the cache) one file of a repo; path_out receives
 * the snapshot path. */
int lgpu_hub_download(const char *repo, const char *file, char *path_out, size_t cap, const lgpu_hub_opts *opts);

/* True if s should be resolved on the Hub: it has the "ORG/NAME[:FILE]"
 * form and no file or directory of that name exists (a local path wins). */
bool lgpu_hub_is_spec(const char *s);

/* Splits "ORG/NAME[:FILE]" into repo "ORG/NAME" and file ("" if absent),
 * validating the Hub's naming rules and rejecting ".." in FILE. */
int lgpu_hub_parse_spec(const char *spec, char *repo, size_t repo_cap, char *file, size_t file_cap);

/* The cache directory in effect for opts (may not exist yet). */
int lgpu_hub_cache_dir(const lgpu_hub_opts *opts, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
