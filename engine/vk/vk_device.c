/* Opening a Vulkan device: the selector rules (the host C path is one of
 * the choices), instance, selection, logical device with the features the
 * shaders may use, compute queue, memory, transfer objects, pipelines,
 * profiling. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vk/vk.h"

static bool env_on(const char *name) {
    const char *e = getenv(name);
    return e && *e && strcmp(e, "0") != 0;
}

static int create_device(lgpu_vk_dev *vd) {
    const lgpu_vk_devinfo *d = &vd->info;
    const char *exts[8];
    uint32_t n_ext = 0;

    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .storageBuffer8BitAccess = d->caps.storage_8bit,
        .uniformAndStorageBuffer8BitAccess = d->f_storage8_uniform,
        .shaderFloat16 = d->caps.fp16_arith,
        .shaderInt8 = d->caps.int8_arith,
        .shaderSubgroupExtendedTypes = d->f_subgroup_ext_types,
        .vulkanMemoryModel = d->f_memory_model,
        .vulkanMemoryModelDeviceScope = d->f_memory_model_device,
    };
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .pNext = &f12,
        .storageBuffer16BitAccess = d->caps.storage_16bit,
        .uniformAndStorageBuffer16BitAccess = d->f_storage16_uniform,
    };
    VkPhysicalDeviceFeatures2 f2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
        .pNext = &f11,
        .features = {.shaderInt16 = d->f_int16},
    };
    void **tail = &f12.pNext;
    VkPhysicalDeviceSubgroupSizeControlFeatures scf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
        .subgroupSizeControl = d->f_size_control,
        .computeFullSubgroups = d->f_full_subgroups,
    };
    if (d->f_size_control || d->f_full_subgroups) {
        *tail = &scf;
        tail = &scf.pNext;
        if (d->size_control_ext) exts[n_ext++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    }
    VkPhysicalDeviceCooperativeMatrixFeaturesNV nvf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE,
    };
    if (d->ext_coopmat_nv) {
        *tail = &nvf;
        tail = &nvf.pNext;
        exts[n_ext++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    }
#if LGPU_VK_KHR_COOPMAT
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR khrf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR,
        .cooperativeMatrix = VK_TRUE,
    };
    if (d->ext_coopmat_khr) {
        *tail = &khrf;
        tail = &khrf.pNext;
        exts[n_ext++] = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
    }
#endif
    (void)tail;
    if (d->has_budget) exts[n_ext++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    if (d->f_portability_subset) exts[n_ext++] = "VK_KHR_portability_subset";

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = d->compute_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &f2,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qi,
        .enabledExtensionCount = n_ext,
        .ppEnabledExtensionNames = exts,
    };
    LGPU_VK_CHECK(vkCreateDevice(d->phys, &ci, NULL, &vd->dev));
    vkGetDeviceQueue(vd->dev, d->compute_family, 0, &vd->queue);
    return 0;
}

static int create_xfer(lgpu_vk_dev *vd) {
    VkCommandPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = vd->info.compute_family,
    };
    LGPU_VK_CHECK(vkCreateCommandPool(vd->dev, &pi, NULL, &vd->xfer_pool));
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = vd->xfer_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    LGPU_VK_CHECK(vkAllocateCommandBuffers(vd->dev, &ai, &vd->xfer_cmd));
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    LGPU_VK_CHECK(vkCreateFence(vd->dev, &fi, NULL, &vd->xfer_fence));
    return 0;
}

static void setup_profile(lgpu_vk_dev *vd) {
    if (!env_on("LGPU_PROFILE")) return;
    uint32_t bits = vd->info.timestamp_bits;
    if (!bits) {
        lgpu_log(LGPU_LOG_WARN, "LGPU_PROFILE: the compute queue of %s has no timestamps; profiling off",
                 vd->info.name);
        return;
    }
    vd->ts_mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
    vd->profile = true;
}

static void teardown(lgpu_vk_dev *vd) {
    if (vd->dev) {
        vkDeviceWaitIdle(vd->dev);
        if (vd->profile) lgpu_vk_prof_print(vd, stderr);
        lgpu_vk_prof_destroy(vd);
        lgpu_vk_pipelines_destroy(vd);
        lgpu_vk_buffer_destroy(vd, vd->staging, &vd->staging_mem);
        if (vd->xfer_fence) vkDestroyFence(vd->dev, vd->xfer_fence, NULL);
        if (vd->xfer_pool) vkDestroyCommandPool(vd->dev, vd->xfer_pool, NULL);
        if (vd->mem.block_size) lgpu_vk_memory_destroy(vd);
        vkDestroyDevice(vd->dev, NULL);
    }
    lgpu_vk_instance_destroy(&vd->vi);
    pthread_mutex_destroy(&vd->queue_lock);
    pthread_mutex_destroy(&vd->xfer_lock);
    pthread_mutex_destroy(&vd->pipe_lock);
    pthread_mutex_destroy(&vd->prof_lock);
    pthread_mutex_destroy(&vd->view_lock);
    free(vd);
}

/* Open the Vulkan device `selector` names (NULL: automatic). On failure
 * *no_vulkan tells that no usable Vulkan device exists at all (then `why` says
 * why) so that an automatic choice may fall back to the host. */
static int open_vulkan(const char *selector, const char *origin, lgpu_vk_dev **out, char *reason, size_t reason_len,
                       bool *no_vulkan, char *why, size_t why_len) {
    *no_vulkan = false;
    why[0] = 0;
    lgpu_vk_dev *vd = calloc(1, sizeof *vd);
    if (!vd) return lgpu_set_error(LGPU_ENOMEM, "Vulkan device state");
    pthread_mutex_init(&vd->queue_lock, NULL);
    pthread_mutex_init(&vd->xfer_lock, NULL);
    pthread_mutex_init(&vd->pipe_lock, NULL);
    pthread_mutex_init(&vd->prof_lock, NULL);
    pthread_mutex_init(&vd->view_lock, NULL);

    int st = lgpu_vk_instance_create(&vd->vi, why, why_len);
    if (st) {
        *no_vulkan = st != LGPU_ENOMEM;
        teardown(vd);
        return lgpu_set_error(st, "%s", why);
    }
    lgpu_vk_devlist l;
    if ((st = lgpu_vk_enumerate(vd->vi.inst, &l))) {
        teardown(vd);
        return st;
    }
    int n_usable = 0;
    for (int i = 0; i < l.n; i++) n_usable += l.dev[i].usable;
    if (!n_usable) {
        *no_vulkan = true;
        if (l.n) {
            char list[512];
            lgpu_vk_devlist_summary(&l, list, sizeof list);
            snprintf(why, why_len, "no usable Vulkan device (%s)", list);
        } else {
            snprintf(why, why_len, "%s", l.error[0] ? l.error : "no Vulkan device");
        }
    }
    int idx = lgpu_vk_select(&l, selector, origin, reason, reason_len);
    if (idx < 0) {
        lgpu_vk_devlist_destroy(&l);
        teardown(vd);
        return idx;
    }
    vd->info = l.dev[idx];
    lgpu_vk_devlist_destroy(&l);

    vd->force_staging = env_on("LGPU_VK_FORCE_STAGING");
    if ((st = create_device(vd)) || (st = lgpu_vk_memory_init(vd)) || (st = create_xfer(vd)) ||
        (st = lgpu_vk_pipelines_init(vd))) {
        teardown(vd);
        return st;
    }
    setup_profile(vd);

    vd->caps = vd->info.caps;
    /* LGPU_TEXEL_WEIGHTS=0/1: matmul weights through uniform texel buffers (default: CPU-type devices) */
    const char *tw = getenv("LGPU_TEXEL_WEIGHTS");
    if (tw && *tw) {
        bool on = strcmp(tw, "0") != 0;
        if (on && !vd->caps.texel_buffers)
            lgpu_log(LGPU_LOG_WARN, "LGPU_TEXEL_WEIGHTS=%s: %s has no R32G32B32A32_UINT uniform texel buffers; off", tw,
                     vd->info.name);
        vd->caps.texel_weights = on && vd->caps.texel_buffers;
    }
    lgpu_log(LGPU_LOG_INFO, "device %d: %s (%s) — %s", idx, vd->info.name, lgpu_vk_type_name(vd->info.type), reason);
    *out = vd;
    return 0;
}

int lgpu_vk_dev_open(const char *selector, lgpu_vk_dev **out, char *name, size_t name_len, char *reason,
                     size_t reason_len, lgpu_dev_caps *caps) {
    *out = NULL;
    reason[0] = 0;
    const char *origin = "selector";
    if (!selector) {
        selector = getenv("LGPU_DEVICE");
        origin = "LGPU_DEVICE";
    }
    if (selector && (!*selector || !strcasecmp(selector, "auto"))) selector = NULL;
    if (selector && !strcasecmp(selector, "cpu")) {
        snprintf(reason, reason_len, "%s=cpu: host C path", origin);
        return 0;
    }
    char why[600]; /* holds "no usable Vulkan device (<512-byte list>)" */
    bool no_vulkan = false;
    int st = open_vulkan(selector, origin, out, reason, reason_len, &no_vulkan, why, sizeof why);
    if (st == 0) {
        if (name) snprintf(name, name_len, "%s", (*out)->info.name);
        if (caps) *caps = (*out)->caps;
        return 0;
    }
    if (no_vulkan && !selector) {
        snprintf(reason, reason_len, "no Vulkan device (%s): host C path", why);
        lgpu_log(LGPU_LOG_WARN, "%s", reason);
        lgpu_clear_error();
        return 0;
    }
    if (no_vulkan) st = lgpu_set_error(LGPU_ENODEV, "%s \"%s\": %s; devices: cpu: host C path", origin, selector, why);
    return st;
}

void lgpu_vk_dev_destroy(lgpu_vk_dev *vd) {
    if (vd) teardown(vd);
}

int lgpu_vk_dev_index(const lgpu_vk_dev *vd) { return vd ? vd->info.index : -1; }
