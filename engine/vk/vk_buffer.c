/* Buffers on a Vulkan device: one VkBuffer per segment, each sub-allocated
 * separately. Host-visible coherent memory (UMA, lavapipe) is read and written
 * through its persistent map; other memory goes through a reusable staging
 * buffer in chunks.
 *
 * Synchronisation: execs submit and wait, so no device work is in flight when
 * a write/read starts, except submissions from other threads; callers must not
 * write or read a buffer that an exec recorded but not yet submitted uses. */
#include <stdlib.h>
#include <string.h>

#include "vk/vk.h"

#define STAGING_SIZE ((VkDeviceSize)16 << 20)

int lgpu_vk_buf_alloc(lgpu_buf *buf) {
    lgpu_vk_dev *vd = buf->dev->vk;
    int st = lgpu_vk_mem_precheck(vd, buf->size);
    if (st) return st;
    struct lgpu_vk_seg *vs = calloc((size_t)buf->n_seg, sizeof *vs);
    if (!vs) return lgpu_set_error(LGPU_ENOMEM, "buffer of %zu bytes: segment table", buf->size);
    for (int i = 0; i < buf->n_seg; i++) {
        buf->seg[i].vk = &vs[i];
        /* whole 16-byte texels, so a texel view can reach the last bytes */
        vs[i].size = (buf->seg[i].len + LGPU_TEXEL_BYTES - 1) / LGPU_TEXEL_BYTES * LGPU_TEXEL_BYTES;
        st = lgpu_vk_buffer_create(vd, vs[i].size, false, &vs[i].buf, &vs[i].mem);
        if (st) {
            lgpu_vk_buf_free(buf);
            return st;
        }
        buf->seg[i].host = vs[i].mem.map;
    }
    return 0;
}

void lgpu_vk_buf_free(lgpu_buf *buf) {
    if (!buf->n_seg || !buf->seg[0].vk) return;
    struct lgpu_vk_seg *vs = buf->seg[0].vk;
    lgpu_vk_dev *vd = buf->dev->vk;
    for (int i = 0; i < buf->n_seg; i++) {
        for (int j = 0; j < vs[i].n_views; j++) vkDestroyBufferView(vd->dev, vs[i].views[j].view, NULL);
        free(vs[i].views);
        if (vs[i].buf) lgpu_vk_buffer_destroy(vd, vs[i].buf, &vs[i].mem);
        buf->seg[i].vk = NULL;
        buf->seg[i].host = NULL;
    }
    free(vs);
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

/* Apply op to [off, off+n) segment by segment. */
static int each_segment(const lgpu_buf *buf, size_t off, uint8_t *host, size_t n, xfer_op op) {
    lgpu_vk_dev *vd = buf->dev->vk;
    while (n) {
        int i = lgpu_buf_seg_index(buf, off);
        const lgpu_seg *s = &buf->seg[i];
        size_t in = off - s->start, k = s->len - in < n ? s->len - in : n;
        if (s->host) {
            if (op == OP_WRITE) memcpy(s->host + in, host, k);
            else if (op == OP_READ) memcpy(host, s->host + in, k);
            else memset(s->host + in, 0, k);
        } else {
            int st = staged(vd, s->vk->buf, in, host, k, op);
            if (st) return st;
        }
        off += k;
        n -= k;
        if (host) host += k;
    }
    return 0;
}

int lgpu_vk_buf_write(lgpu_buf *buf, size_t off, const void *src, size_t n) {
    return each_segment(buf, off, (uint8_t *)(uintptr_t)src, n, OP_WRITE);
}

int lgpu_vk_buf_read(const lgpu_buf *buf, size_t off, void *dst, size_t n) {
    return each_segment(buf, off, dst, n, OP_READ);
}

int lgpu_vk_buf_fill_zero(lgpu_buf *buf, size_t off, size_t n) { return each_segment(buf, off, NULL, n, OP_ZERO); }

int lgpu_vk_texel_view(lgpu_vk_dev *vd, struct lgpu_vk_seg *seg, VkDeviceSize off, VkDeviceSize range,
                       VkBufferView *out) {
    pthread_mutex_lock(&vd->view_lock);
    int st = 0;
    for (int i = 0; i < seg->n_views; i++)
        if (seg->views[i].off == off && seg->views[i].range == range) {
            *out = seg->views[i].view;
            goto done;
        }
    if (seg->n_views == seg->cap_views) {
        int cap = seg->cap_views ? 2 * seg->cap_views : 2;
        lgpu_vk_view *v = realloc(seg->views, (size_t)cap * sizeof *v);
        if (!v) {
            st = lgpu_set_error(LGPU_ENOMEM, "texel buffer view list");
            goto done;
        }
        seg->views = v;
        seg->cap_views = cap;
    }
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
