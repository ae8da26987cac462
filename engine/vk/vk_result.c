/* VkResult names and the failure path of LGPU_VK_CHECK. */
#include "vk/vk.h"

const char *lgpu_vk_result_name(VkResult r) {
    switch (r) {
#define R(x) \
    case x: return #x;
        R(VK_SUCCESS)
        R(VK_NOT_READY)
        R(VK_TIMEOUT)
        R(VK_EVENT_SET)
        R(VK_EVENT_RESET)
        R(VK_INCOMPLETE)
        R(VK_ERROR_OUT_OF_HOST_MEMORY)
        R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        R(VK_ERROR_INITIALIZATION_FAILED)
        R(VK_ERROR_DEVICE_LOST)
        R(VK_ERROR_MEMORY_MAP_FAILED)
        R(VK_ERROR_LAYER_NOT_PRESENT)
        R(VK_ERROR_EXTENSION_NOT_PRESENT)
        R(VK_ERROR_FEATURE_NOT_PRESENT)
        R(VK_ERROR_INCOMPATIBLE_DRIVER)
        R(VK_ERROR_TOO_MANY_OBJECTS)
        R(VK_ERROR_FORMAT_NOT_SUPPORTED)
        R(VK_ERROR_FRAGMENTED_POOL)
        R(VK_ERROR_UNKNOWN)
        R(VK_ERROR_OUT_OF_POOL_MEMORY)
        R(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        R(VK_ERROR_FRAGMENTATION)
        R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        R(VK_PIPELINE_COMPILE_REQUIRED)
        R(VK_ERROR_VALIDATION_FAILED_EXT)
#undef R
    default: return "VK_ERROR_(unknown)";
    }
}

int lgpu_vk_fail(VkResult r, const char *what, const char *file, int line) {
    int st = r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? LGPU_EDEVMEM
             : r == VK_ERROR_OUT_OF_HOST_MEMORY ? LGPU_ENOMEM
                                                 : LGPU_EVULKAN;
    lgpu_log(LGPU_LOG_ERROR, "%s:%d: %s failed: %s (%d)", file, line, what, lgpu_vk_result_name(r), (int)r);
    return lgpu_set_error(st, "%s:%d: %s failed: %s", file, line, what, lgpu_vk_result_name(r));
}
