/* SSE framing (see sse.h). */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

int srv_sse_begin(srv_http_req *r) { return srv_begin_chunked(r, "text/event-stream"); }

int srv_sse_json(srv_http_req *r, json_t *json) {
    char *s = json ? json_dumps(json, SRV_JSON_FLAGS) : NULL;
    json_decref(json);
    if (!s) return -1;
    size_t n = strlen(s);
    char *ev = malloc(n + 9);
    int st = -1;
    if (ev) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, s, n);
        memcpy(ev + 6 + n, "\n\n", 2);
        st = srv_send_chunk(r, ev, n + 8);
    }
    free(ev);
    free(s);
    return st;
}

int srv_sse_error(srv_http_req *r, const srv_err *e) {
    if (e->status > r->status) r->status = e->status; /* for the log: the stream ended badly */
    return srv_sse_json(r, srv_err_json(e));
}

int srv_sse_done(srv_http_req *r) { return srv_send_chunk(r, "data: [DONE]\n\n", 14); }

int srv_sse_end(srv_http_req *r) { return srv_end_chunked(r); }
