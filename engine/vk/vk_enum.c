/* Physical devices: capability query (shared by device open and `lgpu info`),
 * selection by rank / index / name, and the device listing. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/parallel.h"
#include "vk/vk.h"

const char *lgpu_vk_type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

static int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

static bool ext_in(const VkExtensionProperties *e, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(e[i].extensionName, name)) return true;
    return false;
}

/* The shape shaders/matmul_cm.comp uses: f16 x f16 -> f32, 16x16x16 (MxNxK), subgroup scope. */
static bool nv_coopmat_shapes(VkInstance inst, VkPhysicalDevice pd) {
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)vkGetInstanceProcAddr(
            inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    uint32_t n = 0;
    if (!get || get(pd, &n, NULL) != VK_SUCCESS || !n) return false;
    VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof *p);
    if (!p) return false;
    for (uint32_t i = 0; i < n; i++) p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    bool ok = false;
    if (get(pd, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !ok; i++)
            ok = p[i].MSize == 16 && p[i].KSize == 16 && p[i].NSize == 16 &&
                 p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV && p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                 p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV && p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                 p[i].scope == VK_SCOPE_SUBGROUP_NV;
    free(p);
    return ok;
}

#if LGPU_VK_KHR_COOPMAT
static bool khr_coopmat_shapes(VkInstance inst, VkPhysicalDevice pd) {
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)vkGetInstanceProcAddr(
            inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    uint32_t n = 0;
    if (!get || get(pd, &n, NULL) != VK_SUCCESS || !n) return false;
    VkCooperativeMatrixPropertiesKHR *p = calloc(n, sizeof *p);
    if (!p) return false;
    for (uint32_t i = 0; i < n; i++) p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
    bool ok = false;
    if (get(pd, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !ok; i++)
            ok = p[i].MSize == 16 && p[i].KSize == 16 && p[i].NSize == 16 &&
                 p[i].AType == VK_COMPONENT_TYPE_FLOAT16_KHR && p[i].BType == VK_COMPONENT_TYPE_FLOAT16_KHR &&
                 p[i].CType == VK_COMPONENT_TYPE_FLOAT32_KHR && p[i].ResultType == VK_COMPONENT_TYPE_FLOAT32_KHR &&
                 p[i].scope == VK_SCOPE_SUBGROUP_KHR;
    free(p);
    return ok;
}
#endif

static void describe(VkInstance inst, VkPhysicalDevice pd, int index, lgpu_vk_devinfo *d) {
    memset(d, 0, sizeof *d);
    d->phys = pd;
    d->index = index;
    uint32_t n_ext = 0;
    VkExtensionProperties *ext = NULL;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, NULL) == VK_SUCCESS && n_ext) {
        ext = calloc(n_ext, sizeof *ext);
        if (!ext || vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, ext) != VK_SUCCESS) n_ext = 0;
    }

    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    snprintf(d->name, sizeof d->name, "%s", p.deviceName);
    d->type = p.deviceType;
    d->api_version = p.apiVersion;
    d->driver_version = p.driverVersion;
    d->vendor_id = p.vendorID;
    d->device_id = p.deviceID;
    memcpy(d->cache_uuid, p.pipelineCacheUUID, VK_UUID_SIZE);
    d->timestamp_period = p.limits.timestampPeriod;
    d->max_alloc_size = UINT32_MAX; /* until maintenance3 says */
    lgpu_dev_caps *c = &d->caps;
    for (int i = 0; i < 3; i++) c->max_wg_count[i] = p.limits.maxComputeWorkGroupCount[i];
    c->max_wg_invocations = p.limits.maxComputeWorkGroupInvocations;
    c->max_shared_bytes = p.limits.maxComputeSharedMemorySize;
    c->max_binding = p.limits.maxStorageBufferRange;
    c->min_storage_align = (size_t)p.limits.minStorageBufferOffsetAlignment;
    /* uniform texel buffers of 16-byte uint texels (weights on CPU-type devices) */
    VkFormatProperties fp;
    vkGetPhysicalDeviceFormatProperties(pd, VK_FORMAT_R32G32B32A32_UINT, &fp);
    c->texel_buffers = (fp.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT) &&
                       p.limits.maxTexelBufferElements > 0;
    c->min_texel_align = (size_t)p.limits.minTexelBufferOffsetAlignment;
    c->max_texel_elems = p.limits.maxTexelBufferElements;
    c->texel_weights = c->texel_buffers && p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    c->cpu_shaders = strstr(d->name, "llvmpipe") || strstr(d->name, "SwiftShader");
    d->f_portability_subset = ext_in(ext, n_ext, "VK_KHR_portability_subset");

    bool v13 = p.apiVersion >= VK_API_VERSION_1_3;
    if (p.apiVersion < VK_API_VERSION_1_2) {
        snprintf(d->unusable_why, sizeof d->unusable_why, "Vulkan %u.%u < 1.2", VK_API_VERSION_MAJOR(p.apiVersion),
                 VK_API_VERSION_MINOR(p.apiVersion));
    } else {
        bool size_ctl = v13 || ext_in(ext, n_ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
        d->size_control_ext = !v13 && size_ctl;
        bool nv = ext_in(ext, n_ext, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);

        VkPhysicalDeviceSubgroupSizeControlProperties scp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
        VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
                                                     .pNext = size_ctl ? &scp : NULL};
        VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                                 .pNext = &m3};
        VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
                                                .pNext = &sg};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &drv};
        vkGetPhysicalDeviceProperties2(pd, &p2);
        snprintf(d->driver_name, sizeof d->driver_name, "%s", drv.driverName);
        snprintf(d->driver_info, sizeof d->driver_info, "%s", drv.driverInfo);
        d->max_alloc_size = m3.maxMemoryAllocationSize;
        c->subgroup_size = sg.subgroupSize;
        c->subgroup_arithmetic = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                                 (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);

        VkPhysicalDeviceCooperativeMatrixFeaturesNV nvf = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
        VkPhysicalDeviceSubgroupSizeControlFeatures scf = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
        VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
        VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                                .pNext = &f12};
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
        void **tail = &f12.pNext;
        if (size_ctl) {
            *tail = &scf;
            tail = &scf.pNext;
        }
        if (nv) {
            *tail = &nvf;
            tail = &nvf.pNext;
        }
#if LGPU_VK_KHR_COOPMAT
        bool khr = ext_in(ext, n_ext, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME);
        VkPhysicalDeviceCooperativeMatrixFeaturesKHR khrf = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
        if (khr) {
            *tail = &khrf;
            tail = &khrf.pNext;
        }
#endif
        vkGetPhysicalDeviceFeatures2(pd, &f2);
        c->fp16_arith = f12.shaderFloat16;
        c->int8_arith = f12.shaderInt8;
        c->storage_16bit = f11.storageBuffer16BitAccess;
        c->storage_8bit = f12.storageBuffer8BitAccess;
        d->f_storage16_uniform = f11.uniformAndStorageBuffer16BitAccess;
        d->f_storage8_uniform = f12.uniformAndStorageBuffer8BitAccess;
        d->f_int16 = f2.features.shaderInt16;
        d->f_subgroup_ext_types = f12.shaderSubgroupExtendedTypes;
        d->f_memory_model = f12.vulkanMemoryModel;
        d->f_memory_model_device = f12.vulkanMemoryModelDeviceScope;
        d->f_size_control = size_ctl && scf.subgroupSizeControl;
        d->f_full_subgroups = size_ctl && scf.computeFullSubgroups;
        d->ext_coopmat_nv = nv && nvf.cooperativeMatrix && nv_coopmat_shapes(inst, pd);
        c->coopmat_nv = d->ext_coopmat_nv;
#if LGPU_VK_KHR_COOPMAT
        d->ext_coopmat_khr = khr && khrf.cooperativeMatrix && khr_coopmat_shapes(inst, pd);
        c->coopmat_khr = d->ext_coopmat_khr;
#endif
    }

    /* memory heaps, with the budget when the extension is there */
    d->has_budget = ext_in(ext, n_ext, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    VkPhysicalDeviceMemoryBudgetPropertiesEXT bud = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                            .pNext = d->has_budget ? &bud : NULL};
    vkGetPhysicalDeviceMemoryProperties2(pd, &mp);
    d->n_heaps = (int)mp.memoryProperties.memoryHeapCount;
    for (int i = 0; i < d->n_heaps; i++) {
        d->heaps[i].size = mp.memoryProperties.memoryHeaps[i].size;
        d->heaps[i].device_local = mp.memoryProperties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
        if (d->has_budget) {
            d->heaps[i].budget = bud.heapBudget[i];
            d->heaps[i].usage = bud.heapUsage[i];
        }
    }

    /* the first compute-capable queue family */
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties *q = nq ? calloc(nq, sizeof *q) : NULL;
    bool have_compute = false;
    if (q) {
        vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, q);
        for (uint32_t i = 0; i < nq && !have_compute; i++)
            if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && q[i].queueCount > 0) {
                have_compute = true;
                d->compute_family = i;
                d->timestamp_bits = q[i].timestampValidBits;
            }
    }
    free(q);
    free(ext);
    if (!d->unusable_why[0] && !have_compute) snprintf(d->unusable_why, sizeof d->unusable_why, "no compute queue");
    d->usable = !d->unusable_why[0];
}

int lgpu_vk_enumerate(VkInstance inst, lgpu_vk_devlist *out) {
    memset(out, 0, sizeof *out);
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(inst, &n, NULL);
    if (r != VK_SUCCESS) {
        snprintf(out->error, sizeof out->error, "vkEnumeratePhysicalDevices failed: %s", lgpu_vk_result_name(r));
        return 0;
    }
    if (!n) {
        snprintf(out->error, sizeof out->error, "no Vulkan physical device");
        return 0;
    }
    VkPhysicalDevice *pd = calloc(n, sizeof *pd);
    out->dev = calloc(n, sizeof *out->dev);
    if (!pd || !out->dev) {
        free(pd);
        free(out->dev);
        out->dev = NULL;
        return lgpu_set_error(LGPU_ENOMEM, "enumerating %u Vulkan devices", n);
    }
    r = vkEnumeratePhysicalDevices(inst, &n, pd);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        snprintf(out->error, sizeof out->error, "vkEnumeratePhysicalDevices failed: %s", lgpu_vk_result_name(r));
        n = 0;
    }
    for (uint32_t i = 0; i < n; i++) describe(inst, pd[i], (int)i, &out->dev[i]);
    out->n = (int)n;
    free(pd);
    return 0;
}

void lgpu_vk_devlist_destroy(lgpu_vk_devlist *l) {
    if (!l) return;
    free(l->dev);
    l->dev = NULL;
    l->n = 0;
}

void lgpu_vk_devlist_summary(const lgpu_vk_devlist *l, char *out, size_t len) {
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < l->n && k < len; i++) {
        const lgpu_vk_devinfo *d = &l->dev[i];
        int w = snprintf(out + k, len - k, "%d: %s [%s]%s%s%s; ", i, d->name, lgpu_vk_type_name(d->type),
                         d->usable ? "" : " (unusable: ", d->usable ? "" : d->unusable_why, d->usable ? "" : ")");
        if (w < 0) break;
        k += (size_t)w;
    }
    if (k < len) snprintf(out + k, len - k, "cpu: host C path");
}

static bool all_digits(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

static bool contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, n)) return true;
    return n == 0;
}

static int no_match(const lgpu_vk_devlist *l, const char *origin, const char *selector, const char *what) {
    char list[768];
    lgpu_vk_devlist_summary(l, list, sizeof list);
    return lgpu_set_error(LGPU_ENODEV, "%s \"%s\": %s; devices: %s", origin, selector, what, list);
}

int lgpu_vk_select(const lgpu_vk_devlist *l, const char *selector, const char *origin, char *reason,
                   size_t reason_len) {
    if (!selector || !*selector || !strcasecmp(selector, "auto")) {
        int best = -1, n_usable = 0;
        for (int i = 0; i < l->n; i++) {
            if (!l->dev[i].usable) continue;
            n_usable++;
            if (best < 0 || type_rank(l->dev[i].type) > type_rank(l->dev[best].type)) best = i;
        }
        if (best < 0)
            return lgpu_set_error(LGPU_ENODEV, "no usable Vulkan device%s%s", l->error[0] ? ": " : "", l->error);
        if (n_usable == 1)
            snprintf(reason, reason_len, "only device (%s type)", lgpu_vk_type_name(l->dev[best].type));
        else
            snprintf(reason, reason_len, "best of %d devices (%s type; discrete > integrated > virtual > cpu)",
                     n_usable, lgpu_vk_type_name(l->dev[best].type));
        return best;
    }
    if (all_digits(selector)) {
        long idx = strtol(selector, NULL, 10);
        if (idx >= l->n || strlen(selector) > 6) return no_match(l, origin, selector, "no device with that index");
        if (!l->dev[idx].usable) return no_match(l, origin, selector, l->dev[idx].unusable_why);
        snprintf(reason, reason_len, "%s=%s (by index)", origin, selector);
        return (int)idx;
    }
    for (int i = 0; i < l->n; i++) {
        if (!l->dev[i].usable || !contains_nocase(l->dev[i].name, selector)) continue;
        snprintf(reason, reason_len, "%s=\"%s\" matches the name", origin, selector);
        return i;
    }
    return no_match(l, origin, selector, "no usable Vulkan device name contains it");
}

static void print_size(FILE *f, uint64_t b) {
    if (b >= (1ull << 30)) fprintf(f, "%.2f GiB", b / 1073741824.0);
    else fprintf(f, "%.1f MiB", b / 1048576.0);
}

static void print_driver_version(FILE *f, const lgpu_vk_devinfo *d) {
    uint32_t v = d->driver_version;
    if (d->vendor_id == 0x10DE) /* NVIDIA: 10.8.8.6 bits */
        fprintf(f, "%u.%u.%u.%u", v >> 22, (v >> 14) & 0xff, (v >> 6) & 0xff, v & 0x3f);
    else
        fprintf(f, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
}

static const char *yn(bool b) { return b ? "yes" : "no"; }

static void print_device(FILE *f, const lgpu_vk_devinfo *d) {
    fprintf(f, "  %d: %s\n", d->index, d->name);
    fprintf(f, "     type %s, Vulkan %u.%u.%u, driver %s ", lgpu_vk_type_name(d->type),
            VK_API_VERSION_MAJOR(d->api_version), VK_API_VERSION_MINOR(d->api_version),
            VK_API_VERSION_PATCH(d->api_version), d->driver_name[0] ? d->driver_name : "?");
    print_driver_version(f, d);
    if (d->driver_info[0]) fprintf(f, " (%s)", d->driver_info);
    fprintf(f, ", vendor 0x%04x device 0x%04x\n", d->vendor_id, d->device_id);
    for (int i = 0; i < d->n_heaps; i++) {
        fprintf(f, "     heap %d: ", i);
        print_size(f, d->heaps[i].size);
        fprintf(f, "%s, budget ", d->heaps[i].device_local ? " device-local" : " host");
        if (d->has_budget) {
            print_size(f, d->heaps[i].budget);
            fprintf(f, " (in use ");
            print_size(f, d->heaps[i].usage);
            fprintf(f, ")\n");
        } else {
            fprintf(f, "n/a (no VK_EXT_memory_budget)\n");
        }
    }
    const lgpu_dev_caps *c = &d->caps;
    fprintf(f, "     subgroup %u%s, fp16 %s, int8 %s, 16-bit storage %s, 8-bit storage %s\n", c->subgroup_size,
            c->subgroup_arithmetic ? " (arithmetic)" : "", yn(c->fp16_arith), yn(c->int8_arith), yn(c->storage_16bit),
            yn(c->storage_8bit));
    fprintf(f, "     cooperative matrix: NV %s, KHR %s%s\n", yn(c->coopmat_nv), yn(c->coopmat_khr),
            LGPU_VK_KHR_COOPMAT ? "" : " (not built)");
    fprintf(f, "     texel buffers (R32G32B32A32_UINT) %s, texel weights by default %s\n", yn(c->texel_buffers),
            yn(c->texel_weights));
    fprintf(f, "     maxStorageBufferRange ");
    print_size(f, c->max_binding);
    fprintf(f, ", maxMemoryAllocationSize ");
    print_size(f, d->max_alloc_size);
    fprintf(f, ", workgroups %u x %u x %u, shared %u KiB\n", c->max_wg_count[0], c->max_wg_count[1],
            c->max_wg_count[2], c->max_shared_bytes / 1024);
    if (!d->usable) fprintf(f, "     unusable: %s\n", d->unusable_why);
}

int lgpu_vk_print_info(FILE *f, const char *selector) {
    lgpu_vk_instance vi;
    char err[256] = "";
    lgpu_vk_devlist l = {0};
    bool have_inst = lgpu_vk_instance_create(&vi, err, sizeof err) == 0;
    if (have_inst) {
        int st = lgpu_vk_enumerate(vi.inst, &l);
        if (st) {
            lgpu_vk_instance_destroy(&vi);
            return st;
        }
        if (!l.n) snprintf(err, sizeof err, "%s", l.error);
    }
    fprintf(f, "Vulkan devices:%s%s\n", l.n ? "" : " none — ", l.n ? "" : err);
    for (int i = 0; i < l.n; i++) print_device(f, &l.dev[i]);
    lgpu_vk_devlist_destroy(&l);
    if (have_inst) lgpu_vk_instance_destroy(&vi);

    lgpu_vk_dev *vd = NULL;
    char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE], reason[600];
    int st = lgpu_vk_dev_open(selector, &vd, name, sizeof name, reason, sizeof reason, NULL);
    if (st) {
        fprintf(f, "selected: none — %s\n", lgpu_last_error());
        return st;
    }
    /* the reason as lgpu_dev_reason() has it (512 bytes) */
    if (vd) fprintf(f, "selected: %d %s — %.511s\n", lgpu_vk_dev_index(vd), name, reason);
    else fprintf(f, "selected: cpu (%d threads) — %.511s\n", lgpu_default_threads(), reason);
    lgpu_vk_dev_destroy(vd);
    return 0;
}
