/* compile_dump — compiles one model under `veil compile`'s options and prints
 * everything the compiler decided: the report and key table veil compile
 * prints, the program fingerprint, and every partition's and node's chosen
 * figures (parameter set, partition, variance, p_fail, cost; doubles in %a,
 * so a last-bit change shows). A refused compilation prints the status and
 * the message. bench/compile_identical.sh builds it against two builds and
 * diffs the dumps over every sample model and option set: a change that must
 * keep every compiled program (the compile-time work) diffs empty.
 *
 * Not a bench_* program (not built by CMake, not in the option tests): the
 * script compiles it with cc against a build directory's static libraries,
 * so an older build (the baseline) links it too.
 *
 * usage: compile_dump MODEL [veil compile options] */
#include <stdio.h>
#include <string.h>

#include "veil/compile_options.h"
#include "veil/loader.h"
#include "veil/model.h"
#include "veil/program.h"
#include "veil/program_crypt.h"
#include "veil/status.h"

int main(int argc, char **argv) {
    veil_compile_options o;
    veil_compile_options_default(&o);
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        int consumed = 0;
        if (veil_compile_options_parse_arg(&o, argc, argv, &i, &consumed) != VEIL_OK) {
            printf("options refused: %s\n", veil_error_message());
            return 0;
        }
        if (consumed) continue;
        path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: compile_dump MODEL [veil compile options]\n");
        return 2;
    }
    veil_model *m;
    veil_status st = veil_model_load(path, &m);
    if (st) {
        printf("load failed %d: %s\n", (int)st, veil_error_message());
        return 0;
    }
    veil_program *p;
    st = veil_program_compile(m, &o, &p);
    veil_model_free(m);
    if (st) {
        printf("compile failed %d: %s\n", (int)st, veil_error_message());
        return 0;
    }
    veil_program_print_report(p, stdout);
    veil_program_print_keys(p, stdout);
    uint8_t fp[VEIL_PROGRAM_FP_BYTES];
    veil_program_fingerprint(p, fp);
    printf("fingerprint ");
    for (int i = 0; i < VEIL_PROGRAM_FP_BYTES; i++)
        printf("%02x", fp[i]);
    printf("\noptions %s\n", p->options_canonical ? p->options_canonical : "-");
    printf("cost %a cuda %a latency %a keys %a pf_pbs %a pf_sample %a pf_out %a search %a\n",
           p->cost_per_sample, p->cost_per_sample_cuda, p->latency_per_sample, p->key_bytes,
           p->log2_p_fail_pbs, p->log2_p_fail_sample, p->p_fail_outputs_share,
           p->search_log2_p_error);
    printf("width %u max_lut %u max_acc %u input_width %u pbs %llu\n", p->width, p->max_lut_bits,
           p->max_acc_bits, p->input_width, (unsigned long long)p->pbs_per_sample);
    for (uint32_t k = 0; k < p->n_partitions; k++) {
        const veil_partition *q = &p->partitions[k];
        printf("part %u %s prec %u norm2 %a pbs %llu pf %a share %a rows %u\n", k,
               q->params ? q->params->id : "-", q->precision, q->norm2,
               (unsigned long long)q->pbs_per_sample, q->log2_p_fail, q->p_fail_share, q->ksk_rows);
    }
    for (size_t i = 0; i < p->n_nodes; i++) {
        const veil_node *n = &p->nodes[i];
        printf("node %zu kind %d part %u lo %lld hi %lld bits %u width %u pbs %llu var %a pf %a "
               "key_dim %u\n",
               i, (int)n->kind, n->partition, (long long)n->lo, (long long)n->hi, n->bits, n->width,
               (unsigned long long)n->pbs_per_sample, n->variance, n->read_log2_pfail, n->key_dim);
    }
    veil_program_free(p);
    return 0;
}
