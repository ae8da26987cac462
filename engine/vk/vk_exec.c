/* Command streams on Vulkan. Each exec owns a command buffer, a fence, a
 * growing list of descriptor pools (reset at begin; one set per dispatch) and,
 * with LGPU_PROFILE, timestamp query pools.
 *
 * Barrier batching: the exec remembers the byte ranges written and read since
 * the last barrier. A dispatch gets one compute->compute memory barrier first
 * only if it reads or writes a range written since then (RAW/WAW) or writes a
 * range read since then (WAR); independent dispatches run back to back. */
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "vk/vk.h"

#define SETS_PER_POOL 256
#define QUERIES_PER_POOL 512 /* even: a dispatch's two timestamps share a pool */

typedef struct {
    VkBuffer buf;
    VkDeviceSize off, end;
} span;

typedef struct {
    span *v;
    int n;
    size_t cap;
} span_set;

struct lgpu_vk_exec {
    lgpu_vk_dev *vd;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool *dpools;
    int n_dpools, cur_dpool;
    uint32_t cur_used;
    VkPipeline bound;
    span_set written, read;
    VkQueryPool *qpools;
    int n_qpools;
    uint32_t n_queries;
    int *rows; /* profile row of each dispatch */
    size_t cap_rows;
    int n_dispatch, n_barrier;
};

static int span_add(span_set *s, VkBuffer buf, VkDeviceSize off, VkDeviceSize end) {
    int st = LGPU_GROW(s->v, s->cap, (size_t)s->n + 1, 16, "exec barrier tracking");
    if (st) return st;
    s->v[s->n++] = (span){buf, off, end};
    return 0;
}

static bool span_hits(const span_set *s, VkBuffer buf, VkDeviceSize off, VkDeviceSize end) {
    for (int i = 0; i < s->n; i++)
        if (s->v[i].buf == buf && s->v[i].off < end && off < s->v[i].end) return true;
    return false;
}

int lgpu_vk_exec_create(lgpu_vk_dev *vd, lgpu_vk_exec **out) {
    *out = NULL;
    lgpu_vk_exec *e = calloc(1, sizeof *e);
    if (!e) return lgpu_set_error(LGPU_ENOMEM, "exec");
    e->vd = vd;
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
                                  .queueFamilyIndex = vd->info.compute_family};
    int st = 0;
    LGPU_VK_TRY(st, vkCreateCommandPool(vd->dev, &pi, NULL, &e->pool), fail);
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = e->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    LGPU_VK_TRY(st, vkAllocateCommandBuffers(vd->dev, &ai, &e->cmd), fail);
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    LGPU_VK_TRY(st, vkCreateFence(vd->dev, &fi, NULL, &e->fence), fail);
    *out = e;
    return 0;
fail:
    lgpu_vk_exec_destroy(e);
    return st;
}

void lgpu_vk_exec_destroy(lgpu_vk_exec *e) {
    if (!e) return;
    VkDevice dev = e->vd->dev;
    for (int i = 0; i < e->n_dpools; i++) vkDestroyDescriptorPool(dev, e->dpools[i], NULL);
    for (int i = 0; i < e->n_qpools; i++) vkDestroyQueryPool(dev, e->qpools[i], NULL);
    if (e->fence) vkDestroyFence(dev, e->fence, NULL);
    if (e->pool) vkDestroyCommandPool(dev, e->pool, NULL); /* frees the command buffer */
    free(e->dpools);
    free(e->qpools);
    free(e->rows);
    free(e->written.v);
    free(e->read.v);
    free(e);
}

int lgpu_vk_exec_begin(lgpu_vk_exec *e) {
    VkDevice dev = e->vd->dev;
    /* also discards a recording that was never submitted */
    LGPU_VK_CHECK(vkResetCommandPool(dev, e->pool, 0));
    for (int i = 0; i < e->n_dpools; i++) LGPU_VK_CHECK(vkResetDescriptorPool(dev, e->dpools[i], 0));
    e->cur_dpool = 0;
    e->cur_used = 0;
    e->bound = VK_NULL_HANDLE;
    e->written.n = e->read.n = 0;
    e->n_queries = 0;
    e->n_dispatch = e->n_barrier = 0;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    LGPU_VK_CHECK(vkBeginCommandBuffer(e->cmd, &bi));
    return 0;
}

static int alloc_set(lgpu_vk_dev *vd, lgpu_vk_exec *e, VkDescriptorSetLayout dsl, VkDescriptorSet *out) {
    if (e->cur_used == SETS_PER_POOL) {
        e->cur_dpool++;
        e->cur_used = 0;
    }
    if (e->cur_dpool == e->n_dpools) { /* grow: another pool rather than failing */
        VkDescriptorPool *v = realloc(e->dpools, (size_t)(e->n_dpools + 1) * sizeof *v);
        if (!v) return lgpu_set_error(LGPU_ENOMEM, "descriptor pool list");
        e->dpools = v;
        /* enough of both kinds that maxSets is the only limit */
        VkDescriptorPoolSize ps[2] = {
            {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = SETS_PER_POOL * LGPU_VK_MAX_BINDINGS},
            {.type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, .descriptorCount = SETS_PER_POOL * LGPU_VK_MAX_BINDINGS},
        };
        VkDescriptorPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                         .maxSets = SETS_PER_POOL,
                                         .poolSizeCount = vd->info.caps.texel_buffers ? 2 : 1,
                                         .pPoolSizes = ps};
        LGPU_VK_CHECK(vkCreateDescriptorPool(vd->dev, &ci, NULL, &e->dpools[e->n_dpools]));
        e->n_dpools++;
    }
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = e->dpools[e->cur_dpool],
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &dsl};
    LGPU_VK_CHECK(vkAllocateDescriptorSets(vd->dev, &ai, out));
    e->cur_used++;
    return 0;
}

/* Query slot for the next timestamp pair; resets a pool on its first use in this recording. */
static int next_queries(lgpu_vk_dev *vd, lgpu_vk_exec *e, VkQueryPool *pool, uint32_t *slot) {
    int p = (int)(e->n_queries / QUERIES_PER_POOL);
    if (p == e->n_qpools) {
        VkQueryPool *v = realloc(e->qpools, (size_t)(e->n_qpools + 1) * sizeof *v);
        if (!v) return lgpu_set_error(LGPU_ENOMEM, "query pool list");
        e->qpools = v;
        VkQueryPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = QUERIES_PER_POOL};
        LGPU_VK_CHECK(vkCreateQueryPool(vd->dev, &ci, NULL, &e->qpools[e->n_qpools]));
        e->n_qpools++;
    }
    *pool = e->qpools[p];
    *slot = e->n_queries % QUERIES_PER_POOL;
    if (*slot == 0) vkCmdResetQueryPool(e->cmd, *pool, 0, QUERIES_PER_POOL);
    e->n_queries += 2;
    return 0;
}

int lgpu_vk_dispatch_check(const lgpu_vk_dev *vd, const lgpu_vk_dispatch *d) {
    const char *op = d->op ? d->op : d->shader ? d->shader : "?";
    if (d->n_bind < 0 || d->n_bind > LGPU_VK_MAX_BINDINGS)
        return lgpu_set_error(LGPU_EINVAL, "%s: %d bindings (max %d)", op, d->n_bind, LGPU_VK_MAX_BINDINGS);
    if (d->params_size > 128 || d->params_size % 4 || (d->params_size && !d->params))
        return lgpu_set_error(LGPU_EINVAL, "%s: push constants of %u bytes (need a multiple of 4, <= 128)", op,
                              d->params_size);
    for (int k = 0; k < 3; k++)
        if (d->groups[k] > vd->caps.max_wg_count[k])
            return lgpu_set_error(LGPU_EINVAL, "%s: %u workgroups in dimension %d (device max %u)", op, d->groups[k],
                                  k, vd->caps.max_wg_count[k]);
    return 0;
}

int lgpu_vk_exec_dispatch(lgpu_vk_exec *e, const lgpu_vk_dispatch *d) {
    lgpu_vk_dev *vd = e->vd;
    const char *op = d->op ? d->op : d->shader ? d->shader : "?";
    int st = lgpu_vk_dispatch_check(vd, d);
    if (st) return st;
    if (!d->groups[0] || !d->groups[1] || !d->groups[2]) return 0; /* empty grid: nothing to do */

    /* texel bindings: a view from the binding's offset over whole texels (lgpu_vk_texel_view_elems) */
    VkBufferView views[LGPU_VK_MAX_BINDINGS] = {0};
    for (int i = 0; i < d->n_bind; i++) {
        const lgpu_vk_binding *b = &d->bind[i];
        if (!b->texel) continue;
        VkDeviceSize range = (VkDeviceSize)lgpu_vk_texel_view_elems(&vd->caps, b->seg, b->off) * LGPU_VK_TEXEL_BYTES;
        if ((st = lgpu_vk_texel_view(vd, b->seg, b->off, range, &views[i]))) return st;
    }
    uint32_t mask = 0;
    for (int i = 0; i < d->n_bind; i++) mask |= d->bind[i].texel ? 1u << i : 0u;
    VkPipeline pipe;
    const lgpu_vk_layout *lay;
    st = lgpu_vk_pipeline_get(vd, d->shader, d->spec, d->n_spec, mask, &pipe, &lay);
    if (st) return st;

    bool need = false;
    for (int i = 0; i < d->n_bind && !need; i++) {
        const lgpu_vk_binding *b = &d->bind[i];
        VkDeviceSize end = b->off + b->size;
        need = span_hits(&e->written, b->seg->buf, b->off, end) ||
               (b->write && span_hits(&e->read, b->seg->buf, b->off, end));
    }
    if (need) {
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
                              .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
        vkCmdPipelineBarrier(e->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                             &mb, 0, NULL, 0, NULL);
        e->written.n = e->read.n = 0;
        e->n_barrier++;
    }
    for (int i = 0; i < d->n_bind; i++) {
        const lgpu_vk_binding *b = &d->bind[i];
        if ((st = span_add(b->write ? &e->written : &e->read, b->seg->buf, b->off, b->off + b->size))) return st;
    }

    VkDescriptorSet set;
    if ((st = alloc_set(vd, e, lay->dsl, &set))) return st;
    VkDescriptorBufferInfo bi[LGPU_VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[LGPU_VK_MAX_BINDINGS];
    for (int i = 0; i < LGPU_VK_MAX_BINDINGS; i++) {
        bool tx = mask & (1u << i);
        bi[i] = i < d->n_bind ? (VkDescriptorBufferInfo){d->bind[i].seg->buf, d->bind[i].off, d->bind[i].size}
                              : (VkDescriptorBufferInfo){vd->dummy, 0, VK_WHOLE_SIZE};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = tx ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                                           : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = tx ? NULL : &bi[i],
                                      .pTexelBufferView = tx ? &views[i] : NULL};
    }
    vkUpdateDescriptorSets(vd->dev, LGPU_VK_MAX_BINDINGS, w, 0, NULL);

    if (pipe != e->bound) {
        vkCmdBindPipeline(e->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
        e->bound = pipe;
    }
    vkCmdBindDescriptorSets(e->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, lay->layout, 0, 1, &set, 0, NULL);
    if (d->params_size)
        vkCmdPushConstants(e->cmd, lay->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, d->params_size, d->params);

    VkQueryPool qp = VK_NULL_HANDLE;
    uint32_t slot = 0;
    if (vd->profile) {
        if ((st = LGPU_GROW(e->rows, e->cap_rows, (size_t)e->n_dispatch + 1, 64, "profile rows"))) return st;
        if ((st = next_queries(vd, e, &qp, &slot))) return st;
        e->rows[e->n_dispatch] = lgpu_vk_prof_intern(vd, op);
        /* both at the compute stage: the span from "all earlier work done" to "this done" */
        vkCmdWriteTimestamp(e->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, qp, slot);
    }
    vkCmdDispatch(e->cmd, d->groups[0], d->groups[1], d->groups[2]);
    if (vd->profile) vkCmdWriteTimestamp(e->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, qp, slot + 1);
    e->n_dispatch++;
    return 0;
}

static int collect_profile(lgpu_vk_dev *vd, lgpu_vk_exec *e) {
    uint64_t ts[QUERIES_PER_POOL];
    double period = vd->info.timestamp_period;
    for (uint32_t q0 = 0; q0 < e->n_queries; q0 += QUERIES_PER_POOL) {
        uint32_t n = e->n_queries - q0 < QUERIES_PER_POOL ? e->n_queries - q0 : QUERIES_PER_POOL;
        LGPU_VK_CHECK(vkGetQueryPoolResults(vd->dev, e->qpools[q0 / QUERIES_PER_POOL], 0, n, sizeof ts, ts,
                                            sizeof ts[0], VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
        for (uint32_t k = 0; k < n; k += 2) {
            uint64_t dt = ((ts[k + 1] & vd->ts_mask) - (ts[k] & vd->ts_mask)) & vd->ts_mask;
            lgpu_vk_prof_add(vd, e->rows[(q0 + k) / 2], (double)dt * period);
        }
    }
    return 0;
}

int lgpu_vk_exec_submit(lgpu_vk_exec *e) {
    lgpu_vk_dev *vd = e->vd;
    /* results visible to the host and to later submissions (transfers, other execs) */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_MEMORY_READ_BIT |
                                           VK_ACCESS_MEMORY_WRITE_BIT};
    vkCmdPipelineBarrier(e->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    LGPU_VK_CHECK(vkEndCommandBuffer(e->cmd));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &e->cmd};
    pthread_mutex_lock(&vd->queue_lock);
    VkResult r = vkQueueSubmit(vd->queue, 1, &si, e->fence);
    pthread_mutex_unlock(&vd->queue_lock);
    if (r != VK_SUCCESS) return lgpu_vk_fail(r, "vkQueueSubmit", __FILE__, __LINE__);
    LGPU_VK_CHECK(vkWaitForFences(vd->dev, 1, &e->fence, VK_TRUE, UINT64_MAX));
    LGPU_VK_CHECK(vkResetFences(vd->dev, 1, &e->fence));
    if (vd->profile && e->n_queries) return collect_profile(vd, e);
    return 0;
}

void lgpu_vk_exec_stats(const lgpu_vk_exec *e, int *dispatches, int *barriers) {
    if (dispatches) *dispatches = e ? e->n_dispatch : 0;
    if (barriers) *barriers = e ? e->n_barrier : 0;
}
