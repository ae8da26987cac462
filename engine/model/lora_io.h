/* Adapter files, one reader and one writer per format, behind
 * lgpu_lora_create (params->path) and lgpu_lora_save. */
#ifndef LGPU_MODEL_LORA_IO_H
#define LGPU_MODEL_LORA_IO_H

#include "lgpu/lora.h"

/* Hugging Face PEFT: a directory with adapter_config.json and adapter_model.safetensors. */
int lgpu_lora_read_peft(lgpu_model *model, const char *path, lgpu_lora **out);
int lgpu_lora_save_peft(const lgpu_lora *lora, const char *dir, const char *base_model);
/* llama.cpp's GGUF LoRA (convert_lora_to_gguf.py's layout). */
int lgpu_lora_read_gguf(lgpu_model *model, const char *path, lgpu_lora **out);
int lgpu_lora_save_gguf(const lgpu_lora *lora, const char *path, const char *base_model);
/* The GGUF name of the projection a target adapts ("attn_q", ..., "ffn_down"):
 * the base weight is blk.N.<name>.weight. */
const char *lgpu_lora_gguf_name(lgpu_lora_target t);

#endif
