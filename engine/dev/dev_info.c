/* lgpu_dev_print_info (lgpu/device.h): the `lgpu info` listing, from the
 * Vulkan backend's device enumeration. */
#include "lgpu/device.h"
#include "vk/vk.h"

int lgpu_dev_print_info(FILE *f, const char *selector) { return lgpu_vk_print_info(f, selector); }
