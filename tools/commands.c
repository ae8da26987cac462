/* The command table of `lgpu`. Add one declaration and one row per subcommand. */
#include "cmd.h"

#include <stddef.h>

int lgpu_cmd_version(int argc, char **argv);
int lgpu_cmd_info(int argc, char **argv);
int lgpu_cmd_pull(int argc, char **argv);
int lgpu_cmd_inspect(int argc, char **argv);
int lgpu_cmd_convert(int argc, char **argv);
int lgpu_cmd_quantize(int argc, char **argv);
int lgpu_cmd_merge(int argc, char **argv);
int lgpu_cmd_synth(int argc, char **argv);
int lgpu_cmd_tokenize(int argc, char **argv);
int lgpu_cmd_run(int argc, char **argv);
int lgpu_cmd_chat(int argc, char **argv);
int lgpu_cmd_bench(int argc, char **argv);
int lgpu_cmd_bench_ops(int argc, char **argv);

const lgpu_cmd lgpu_commands[] = {
    {"version", lgpu_cmd_version, "print the lgpu version"},
    {"info", lgpu_cmd_info, "list Vulkan devices and the one selected"},
    {"pull", lgpu_cmd_pull, "download a model from the Hugging Face Hub"},
    {"inspect", lgpu_cmd_inspect, "print a model file's metadata and tensor table"},
    {"convert", lgpu_cmd_convert, "convert a llama2.c checkpoint or HF directory to GGUF"},
    {"quantize", lgpu_cmd_quantize, "requantize a GGUF's weight matrices (q8_0, q4_0, q4_k, q6_k, f16, bf16)"},
    {"merge", lgpu_cmd_merge, "merge LoRA adapters into a GGUF's weights (optionally re-quantized)"},
    {"synth", lgpu_cmd_synth, "write a real-shaped GGUF with deterministic random weights"},
    {"tokenize", lgpu_cmd_tokenize, "print the token ids of a text"},
    {"run", lgpu_cmd_run, "generate text from a prompt (streamed)"},
    {"chat", lgpu_cmd_chat, "interactive chat on stdin with the model's chat template"},
    {"bench", lgpu_cmd_bench, "prompt processing and generation speed (llama-bench style)"},
    {"bench-ops", lgpu_cmd_bench_ops, "matmul, matmul_backward and gemm speed (Vulkan and C path)"},
    {NULL, NULL, NULL},
};
