/* ks32.h — the keyswitch's 32-bit arithmetic, one definition for the CPU
 * engine and the CUDA kernels (compiled as __host__ __device__ by nvcc).
 *
 * What a keyswitch outputs is only ever modulus-switched to 2N <= 2^17
 * (veil_modulus_switch) or, in a multi-bit PBS, summed in groups before
 * that switch: the low 32 bits of its words never reach a result. So the
 * keyswitch runs on the top halves: every key word is rounded to its top 32
 * bits (veil_ks32_round; veil_pbs_key.ksk32 holds only those words: keygen
 * rounds each entry as it makes it),
 * the input's body too, and the sums are taken mod 2^32; each output word
 * is that 32-bit value in its top half, the low half 0 (veil_ks32_word).
 * The CPU computes it in 32-bit lanes (twice the lanes a vector holds, half
 * the key's memory traffic); the CUDA kernel multiplies the same rounded key
 * words shifted to the top half in its 64-bit product, which gives the same
 * words bit for bit. TFHE-rs calls this atomic pattern KS32
 * (tfhe/src/shortint/parameters: KeySwitch32PBSParameters, whose small LWE
 * has modulus 2^32).
 *
 * Noise (veil_noise_ks_variance_dim): each rounded key word is off by at
 * most 2^31 (in units of 2^-64), uniformly, so each digit d times the
 * rounded ciphertext (a, b) of the key adds d (e_b - <e_a, s>) to the phase:
 * variance E[d^2] (1 + |s|) 2^64 / 12 per digit, summed over the D l digits,
 * plus 2^64 / 12 for the body. At D = 8192, l = 3, B = 4 and n = 660 that is
 * about 2^-40 on the torus, against 2^-15 for the key's own noise (2^-35 to
 * 2^-10 of the keyswitch term on the derived sets: docs/PARAMS.md). */
#ifndef VEIL_KS32_H
#define VEIL_KS32_H

#include <stdint.h>

#include "veil/gadget.h"

/* w rounded to its top 32 bits (nearest, ties up, mod 2^32). */
VEIL_GADGET_FN uint32_t veil_ks32_round(uint64_t w) {
    return (uint32_t)((w + 0x80000000u) >> 32);
}

/* The 64-bit word of a 32-bit keyswitch value: its top half. */
VEIL_GADGET_FN uint64_t veil_ks32_word(uint32_t v) {
    return (uint64_t)v << 32;
}

/* The body word a keyswitch starts from: the input's body rounded to its top
 * 32 bits, as a 64-bit word (the CPU's veil_keyswitch, its split over
 * threads and the CUDA kernel's epilogue). */
VEIL_GADGET_FN uint64_t veil_ks32_body(uint64_t body) {
    return veil_ks32_word(veil_ks32_round(body));
}

#endif
