/* Compute pipelines, created lazily from the embedded SPIR-V and cached by
 * (shader name, specialization constants, texel mask). The descriptor set
 * layout has LGPU_VK_MAX_BINDINGS bindings, each a storage buffer or (bit i of
 * the texel mask) a uniform texel buffer; one layout per mask, created on
 * first use, each with a 128-byte push-constant range. A VkPipelineCache is loaded from and saved
 * to $XDG_CACHE_HOME/lgpu (or ~/.cache/lgpu). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgpu_shaders.h"
#include "vk/vk.h"

struct lgpu_vk_pipeline {
    char *shader;
    uint32_t spec[LGPU_VK_MAX_SPEC];
    int n_spec;
    uint32_t texel_mask;
    VkPipeline pipe;
    lgpu_vk_pipeline *next;
};

void lgpu_vk_pipeline_cache_path(const lgpu_vk_devinfo *info, char *out, size_t len) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[900];
    if (xdg && xdg[0] == '/') snprintf(dir, sizeof dir, "%s/lgpu", xdg);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/lgpu", home);
    else {
        out[0] = 0;
        return;
    }
    snprintf(out, len, "%s/pipelines-%04x-%04x-%08x.bin", dir, info->vendor_id, info->device_id,
             info->driver_version);
}

/* mkdir -p of the directory part of `path`. */
static int make_parent_dirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash) return 0;
    *slash = 0;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* Contents of the cache file if its header matches this device, else NULL (debug log says why). */
static void *load_cache(const lgpu_vk_devinfo *info, const char *path, size_t *size) {
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *data = NULL;
    const char *why = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 32 || n > (256l << 20) || fseek(f, 0, SEEK_SET) != 0) why = "bad size";
    else if (!(data = malloc((size_t)n))) why = "out of memory";
    else if (fread(data, 1, (size_t)n, f) != (size_t)n) why = "read error";
    fclose(f);
    if (!why) {
        /* VkPipelineCacheHeaderVersionOne: headerSize, headerVersion, vendorID, deviceID, UUID[16] */
        uint32_t h[4];
        memcpy(h, data, sizeof h);
        if (h[0] < 32 || h[0] > (uint32_t)n) why = "bad header size";
        else if (h[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE) why = "unknown header version";
        else if (h[2] != info->vendor_id || h[3] != info->device_id) why = "other device";
        else if (memcmp((uint8_t *)data + 16, info->cache_uuid, VK_UUID_SIZE)) why = "other driver (UUID mismatch)";
    }
    if (why) {
        lgpu_log(LGPU_LOG_DEBUG, "ignoring pipeline cache %s: %s", path, why);
        free(data);
        return NULL;
    }
    *size = (size_t)n;
    return data;
}

static void save_cache(lgpu_vk_dev *vd) {
    if (!vd->cache || !vd->cache_dirty || !vd->cache_path[0]) return;
    size_t n = 0;
    if (vkGetPipelineCacheData(vd->dev, vd->cache, &n, NULL) != VK_SUCCESS || !n) return;
    void *data = malloc(n);
    if (!data) return;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", vd->cache_path, (long)getpid());
    FILE *f = NULL;
    bool ok = vkGetPipelineCacheData(vd->dev, vd->cache, &n, data) == VK_SUCCESS &&
              make_parent_dirs(vd->cache_path) == 0 && (f = fopen(tmp, "wb")) != NULL;
    if (ok) ok = fwrite(data, 1, n, f) == n;
    if (f) ok = (fclose(f) == 0) && ok;
    /* rename: readers never see a half-written file */
    if (ok) ok = rename(tmp, vd->cache_path) == 0;
    if (!ok) {
        if (f) remove(tmp);
        lgpu_log(LGPU_LOG_DEBUG, "could not save the pipeline cache to %s", vd->cache_path);
    } else {
        lgpu_log(LGPU_LOG_DEBUG, "saved %zu bytes of pipeline cache to %s", n, vd->cache_path);
    }
    free(data);
}

/* Caller holds pipe_lock. */
static int layout_locked(lgpu_vk_dev *vd, uint32_t mask, const lgpu_vk_layout **out) {
    if (mask >= (1u << LGPU_VK_MAX_BINDINGS)) return lgpu_set_error(LGPU_EINVAL, "texel binding mask 0x%x", mask);
    lgpu_vk_layout *l = &vd->layouts[mask];
    if (!l->layout) {
        VkDescriptorSetLayoutBinding b[LGPU_VK_MAX_BINDINGS];
        for (int i = 0; i < LGPU_VK_MAX_BINDINGS; i++)
            b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                                  .descriptorType = mask & (1u << i)
                                                                        ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                                                        : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                                  .descriptorCount = 1,
                                                  .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
        VkDescriptorSetLayoutCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                               .bindingCount = LGPU_VK_MAX_BINDINGS,
                                               .pBindings = b};
        LGPU_VK_CHECK(vkCreateDescriptorSetLayout(vd->dev, &dci, NULL, &l->dsl));
        VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 128};
        VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                          .setLayoutCount = 1,
                                          .pSetLayouts = &l->dsl,
                                          .pushConstantRangeCount = 1,
                                          .pPushConstantRanges = &pcr};
        VkResult r = vkCreatePipelineLayout(vd->dev, &pli, NULL, &l->layout);
        if (r != VK_SUCCESS) {
            vkDestroyDescriptorSetLayout(vd->dev, l->dsl, NULL);
            l->dsl = VK_NULL_HANDLE;
            return lgpu_vk_fail(r, "vkCreatePipelineLayout", __FILE__, __LINE__);
        }
    }
    *out = l;
    return 0;
}

int lgpu_vk_layout_get(lgpu_vk_dev *vd, uint32_t texel_mask, const lgpu_vk_layout **out) {
    pthread_mutex_lock(&vd->pipe_lock);
    int st = layout_locked(vd, texel_mask, out);
    pthread_mutex_unlock(&vd->pipe_lock);
    return st;
}

int lgpu_vk_pipelines_init(lgpu_vk_dev *vd) {
    const lgpu_vk_layout *l;
    int st = lgpu_vk_layout_get(vd, 0, &l); /* the all-storage layout most shaders use */
    if (st) return st;

    lgpu_vk_pipeline_cache_path(&vd->info, vd->cache_path, sizeof vd->cache_path);
    size_t n = 0;
    void *data = vd->cache_path[0] ? load_cache(&vd->info, vd->cache_path, &n) : NULL;
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = n,
                                    .pInitialData = data};
    VkResult r = vkCreatePipelineCache(vd->dev, &ci, NULL, &vd->cache);
    if (r != VK_SUCCESS && data) { /* the driver refused the data: start empty */
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = vkCreatePipelineCache(vd->dev, &ci, NULL, &vd->cache);
    }
    if (data && ci.pInitialData) {
        vd->cache_loaded = n;
        lgpu_log(LGPU_LOG_DEBUG, "loaded %zu bytes of pipeline cache from %s", n, vd->cache_path);
    }
    free(data);
    if (r != VK_SUCCESS) return lgpu_vk_fail(r, "vkCreatePipelineCache", __FILE__, __LINE__);

    return lgpu_vk_buffer_create(vd, 256, false, &vd->dummy, &vd->dummy_mem);
}

void lgpu_vk_pipelines_destroy(lgpu_vk_dev *vd) {
    for (int i = 0; i < LGPU_VK_PIPE_BUCKETS; i++)
        for (lgpu_vk_pipeline *p = vd->pipes[i], *next; p; p = next) {
            next = p->next;
            vkDestroyPipeline(vd->dev, p->pipe, NULL);
            free(p->shader);
            free(p);
        }
    memset(vd->pipes, 0, sizeof vd->pipes);
    if (vd->cache) {
        save_cache(vd);
        vkDestroyPipelineCache(vd->dev, vd->cache, NULL);
        vd->cache = VK_NULL_HANDLE;
    }
    lgpu_vk_buffer_destroy(vd, vd->dummy, &vd->dummy_mem);
    vd->dummy = VK_NULL_HANDLE;
    for (int i = 0; i < 1 << LGPU_VK_MAX_BINDINGS; i++) {
        lgpu_vk_layout *l = &vd->layouts[i];
        if (l->layout) vkDestroyPipelineLayout(vd->dev, l->layout, NULL);
        if (l->dsl) vkDestroyDescriptorSetLayout(vd->dev, l->dsl, NULL);
        *l = (lgpu_vk_layout){0};
    }
}

static uint32_t key_hash(const char *shader, const uint32_t *spec, int n_spec, uint32_t mask) {
    uint32_t h = (2166136261u ^ mask) * 16777619u;
    for (const char *s = shader; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    for (int i = 0; i < n_spec; i++) h = (h ^ spec[i]) * 16777619u;
    return h;
}

static int create(lgpu_vk_dev *vd, const char *shader, const uint32_t *spec, int n_spec, VkPipelineLayout layout,
                  VkPipeline *out) {
    const lgpu_shader_blob *blob = lgpu_shader_find(shader);
    if (!blob)
        return lgpu_set_error(LGPU_ENOTFOUND, "no embedded shader \"%s\" (is it listed in shaders/meson.build?)",
                              shader);
    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = blob->size,
                                   .pCode = blob->code};
    VkShaderModule mod;
    LGPU_VK_CHECK(vkCreateShaderModule(vd->dev, &mi, NULL, &mod));
    VkSpecializationMapEntry map[LGPU_VK_MAX_SPEC];
    for (int i = 0; i < n_spec; i++)
        map[i] = (VkSpecializationMapEntry){.constantID = (uint32_t)i, .offset = (uint32_t)(4 * i), .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = (uint32_t)n_spec,
                               .pMapEntries = map,
                               .dataSize = (size_t)n_spec * 4,
                               .pData = spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = n_spec ? &si : NULL},
        .layout = layout,
    };
    VkResult r = vkCreateComputePipelines(vd->dev, vd->cache, 1, &ci, NULL, out);
    vkDestroyShaderModule(vd->dev, mod, NULL);
    if (r != VK_SUCCESS) {
        int st = lgpu_vk_fail(r, "vkCreateComputePipelines", __FILE__, __LINE__);
        return lgpu_set_error(st, "creating pipeline for shader \"%s\": %s", shader, lgpu_vk_result_name(r));
    }
    return 0;
}

int lgpu_vk_pipeline_get(lgpu_vk_dev *vd, const char *shader, const uint32_t *spec, int n_spec, uint32_t texel_mask,
                         VkPipeline *out, const lgpu_vk_layout **layout) {
    if (!shader) return lgpu_set_error(LGPU_EINVAL, "dispatch without a shader name");
    if (n_spec < 0 || n_spec > LGPU_VK_MAX_SPEC)
        return lgpu_set_error(LGPU_EINVAL, "shader \"%s\": %d specialization constants (max %d)", shader, n_spec,
                              LGPU_VK_MAX_SPEC);
    uint32_t bucket = key_hash(shader, spec, n_spec, texel_mask) % LGPU_VK_PIPE_BUCKETS;
    pthread_mutex_lock(&vd->pipe_lock);
    const lgpu_vk_layout *l = NULL;
    int st = layout_locked(vd, texel_mask, &l);
    if (st) {
        pthread_mutex_unlock(&vd->pipe_lock);
        return st;
    }
    *layout = l;
    for (lgpu_vk_pipeline *p = vd->pipes[bucket]; p; p = p->next)
        if (p->n_spec == n_spec && p->texel_mask == texel_mask && !memcmp(p->spec, spec, (size_t)n_spec * 4) &&
            !strcmp(p->shader, shader)) {
            *out = p->pipe;
            pthread_mutex_unlock(&vd->pipe_lock);
            return 0;
        }
    lgpu_vk_pipeline *p = calloc(1, sizeof *p);
    if (!p || !(p->shader = strdup(shader))) st = lgpu_set_error(LGPU_ENOMEM, "pipeline for \"%s\"", shader);
    if (!st) st = create(vd, shader, spec, n_spec, l->layout, &p->pipe);
    if (st) {
        if (p) free(p->shader);
        free(p);
    } else {
        memcpy(p->spec, spec, (size_t)n_spec * 4);
        p->n_spec = n_spec;
        p->texel_mask = texel_mask;
        p->next = vd->pipes[bucket];
        vd->pipes[bucket] = p;
        vd->cache_dirty = true;
        *out = p->pipe;
        lgpu_log(LGPU_LOG_DEBUG, "pipeline %s (%d spec constants, texel mask 0x%x) created", shader, n_spec,
                 texel_mask);
    }
    pthread_mutex_unlock(&vd->pipe_lock);
    return st;
}
