/* Device memory: large VkDeviceMemory blocks per memory type, sub-allocated
 * first-fit from a sorted free list. A request larger than a block gets its
 * own (dedicated) allocation. Host-visible coherent blocks are mapped once,
 * persistently. New blocks are checked against the heap budget first
 * (VK_EXT_memory_budget, else the heap size) so a full device reports
 * LGPU_EDEVMEM with numbers instead of failing deep in the driver. */
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "vk/vk.h"

#define MiB (1024.0 * 1024.0)

typedef struct {
    VkDeviceSize off, size;
} range;

struct lgpu_vk_block {
    VkDeviceMemory mem;
    VkDeviceSize size;
    uint32_t type;
    uint8_t *map;
    bool dedicated;
    int n_allocs;
    range *free; /* sorted by offset, non-adjacent */
    int n_free;
    size_t cap_free;
    lgpu_vk_block *next;
};

int lgpu_vk_memory_init(lgpu_vk_dev *vd) {
    lgpu_vk_memory *m = &vd->mem;
    pthread_mutex_init(&m->lock, NULL);
    vkGetPhysicalDeviceMemoryProperties(vd->info.phys, &m->props);
    /* the largest device-local heap (there is always at least one) */
    m->main_heap = 0;
    for (uint32_t i = 0; i < m->props.memoryHeapCount; i++) {
        const VkMemoryHeap *h = &m->props.memoryHeaps[i], *best = &m->props.memoryHeaps[m->main_heap];
        bool dl = h->flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT, best_dl = best->flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
        if ((dl && !best_dl) || (dl == best_dl && h->size > best->size)) m->main_heap = (int)i;
    }
    /* UMA and CPU devices: device-local memory is host memory, so map it */
    m->prefer_host_visible = vd->info.type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
                             vd->info.type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    VkDeviceSize bs = 256ull << 20;
    VkDeviceSize heap = m->props.memoryHeaps[m->main_heap].size;
    if (heap / 8 < bs) bs = heap / 8;
    if (vd->info.max_alloc_size && vd->info.max_alloc_size < bs) bs = vd->info.max_alloc_size;
    bs &= ~((VkDeviceSize)(1u << 20) - 1);
    if (bs < (1u << 20)) bs = 1u << 20;
    m->block_size = bs;
    lgpu_log(LGPU_LOG_DEBUG, "vk memory: main heap %d (%.0f MiB), block %.0f MiB%s", m->main_heap, heap / MiB,
             bs / MiB, m->prefer_host_visible ? ", host-visible preferred" : "");
    return 0;
}

static void block_release(lgpu_vk_dev *vd, lgpu_vk_block *b) {
    lgpu_vk_memory *m = &vd->mem;
    if (b->map) vkUnmapMemory(vd->dev, b->mem);
    vkFreeMemory(vd->dev, b->mem, NULL);
    m->heap_used[m->props.memoryTypes[b->type].heapIndex] -= b->size;
    free(b->free);
    free(b);
}

void lgpu_vk_memory_destroy(lgpu_vk_dev *vd) {
    lgpu_vk_memory *m = &vd->mem;
    for (lgpu_vk_block *b = m->blocks, *next; b; b = next) {
        next = b->next;
        if (b->n_allocs) lgpu_log(LGPU_LOG_WARN, "vk memory: %d allocation(s) still live at device close", b->n_allocs);
        block_release(vd, b);
    }
    m->blocks = NULL;
    pthread_mutex_destroy(&m->lock);
}

/* First memory type in `bits` having all of `want`, or -1. */
static int find_type(const lgpu_vk_memory *m, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < m->props.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (m->props.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

static int choose_type(const lgpu_vk_dev *vd, uint32_t bits, bool host_visible) {
    const lgpu_vk_memory *m = &vd->mem;
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    int t;
    if (host_visible) {
        if ((t = find_type(m, bits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT)) >= 0) return t;
        return find_type(m, bits, hv);
    }
    if (m->prefer_host_visible && (t = find_type(m, bits, dl | hv)) >= 0) return t;
    if ((t = find_type(m, bits, dl)) >= 0) return t;
    return find_type(m, bits, 0);
}

/* Bytes of heap `heap` we may still allocate. */
static VkDeviceSize heap_avail(lgpu_vk_dev *vd, int heap, VkDeviceSize *budget_out) {
    lgpu_vk_memory *m = &vd->mem;
    VkDeviceSize budget = m->props.memoryHeaps[heap].size, used = m->heap_used[heap];
    if (vd->info.has_budget) {
        VkPhysicalDeviceMemoryBudgetPropertiesEXT bud = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
        VkPhysicalDeviceMemoryProperties2 mp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                                .pNext = &bud};
        vkGetPhysicalDeviceMemoryProperties2(vd->info.phys, &mp);
        budget = bud.heapBudget[heap];
        used = bud.heapUsage[heap]; /* includes other processes' share of the budget */
    }
    if (budget_out) *budget_out = budget;
    return used < budget ? budget - used : 0;
}

/* Release empty non-dedicated blocks (kept as a cache); returns bytes freed. */
static VkDeviceSize trim(lgpu_vk_dev *vd) {
    VkDeviceSize freed = 0;
    for (lgpu_vk_block **pb = &vd->mem.blocks; *pb;) {
        lgpu_vk_block *b = *pb;
        if (!b->n_allocs) {
            *pb = b->next;
            freed += b->size;
            block_release(vd, b);
        } else {
            pb = &b->next;
        }
    }
    return freed;
}

static int devmem_error(lgpu_vk_dev *vd, VkDeviceSize size, int heap, const char *how) {
    VkDeviceSize budget = 0, avail = heap_avail(vd, heap, &budget);
    size_t held = 0;
    for (unsigned i = 0; i < VK_MAX_MEMORY_HEAPS; i++) held += vd->mem.heap_used[i];
    return lgpu_set_error(LGPU_EDEVMEM,
                          "out of device memory: %.1f MiB requested (%s); heap %d has %.1f MiB free of a %.1f MiB "
                          "budget%s; lgpu holds %.1f MiB",
                          size / MiB, how, heap, avail / MiB, budget / MiB,
                          vd->info.has_budget ? "" : " (heap size, no VK_EXT_memory_budget)", held / MiB);
}

static int add_range(lgpu_vk_block *b, int at, VkDeviceSize off, VkDeviceSize size) {
    int st = LGPU_GROW(b->free, b->cap_free, (size_t)b->n_free + 1, 8, "device memory free list");
    if (st) return st;
    memmove(b->free + at + 1, b->free + at, (size_t)(b->n_free - at) * sizeof *b->free);
    b->free[at] = (range){off, size};
    b->n_free++;
    return 0;
}

static void del_range(lgpu_vk_block *b, int at) {
    memmove(b->free + at, b->free + at + 1, (size_t)(b->n_free - at - 1) * sizeof *b->free);
    b->n_free--;
}

/* First fit inside a block; returns 1 on success, 0 if it does not fit, < 0 on error. */
static int block_take(lgpu_vk_block *b, VkDeviceSize size, VkDeviceSize align, VkDeviceSize *off) {
    for (int i = 0; i < b->n_free; i++) {
        range r = b->free[i];
        VkDeviceSize a = (r.off + align - 1) / align * align;
        if (a + size > r.off + r.size) continue;
        VkDeviceSize tail_off = a + size, tail = r.off + r.size - tail_off;
        if (a > r.off) {
            b->free[i].size = a - r.off; /* the alignment gap stays free */
            if (tail && add_range(b, i + 1, tail_off, tail)) return LGPU_ENOMEM;
        } else if (tail) {
            b->free[i] = (range){tail_off, tail};
        } else {
            del_range(b, i);
        }
        *off = a;
        b->n_allocs++;
        return 1;
    }
    return 0;
}

static void block_give(lgpu_vk_block *b, VkDeviceSize off, VkDeviceSize size) {
    int i = 0;
    while (i < b->n_free && b->free[i].off < off) i++;
    bool join_prev = i > 0 && b->free[i - 1].off + b->free[i - 1].size == off;
    bool join_next = i < b->n_free && off + size == b->free[i].off;
    if (join_prev && join_next) {
        b->free[i - 1].size += size + b->free[i].size;
        del_range(b, i);
    } else if (join_prev) {
        b->free[i - 1].size += size;
    } else if (join_next) {
        b->free[i].off = off;
        b->free[i].size += size;
    } else if (add_range(b, i, off, size)) {
        /* cannot record the hole (host OOM): leak it inside the block rather than corrupt the list */
        lgpu_log(LGPU_LOG_WARN, "vk memory: lost %.1f MiB to a host allocation failure", size / MiB);
    }
    b->n_allocs--;
}

static int new_block(lgpu_vk_dev *vd, int type, VkDeviceSize size, bool dedicated, lgpu_vk_block **out) {
    lgpu_vk_memory *m = &vd->mem;
    lgpu_vk_block *b = calloc(1, sizeof *b);
    if (!b) return lgpu_set_error(LGPU_ENOMEM, "vk memory: block header");
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = size,
                               .memoryTypeIndex = (uint32_t)type};
    VkResult r = vkAllocateMemory(vd->dev, &ai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        free(b);
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
            return devmem_error(vd, size, (int)m->props.memoryTypes[type].heapIndex, "vkAllocateMemory failed");
        return lgpu_vk_fail(r, "vkAllocateMemory", __FILE__, __LINE__);
    }
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if ((m->props.memoryTypes[type].propertyFlags & hv) == hv) {
        void *p = NULL;
        r = vkMapMemory(vd->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &p);
        if (r != VK_SUCCESS) {
            vkFreeMemory(vd->dev, b->mem, NULL);
            free(b);
            return lgpu_vk_fail(r, "vkMapMemory", __FILE__, __LINE__);
        }
        b->map = p;
    }
    b->size = size;
    b->type = (uint32_t)type;
    b->dedicated = dedicated;
    if (add_range(b, 0, 0, size)) {
        if (b->map) vkUnmapMemory(vd->dev, b->mem);
        vkFreeMemory(vd->dev, b->mem, NULL);
        free(b);
        return lgpu_set_error(LGPU_ENOMEM, "vk memory: free list");
    }
    m->heap_used[m->props.memoryTypes[type].heapIndex] += size;
    lgpu_log(LGPU_LOG_DEBUG, "vk memory: %s block of %.1f MiB, type %d (flags 0x%x, heap %u)%s",
             dedicated ? "dedicated" : "new", size / MiB, type, m->props.memoryTypes[type].propertyFlags,
             m->props.memoryTypes[type].heapIndex, b->map ? ", mapped" : "");
    b->next = m->blocks;
    m->blocks = b;
    *out = b;
    return 0;
}

static int alloc_locked(lgpu_vk_dev *vd, const VkMemoryRequirements *req, bool host_visible, lgpu_vk_alloc *out) {
    lgpu_vk_memory *m = &vd->mem;
    int type = choose_type(vd, req->memoryTypeBits, host_visible);
    if (type < 0)
        return lgpu_set_error(LGPU_EUNSUPPORTED, "no %s memory type in mask 0x%x",
                              host_visible ? "host-visible coherent" : "usable", req->memoryTypeBits);
    VkDeviceSize align = req->alignment ? req->alignment : 1, off = 0;
    lgpu_vk_block *b = NULL;
    bool dedicated = req->size > m->block_size;
    if (!dedicated)
        for (b = m->blocks; b; b = b->next) {
            if (b->dedicated || b->type != (uint32_t)type) continue;
            int got = block_take(b, req->size, align, &off);
            if (got < 0) return lgpu_set_error(LGPU_ENOMEM, "vk memory: free list");
            if (got) break;
        }
    if (!b) {
        int heap = (int)m->props.memoryTypes[type].heapIndex;
        VkDeviceSize size = dedicated ? req->size : m->block_size;
        VkDeviceSize avail = heap_avail(vd, heap, NULL);
        if (size > avail && trim(vd)) avail = heap_avail(vd, heap, NULL);
        if (req->size > avail) return devmem_error(vd, req->size, heap, "over budget");
        if (size > avail) { /* near the budget: a smaller block that still holds the request */
            VkDeviceSize shrunk = avail & ~(VkDeviceSize)((1u << 20) - 1);
            size = shrunk > req->size ? shrunk : req->size;
        }
        int st = new_block(vd, type, size, dedicated, &b);
        if (st == LGPU_EDEVMEM && trim(vd)) st = new_block(vd, type, size, dedicated, &b);
        if (st) return st;
        if (block_take(b, req->size, align, &off) != 1) return lgpu_set_error(LGPU_ENOMEM, "vk memory: free list");
    }
    out->block = b;
    out->mem = b->mem;
    out->off = off;
    out->size = req->size;
    out->map = b->map && !vd->force_staging ? b->map + off : NULL;
    return 0;
}

int lgpu_vk_mem_alloc(lgpu_vk_dev *vd, const VkMemoryRequirements *req, bool host_visible, lgpu_vk_alloc *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&vd->mem.lock);
    int st = alloc_locked(vd, req, host_visible, out);
    pthread_mutex_unlock(&vd->mem.lock);
    if (st == 0 && host_visible && out->block->map) out->map = out->block->map + out->off; /* staging always maps */
    return st;
}

void lgpu_vk_mem_free(lgpu_vk_dev *vd, lgpu_vk_alloc *a) {
    if (!a || !a->block) return;
    lgpu_vk_memory *m = &vd->mem;
    pthread_mutex_lock(&m->lock);
    lgpu_vk_block *b = a->block;
    block_give(b, a->off, a->size);
    if (!b->n_allocs) {
        /* keep one empty regular block per type as a cache; drop the rest */
        bool other = false;
        for (lgpu_vk_block *o = m->blocks; o && !other; o = o->next)
            other = o != b && !o->dedicated && o->type == b->type;
        if (b->dedicated || other) {
            for (lgpu_vk_block **pb = &m->blocks; *pb; pb = &(*pb)->next)
                if (*pb == b) {
                    *pb = b->next;
                    break;
                }
            block_release(vd, b);
        }
    }
    pthread_mutex_unlock(&m->lock);
    memset(a, 0, sizeof *a);
}

int lgpu_vk_mem_precheck(lgpu_vk_dev *vd, size_t size) {
    lgpu_vk_memory *m = &vd->mem;
    pthread_mutex_lock(&m->lock);
    /* free = budget headroom + what our blocks hold but do not hand out */
    VkDeviceSize slack = 0;
    for (lgpu_vk_block *b = m->blocks; b; b = b->next)
        if ((int)m->props.memoryTypes[b->type].heapIndex == m->main_heap)
            for (int i = 0; i < b->n_free; i++) slack += b->free[i].size;
    VkDeviceSize avail = heap_avail(vd, m->main_heap, NULL) + slack;
    int st = size > avail ? devmem_error(vd, size, m->main_heap, "buffer larger than the free budget") : 0;
    pthread_mutex_unlock(&m->lock);
    return st;
}

void lgpu_vk_mem_budget(lgpu_vk_dev *vd, size_t *used, size_t *budget) {
    pthread_mutex_lock(&vd->mem.lock);
    VkDeviceSize b = 0, held = 0;
    heap_avail(vd, vd->mem.main_heap, &b);
    for (unsigned i = 0; i < VK_MAX_MEMORY_HEAPS; i++) held += vd->mem.heap_used[i];
    pthread_mutex_unlock(&vd->mem.lock);
    if (used) *used = (size_t)held;
    if (budget) *budget = (size_t)b;
}

int lgpu_vk_buffer_create(lgpu_vk_dev *vd, VkDeviceSize size, bool host_visible, VkBuffer *buf, lgpu_vk_alloc *mem) {
    *buf = VK_NULL_HANDLE;
    memset(mem, 0, sizeof *mem);
    VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT |
                 (vd->info.caps.texel_buffers ? VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT : 0),
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    LGPU_VK_CHECK(vkCreateBuffer(vd->dev, &bi, NULL, buf));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vd->dev, *buf, &req);
    int st = lgpu_vk_mem_alloc(vd, &req, host_visible, mem);
    if (st == 0) {
        VkResult r = vkBindBufferMemory(vd->dev, *buf, mem->mem, mem->off);
        if (r != VK_SUCCESS) {
            st = lgpu_vk_fail(r, "vkBindBufferMemory", __FILE__, __LINE__);
            lgpu_vk_mem_free(vd, mem);
        }
    }
    if (st) {
        vkDestroyBuffer(vd->dev, *buf, NULL);
        *buf = VK_NULL_HANDLE;
    }
    return st;
}

void lgpu_vk_buffer_destroy(lgpu_vk_dev *vd, VkBuffer buf, lgpu_vk_alloc *mem) {
    if (buf) vkDestroyBuffer(vd->dev, buf, NULL);
    lgpu_vk_mem_free(vd, mem);
}
