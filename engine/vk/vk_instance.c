/* VkInstance creation: API version, optional validation layer (LGPU_VK_VALIDATE
 * or the vk_validation build option) and a debug messenger that forwards
 * validation messages to lgpu_log. */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "vk/vk.h"

#ifndef LGPU_VK_VALIDATE_DEFAULT
#define LGPU_VK_VALIDATE_DEFAULT 0
#endif

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

static bool want_validation(void) {
    const char *e = getenv("LGPU_VK_VALIDATE");
    if (e && *e) return strcmp(e, "0") != 0;
    return LGPU_VK_VALIDATE_DEFAULT != 0;
}

static bool has_layer(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n) return false;
    VkLayerProperties *p = calloc(n, sizeof *p);
    if (!p) return false;
    bool found = false;
    if (vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(p[i].layerName, name);
    free(p);
    return found;
}

/* Extensions of the loader/ICDs, plus those of `layer` when given. */
static bool has_instance_ext(const char *layer, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    if (!p) return false;
    bool found = false;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(p[i].extensionName, name);
    free(p);
    return found;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                               VkDebugUtilsMessageTypeFlagsEXT types,
                                               const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)types;
    (void)user;
    lgpu_log_level lvl = sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT     ? LGPU_LOG_ERROR
                         : sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT ? LGPU_LOG_WARN
                                                                                 : LGPU_LOG_DEBUG;
    lgpu_log(lvl, "vulkan: %s", data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;
}

/* Drivers (ICDs) are loaded by vkCreateInstance and unloaded by
 * vkDestroyInstance. We keep them resident after the first instance: loading
 * a driver is slow, some drivers register exit handlers or keep per-load
 * allocations (leak checkers then see frames of an unloaded, unnamed module),
 * and a process that opens a device once tends to do it again. */
typedef struct {
    char **names;
    int n;
    size_t cap;
} modlist;

static int collect_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    modlist *l = data;
    if (!info->dlpi_name || !info->dlpi_name[0]) return 0;
    if (LGPU_GROW(l->names, l->cap, (size_t)l->n + 1, 64, "loaded modules")) return 1;
    if (!(l->names[l->n] = strdup(info->dlpi_name))) return 1;
    l->n++;
    return 0;
}

static void modlist_free(modlist *l) {
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;
static bool pinned;

/* Mark every object loaded since `before` as never-unload (RTLD_NOLOAD only
 * promotes the flag; the extra reference is dropped again). */
static void pin_new_modules(const modlist *before) {
    modlist now = {0};
    dl_iterate_phdr(collect_cb, &now);
    int kept = 0;
    for (int i = 0; i < now.n; i++) {
        bool old = false;
        for (int j = 0; j < before->n && !old; j++) old = !strcmp(now.names[i], before->names[j]);
        if (old) continue;
        void *h = dlopen(now.names[i], RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
        if (h) {
            kept++;
            dlclose(h);
        }
    }
    lgpu_log(LGPU_LOG_DEBUG, "keeping %d libraries loaded by the Vulkan loader resident", kept);
    modlist_free(&now);
}

static int instance_create(lgpu_vk_instance *vi, char *err, size_t err_len);

int lgpu_vk_instance_create(lgpu_vk_instance *vi, char *err, size_t err_len) {
    /* the loader opens the drivers on its first call (before vkCreateInstance) */
    pthread_mutex_lock(&pin_lock);
    modlist before = {0};
    if (!pinned) dl_iterate_phdr(collect_cb, &before);
    int st = instance_create(vi, err, err_len);
    if (st == 0 && !pinned) {
        pin_new_modules(&before);
        pinned = true;
    }
    modlist_free(&before);
    pthread_mutex_unlock(&pin_lock);
    return st;
}

static int instance_create(lgpu_vk_instance *vi, char *err, size_t err_len) {
    memset(vi, 0, sizeof *vi);
    uint32_t loader = VK_API_VERSION_1_0;
    if (vkEnumerateInstanceVersion(&loader) != VK_SUCCESS) loader = VK_API_VERSION_1_0;
    if (loader < VK_API_VERSION_1_2) {
        snprintf(err, err_len, "Vulkan loader %u.%u is older than 1.2", VK_API_VERSION_MAJOR(loader),
                 VK_API_VERSION_MINOR(loader));
        return LGPU_ENODEV;
    }
    const char *layers[1];
    uint32_t n_layers = 0;
    const char *exts[4];
    uint32_t n_exts = 0;
    bool debug = false;
    if (want_validation()) {
        if (has_layer(VALIDATION_LAYER)) {
            layers[n_layers++] = VALIDATION_LAYER;
            if (has_instance_ext(NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
                has_instance_ext(VALIDATION_LAYER, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
                exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
                debug = true;
            }
        } else {
            lgpu_log(LGPU_LOG_WARN, "Vulkan validation requested but %s is not installed; continuing without it",
                     VALIDATION_LAYER);
        }
    }
    VkInstanceCreateFlags flags = 0;
    if (has_instance_ext(NULL, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_exts++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
        vi->portability = true;
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "lgpu",
        .pEngineName = "lgpu",
        .apiVersion = loader >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_2,
    };
    VkDebugUtilsMessengerCreateInfoEXT dci = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_INFO_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_cb,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = debug ? &dci : NULL, /* also reports instance creation itself */
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = n_layers,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateInstance(&ci, NULL, &vi->inst);
    if (r != VK_SUCCESS) {
        snprintf(err, err_len, "vkCreateInstance failed: %s", lgpu_vk_result_name(r));
        vi->inst = VK_NULL_HANDLE;
        return r == VK_ERROR_OUT_OF_HOST_MEMORY ? LGPU_ENOMEM : LGPU_ENODEV;
    }
    if (debug) {
        PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(vi->inst, "vkCreateDebugUtilsMessengerEXT");
        if (!create || create(vi->inst, &dci, NULL, &vi->messenger) != VK_SUCCESS) {
            lgpu_log(LGPU_LOG_WARN, "could not create the Vulkan debug messenger");
            vi->messenger = VK_NULL_HANDLE;
        }
    }
    lgpu_log(LGPU_LOG_DEBUG, "Vulkan instance %u.%u%s", VK_API_VERSION_MAJOR(app.apiVersion),
             VK_API_VERSION_MINOR(app.apiVersion), n_layers ? " with validation" : "");
    return 0;
}

void lgpu_vk_instance_destroy(lgpu_vk_instance *vi) {
    if (!vi || !vi->inst) return;
    if (vi->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(vi->inst, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy) destroy(vi->inst, vi->messenger, NULL);
    }
    vkDestroyInstance(vi->inst, NULL);
    memset(vi, 0, sizeof *vi);
}
