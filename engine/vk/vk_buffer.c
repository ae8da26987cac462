/* Segments on a Vulkan device: one VkBuffer each, sub-allocated separately.
 * Host-visible coherent memory (UMA, lavapipe) is read and written through
 * its persistent map; other memory goes through a reusable staging buffer in
 * chunks.
 *
 * Synchronisation: execs submit and wait, so no device work is in flight when
 * a write/read starts, except submissions from other threads; callers must not
 * write or read a segment that an exec recorded but not yet submitted uses. */
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "vk/vk.h"

#define STAGING_SIZE ((VkDeviceSize)16 << 20)

int lgpu_vk_seg_create(lgpu_vk_dev *vd, size_t len, lgpu_vk_seg *s) {
    memset(s, 0, sizeof *s);
    /* whole 16-byte texels, so a texel view can reach the last bytes */
    VkDeviceSize size = (len + LGPU_VK_TEXEL_BYTES - 1) / LGPU_VK_TEXEL_BYTES * LGPU_VK_TEXEL_BYTES;
    int st = lgpu_vk_buffer_create(vd, size, false, &s->buf, &s->mem);
    if (st) {
        memset(s, 0, sizeof *s);
        return st;
    }
    s->size = size;
    return 0;
}

void lgpu_vk_seg_destroy(lgpu_vk_dev *vd, lgpu_vk_seg *s) {
    for (int j = 0; j < s->n_views; j++) vkDestroyBufferView(vd->dev, s->views[j].view, NULL);
    free(s->views);
    if (s->buf) lgpu_vk_buffer_destroy(vd, s->buf, &s->mem);
    memset(s, 0, sizeof *s);
}

/* Staging buffer, created on first use; caller holds xfer_lock. */
static int staging_get(lgpu_vk_dev *vd) {
    if (vd->staging) return 0;
    int st = lgpu_vk_buffer_create(vd, STAGING_SIZE, true, &vd->staging, &vd->staging_mem);
    if (st) return st;
    if (!vd->staging_mem.map) {
        lgpu_vk_buffer_destroy(vd, vd->staging, &vd->staging_mem);
        vd->staging = VK_NULL_HANDLE;
        return lgpu_set_error(LGPU_EUNSUPPORTED, "staging buffer memory is not host visible");
    }
    return 0;
}

/* One staged copy: to_device copies staging[0, n) -> dst[off, off+n), else src[off..] -> staging. */
static int xfer_copy(lgpu_vk_dev *vd, VkBuffer devbuf, VkDeviceSize off, VkDeviceSize n, bool to_device) {
    VkCommandBuffer cb = vd->xfer_cmd;
    LGPU_VK_CHECK(vkResetCommandBuffer(cb, 0));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    LGPU_VK_CHECK(vkBeginCommandBuffer(cb, &bi));
    VkBufferCopy region = {.srcOffset = to_device ? 0 : off, .dstOffset = to_device ? off : 0, .size = n};
    if (to_device) vkCmdCopyBuffer(cb, vd->staging, devbuf, 1, &region);
    else vkCmdCopyBuffer(cb, devbuf, vd->staging, 1, &region);
    /* make the copy visible to later shaders / to the host */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = to_device ? VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT : VK_ACCESS_HOST_READ_BIT,
    };
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         to_device ? VK_PIPELINE_STAGE_ALL_COMMANDS_BIT : VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0,
                         NULL, 0, NULL);
    LGPU_VK_CHECK(vkEndCommandBuffer(cb));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    pthread_mutex_lock(&vd->queue_lock);
    VkResult r = vkQueueSubmit(vd->queue, 1, &si, vd->xfer_fence);
    pthread_mutex_unlock(&vd->queue_lock);
    if (r != VK_SUCCESS) return lgpu_vk_fail(r, "vkQueueSubmit", __FILE__, __LINE__);
    LGPU_VK_CHECK(vkWaitForFences(vd->dev, 1, &vd->xfer_fence, VK_TRUE, UINT64_MAX));
    LGPU_VK_CHECK(vkResetFences(vd->dev, 1, &vd->xfer_fence));
    return 0;
}

typedef enum { OP_WRITE, OP_READ, OP_ZERO } xfer_op;

static int staged(lgpu_vk_dev *vd, VkBuffer devbuf, size_t off, uint8_t *host, size_t n, xfer_op op) {
    pthread_mutex_lock(&vd->xfer_lock);
    int st = staging_get(vd);
    bool zeroed = false;
    for (size_t done = 0; st == 0 && done < n;) {
        size_t k = n - done < STAGING_SIZE ? n - done : (size_t)STAGING_SIZE;
        uint8_t *map = vd->staging_mem.map;
        if (op == OP_WRITE) memcpy(map, host + done, k);
        if (op == OP_ZERO && !zeroed) {
            memset(map, 0, k); /* first chunk is the largest */
            zeroed = true;
        }
        st = xfer_copy(vd, devbuf, off + done, k, op != OP_READ);
        if (st == 0 && op == OP_READ) memcpy(host + done, map, k);
        done += k;
    }
    pthread_mutex_unlock(&vd->xfer_lock);
    return st;
}

/* op on bytes [off, off + n) of one segment: memcpy when mapped, else staged. */
static int seg_copy(lgpu_vk_dev *vd, const lgpu_vk_seg *s, size_t off, uint8_t *host, size_t n, xfer_op op) {
    if (!n) return 0;
    uint8_t *map = s->mem.map;
    if (!map) return staged(vd, s->buf, off, host, n, op);
    if (op == OP_WRITE) memcpy(map + off, host, n);
    else if (op == OP_READ) memcpy(host, map + off, n);
    else memset(map + off, 0, n);
    return 0;
}

int lgpu_vk_seg_write(lgpu_vk_dev *vd, lgpu_vk_seg *s, size_t off, const void *src, size_t n) {
    return seg_copy(vd, s, off, (uint8_t *)(uintptr_t)src, n, OP_WRITE);
}

int lgpu_vk_seg_read(lgpu_vk_dev *vd, const lgpu_vk_seg *s, size_t off, void *dst, size_t n) {
    return seg_copy(vd, s, off, dst, n, OP_READ);
}

int lgpu_vk_seg_fill_zero(lgpu_vk_dev *vd, lgpu_vk_seg *s, size_t off, size_t n) {
    return seg_copy(vd, s, off, NULL, n, OP_ZERO);
}

int lgpu_vk_texel_view(lgpu_vk_dev *vd, lgpu_vk_seg *seg, VkDeviceSize off, VkDeviceSize range, VkBufferView *out) {
    pthread_mutex_lock(&vd->view_lock);
    int st = 0;
    for (int i = 0; i < seg->n_views; i++)
        if (seg->views[i].off == off && seg->views[i].range == range) {
            *out = seg->views[i].view;
            goto done;
        }
    if ((st = LGPU_GROW(seg->views, seg->cap_views, (size_t)seg->n_views + 1, 2, "texel buffer view list"))) goto done;
    VkBufferViewCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                 .buffer = seg->buf,
                                 .format = VK_FORMAT_R32G32B32A32_UINT,
                                 .offset = off,
                                 .range = range};
    VkResult r = vkCreateBufferView(vd->dev, &ci, NULL, out);
    if (r != VK_SUCCESS) {
        st = lgpu_vk_fail(r, "vkCreateBufferView", __FILE__, __LINE__);
        goto done;
    }
    seg->views[seg->n_views++] = (lgpu_vk_view){off, range, *out};
done:
    pthread_mutex_unlock(&vd->view_lock);
    return st;
}
