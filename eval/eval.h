/* lgpu-eval subcommands: each takes the arguments after its name and returns
 * the process exit code. */
#ifndef LGPU_EVAL_EVAL_H
#define LGPU_EVAL_EVAL_H

int lgpu_eval_perplexity(int argc, char **argv);
int lgpu_eval_bench(int argc, char **argv); /* loadgen.c */
int lgpu_eval_compare(int argc, char **argv); /* compare.c */
int lgpu_eval_gate(int argc, char **argv);    /* gate.c */

#endif
