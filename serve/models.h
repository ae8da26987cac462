/* The model ids lgpu-serve answers to: the base model (--model-name, or its
 * file) and one per LoRA adapter (--lora NAME=FILE[:SCALE]). A request's
 * "model" picks one; requests for different ids share the engine's batches,
 * each sequence applying its own adapter. */
#ifndef LGPU_SERVE_MODELS_H
#define LGPU_SERVE_MODELS_H

#include <jansson.h>

#include "params.h"
#include "server.h"

/* Loads the configured adapters for srv->model and checks that the context
 * takes them (shapes, room); an error names the adapter. */
int srv_models_load(srv_server *srv);
void srv_models_free(srv_server *srv);

/* "model" of a request body: absent or null -> the base (*adapter -1); a
 * served id -> *adapter (-1 for the base) and *id, the id to echo;
 * otherwise a 404 model_not_found (400 when not a string) in *err, -1. */
int srv_model_pick(const srv_server *srv, const json_t *body, int *adapter, const char **id, srv_err *err);

/* /v1/models/{id}: the index as srv_model_pick's (-1: base), or -2 unknown. */
int srv_model_find(const srv_server *srv, const char *id);

/* The OpenAI model object of id index i (-1: the base). */
json_t *srv_model_json(const srv_server *srv, int i);

#endif
