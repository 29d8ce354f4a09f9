/* llama2_gen - write a random llama2.c checkpoint and tokenizer (no model
   download needed), for tests and measurements:
       llama2_gen CHECKPOINT TOKENIZER dim hidden_dim n_layers n_heads
                  n_kv_heads vocab_size seq_len [shared 0|1] [seed]
   e.g. a model of the size of stories110M (110M parameters):
       llama2_gen build/r110m.bin build/r110m_tok.bin 768 2048 12 12 12 32000 1024 */
#include <stdlib.h>
#include "tests/llama2_gen.h"

int main(int argc, char **argv) {
    lg_config c;
    if (argc < 10) {
        fprintf(stderr, "usage: llama2_gen CHECKPOINT TOKENIZER dim hidden_dim n_layers n_heads n_kv_heads vocab_size seq_len [shared] [seed]\n");
        return 1;
    }
    c.dim = atoi(argv[3]);
    c.hidden_dim = atoi(argv[4]);
    c.n_layers = atoi(argv[5]);
    c.n_heads = atoi(argv[6]);
    c.n_kv_heads = atoi(argv[7]);
    c.vocab_size = atoi(argv[8]);
    c.seq_len = atoi(argv[9]);
    c.shared = argc > 10 ? atoi(argv[10]) : 1;
    c.seed = argc > 11 ? (uint32_t)strtoul(argv[11], NULL, 10) : 1;
    if (c.dim <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.dim % c.n_heads || c.n_heads % c.n_kv_heads || c.vocab_size < 354) {
        fprintf(stderr, "llama2_gen: n_heads must divide dim, n_kv_heads n_heads; vocab_size >= 354\n");
        return 1;
    }
    if (!lg_write_checkpoint(argv[1], &c) || !lg_write_tokenizer(argv[2], &c)) {
        fprintf(stderr, "llama2_gen: cannot write the files\n");
        return 1;
    }
    return 0;
}
