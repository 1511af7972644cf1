/* The split blind rotation, for the sizes whose polynomial does not fit one
 * block's shared memory (the cluster kernel stops at N = 4096): a cluster of
 * (k+1) S blocks per ciphertext (sm_90), S = 2, 4 or 8 blocks per GLWE
 * polynomial, each holding 1/S of its accumulator and of its transforms.
 * Issue 13 part 2; TFHE-rs instead splits its large-N CUDA PBS over
 * cooperating blocks through global memory.
 *
 * Layout. H = N/2 points, M = H/S a block, c = bitrev(b) over log2 S bits
 * for block b of a polynomial. Block b owns the coefficients j = S u + c
 * (u < N/S) of its accumulator: strided, so that X^a acc, which reads
 * coefficient j - a, reads one peer block only (residue c - a mod S) for the
 * whole step, at consecutive local indices.
 *
 * One step (the fold-and-twist transform of pbs_fused.cuh, the same twiddle
 * tables; forward by decimation in time from bit-reversed input, inverse by
 * decimation in frequency from natural order, so neither needs a reordering
 * pass):
 *   rotate   digits of X^a acc - acc at block b's coefficients, twisted,
 *            written at their bit-reversed positions b M .. b M + M - 1:
 *            exactly block b's contiguous chunk of the H-point input
 *   local    the first log2 M forward stages, inside the chunk (M points)
 *   -- cluster barrier --
 *   mac      block b takes columns r in [b M/S, (b+1) M/S): for every input
 *            polynomial and level, the S values r, M + r, ... (one a block,
 *            read through distributed shared memory) get the last log2 S
 *            forward stages in registers, which leaves X[s M + r] in natural
 *            order; the products with the key are summed, and the first
 *            log2 S inverse (decimation in frequency) stages run on them in
 *            registers, written as S rows of M/S
 *   -- cluster barrier --
 *   gather   block b reads row b of every block: its own chunk of M points
 *   local    the last log2 M inverse stages, which leave block b's chunk in
 *            bit-reversed order: coefficients S u + c again
 *   add      acc += round(untwist / H), at block b's own coefficients
 *   -- cluster barrier -- (the next rotate reads a peer's accumulator)
 * Three cluster barriers a step; each buffer's next write comes after a
 * barrier its readers pass only when done, so nothing is double-buffered.
 * Shared memory a block: 8 N/S (accumulator) + 16 (l (M + 8) + M) bytes,
 * for N = 32768, l = 1, S = 4: 196 KiB.
 *
 * The forward transform is the same radix-2 butterflies, twiddles and order
 * as the fused and cluster kernels' (their radix-4 passes are two radix-2
 * stages); the inverse is another algorithm (decimation in frequency), so
 * results agree with theirs within the FFT error, not bit for bit. */
#ifndef VEIL_KERNELS_PBS_SPLIT_CUH
#define VEIL_KERNELS_PBS_SPLIT_CUH

#include "pbs_fused.cuh"

#define VEIL_SPLIT_MAX_BLOCKS 16 /* (k+1) S: a non-portable cluster past 8 */
/* Threads a block: 512, but 256 at S = 8, whose MAC keeps 2 x 8 complex
 * values a column in registers (at 512 threads, 128 registers a thread,
 * ptxas spilled 100 bytes; CUDA 13, sm_90). */
template <uint32_t S> struct veil_split_threads {
    static constexpr uint32_t value = S == 8 ? 256 : 512;
};

struct veil_split_dims {
    uint32_t n, k, k1, N, H, logH, l, base_log;
    uint32_t logS, M, logM, cols; /* M = H/S points a block, cols = M/S */
    veil_fused_dims loc;          /* the M-point view: veil_fused_fft_stage*, padding */
};

/* Blocks a polynomial for p, 0 when no S fits: p->split when set, else the
 * fewest (2, 4, 8) whose shared memory fits `optin` bytes a block with at
 * most VEIL_SPLIT_MAX_BLOCKS blocks a cluster. */
inline size_t veil_split_smem_bytes(const veil_cuda_params *p, uint32_t S) {
    const size_t N = p->poly_size, M = N / 2 / S;
    return N / S * 8 + 16 * ((size_t)p->pbs_level * (M + 8) + M);
}
inline uint32_t veil_split_factor(const veil_cuda_params *p, size_t optin) {
    if (p->split) return veil_split_smem_bytes(p, p->split) <= optin ? p->split : 0;
    for (uint32_t S = 2; S <= 8; S *= 2)
        if ((p->glwe_dim + 1) * S <= VEIL_SPLIT_MAX_BLOCKS && veil_split_smem_bytes(p, S) <= optin)
            return S;
    return 0;
}

VEIL_HD inline veil_split_dims veil_split_dims_of(const veil_cuda_params *p, uint32_t S) {
    veil_split_dims d;
    d.n = p->lwe_dim;
    d.k = p->glwe_dim;
    d.k1 = d.k + 1;
    d.N = p->poly_size;
    d.H = d.N / 2;
    d.logH = 0;
    while ((1u << d.logH) < d.H)
        d.logH++;
    d.l = p->pbs_level;
    d.base_log = p->pbs_base_log;
    d.logS = S == 2 ? 1 : S == 4 ? 2 : 3;
    d.M = d.H / S;
    d.logM = d.logH - d.logS;
    d.cols = d.M / S;
    d.loc.n = d.n;
    d.loc.k = d.k;
    d.loc.k1 = d.k1;
    d.loc.N = 2 * d.M;
    d.loc.H = d.M;
    d.loc.logH = d.logM;
    d.loc.l = d.l;
    d.loc.base_log = d.base_log;
    d.loc.HP = d.M + 8;
    d.loc.pshift = d.logM - 3; /* M >= 64 (veil_cuda_params_check) */
    return d;
}

/* A block's shared memory from its base: accumulator (N/S words), digits
 * (l padded M-point polynomials, HP = M + 8 apart), product rows (S rows of
 * M/S points). */
template <uint32_t S> VEIL_HD inline uint64_t *veil_split_acc(const veil_split_dims &, void *base) {
    return (uint64_t *)base;
}
template <uint32_t S> VEIL_HD inline double2 *veil_split_dec(const veil_split_dims &d, void *base) {
    return (double2 *)((char *)base + (size_t)d.N / S * 8);
}
template <uint32_t S>
VEIL_HD inline double2 *veil_split_rows(const veil_split_dims &d, void *base) {
    return veil_split_dec<S>(d, base) + d.l * d.loc.HP;
}

/* Every block's shared memory by rank: host memory in the emulation. The
 * kernel's view (pbs_split.cu) maps peers through distributed shared
 * memory. */
struct veil_split_host_peers {
    void *const *mem;
    VEIL_HD void *base(uint32_t rank) const {
        return mem[rank];
    }
};

/* acc = q == k ? X^-body V : 0, at this block's coefficients S u + c. */
template <uint32_t S, uint32_t T>
VEIL_HD inline void veil_split_init(const veil_split_dims &d, uint64_t *A, const uint64_t *V,
                                    uint32_t body, uint32_t q, uint32_t c, uint32_t tid) {
    const uint32_t e = (2 * d.N - body) & (2 * d.N - 1);
    VEIL_FUSED_FOR_T(u, d.N / S, T) {
        A[u] = q == d.k ? veil_fused_mono(V, d.N, e, u * S + c) : 0;
    }
}

/* (X^a acc)[j] for j = S u + c (either half of the fold), from P, the
 * accumulator of the block holding residue (c - a) mod S. */
template <uint32_t S>
VEIL_HD inline uint64_t veil_split_rotated(const veil_split_dims &d, const uint64_t *P, uint32_t a,
                                           uint32_t j) {
    const uint32_t src = (j + 2 * d.N - a) & (2 * d.N - 1);
    return src < d.N ? P[src / S] : (uint64_t)0 - P[(src - d.N) / S];
}

/* The rank of polynomial q's block holding residue c - a mod S: the one
 * block whose accumulator X^a acc reads at residue c's coefficients. */
template <uint32_t S>
VEIL_HD inline uint32_t veil_split_rotation_peer(const veil_split_dims &d, uint32_t q, uint32_t c,
                                                 uint32_t a) {
    return q * S + veil_fused_bitrev((c + 2 * d.N - a) & (S - 1), d.logS);
}

/* dec[lev][bitrev(u)] = twist(fold(digit lev of X^a acc - acc)) at complex
 * index j = S u + c: block b's chunk of the bit-reversed input. */
template <uint32_t S, uint32_t T>
VEIL_HD inline void veil_split_rotate(const veil_split_dims &d, const uint64_t *A,
                                      const uint64_t *P, double2 *dec, uint32_t a, uint32_t c,
                                      const double2 *tw, uint32_t tid) {
    VEIL_FUSED_FOR_T(u, d.M, T) {
        const uint32_t j = u * S + c;
        uint64_t r0 = veil_gadget_round(veil_split_rotated<S>(d, P, a, j) - A[u], d.base_log, d.l);
        uint64_t r1 = veil_gadget_round(veil_split_rotated<S>(d, P, a, j + d.H) - A[u + d.M],
                                        d.base_log, d.l);
        const double2 w = tw[j];
        const uint32_t p = veil_fused_pad(d.loc, veil_fused_bitrev(u, d.logM));
        VEIL_FUSED_UNROLL
        for (uint32_t i = 0; i < d.l; i++) { /* least significant level first */
            const uint32_t lev = d.l - 1 - i;
            const double re = (double)veil_gadget_next(&r0, d.base_log),
                         im = (double)veil_gadget_next(&r1, d.base_log);
            dec[lev * d.loc.HP + p] = veil_dev_twist(re, im, w);
        }
    }
}

/* The first log2 M forward stages of every level, inside this block's chunk,
 * as passes (radix 4, then radix 2 when log2 M is odd): the kernel runs them
 * with a barrier after each, the emulation one after another. roots_loc:
 * exp(-2 pi i t / M), t < M/2 (the H-point stages' own twiddles there). */
VEIL_HD inline uint32_t veil_split_forward_passes(const veil_split_dims &d) {
    return (d.logM >> 1) + (d.logM & 1);
}
template <uint32_t T>
VEIL_HD inline void veil_split_forward_pass(const veil_split_dims &d, double2 *dec, uint32_t k,
                                            const double2 *roots_loc, uint32_t tid) {
    if (k < (d.logM >> 1))
        veil_fused_fft_stage2<veil_fused_dims, T>(d.loc, dec, d.l, 2 * k + 1, 0, roots_loc, tid);
    else
        veil_fused_fft_stage<veil_fused_dims, T>(d.loc, dec, d.l, d.logM, 0, roots_loc, tid);
}

/* The radix-2 decimation-in-frequency butterfly (u, y) -> (u + y, (u - y) w):
 * every inverse stage of the split kernel, in registers or in the chunk. */
VEIL_HD inline void veil_split_dif2(double2 &u, double2 &y, double2 w) {
    const double2 a = u, b = y;
    u.x = a.x + b.x;
    u.y = a.y + b.y;
    const double tx = a.x - b.x, ty = a.y - b.y;
    y.x = tx * w.x - ty * w.y;
    y.y = tx * w.y + ty * w.x;
}

/* Block (q, b)'s columns: the last log2 S forward stages of every digit
 * polynomial (the digit buffers of polynomial r's blocks s, peers.base(r S +
 * s)), the
 * product with GGSW row (r, lev) for output polynomial q, summed as the
 * fused kernel's MAC does, and the first log2 S inverse stages (decimation
 * in frequency); rows[s M/S + x] = column b M/S + x's element s. roots:
 * exp(-2 pi i t / H), t < H/2. */
template <uint32_t S, uint32_t T, class P>
VEIL_HD inline void veil_split_mac(const veil_split_dims &d, const P &peers, double2 *rows,
                                   const double2 *ggsw, uint32_t q, uint32_t b,
                                   const double2 *roots, uint32_t tid) {
    VEIL_FUSED_FOR_T(x, d.cols, T) {
        const uint32_t r = b * d.cols + x, pr = veil_fused_pad(d.loc, r);
        double2 acc[S];
        VEIL_FUSED_UNROLL
        for (uint32_t s = 0; s < S; s++)
            acc[s].x = acc[s].y = 0;
        for (uint32_t rb = 0; rb < d.k1; rb++)
            for (uint32_t lev = 0; lev < d.l; lev++) {
                double2 v[S];
                VEIL_FUSED_UNROLL
                for (uint32_t s = 0; s < S; s++)
                    v[s] = veil_split_dec<S>(d, peers.base(rb * S + s))[lev * d.loc.HP + pr];
                /* forward stages log2 M + 1 .. log2 H, decimation in time */
                VEIL_FUSED_UNROLL
                for (uint32_t hs = 1, st = d.logM + 1; hs < S; hs <<= 1, st++)
                    VEIL_FUSED_UNROLL
                for (uint32_t s = 0; s < S; s++)
                    if (!(s & hs)) {
                        const uint32_t pos = (s & (hs - 1)) * d.M + r;
                        veil_fused_bfly2(v[s], v[s + hs], roots[pos << (d.logH - st)]);
                    }
                const double2 *g = ggsw + ((rb * d.l + lev) * d.k1 + q) * d.H + r;
                VEIL_FUSED_UNROLL
                for (uint32_t s = 0; s < S; s++) {
                    const double2 key = g[s * d.M];
                    acc[s].x += v[s].x * key.x - v[s].y * key.y;
                    acc[s].y += v[s].x * key.y + v[s].y * key.x;
                }
            }
        /* inverse stages of half size H/2 .. M, decimation in frequency */
        VEIL_FUSED_UNROLL
        for (uint32_t hs = S / 2, logh = d.logH - 1; hs >= 1; hs >>= 1, logh--)
            VEIL_FUSED_UNROLL
        for (uint32_t s = 0; s < S; s++)
            if (!(s & hs)) {
                const uint32_t pos = (s & (hs - 1)) * d.M + r;
                double2 w = roots[pos << (d.logH - 1 - logh)];
                w.y = -w.y;
                veil_split_dif2(acc[s], acc[s + hs], w);
            }
        VEIL_FUSED_UNROLL
        for (uint32_t s = 0; s < S; s++)
            rows[s * d.cols + x] = acc[s];
    }
}

/* buf (padded) = row b of every block of polynomial q: this block's chunk
 * of M points. */
template <uint32_t S, uint32_t T, class P>
VEIL_HD inline void veil_split_gather(const veil_split_dims &d, const P &peers, double2 *buf,
                                      uint32_t q, uint32_t b, uint32_t tid) {
    const uint32_t shift = d.logM - d.logS; /* log2 cols */
    VEIL_FUSED_FOR_T(t, d.M, T) {
        const uint32_t owner = t >> shift;
        const double2 *rows = veil_split_rows<S>(d, peers.base(q * S + owner));
        buf[veil_fused_pad(d.loc, t)] = rows[b * d.cols + (t - (owner << shift))];
    }
}

/* Item x of the inverse stage of half size 2^logh inside the chunk
 * (conjugate roots_loc): its two elements' positions i[] (unpadded) and
 * values a[] after the butterfly. */
VEIL_HD inline void veil_split_dif_item(const veil_split_dims &d, const double2 *v, uint32_t logh,
                                        const double2 *roots_loc, uint32_t x, uint32_t *i,
                                        double2 *a) {
    const uint32_t h = 1u << logh, pos = x & (h - 1);
    i[0] = ((x >> logh) << (logh + 1)) + pos;
    i[1] = i[0] + h;
    double2 w = roots_loc[pos << (d.logM - 1 - logh)];
    w.y = -w.y;
    a[0] = v[veil_fused_pad(d.loc, i[0])];
    a[1] = v[veil_fused_pad(d.loc, i[1])];
    veil_split_dif2(a[0], a[1], w);
}

/* Item x of the inverse stages of half sizes 2^logh and 2^(logh-1) in one
 * pass (radix 4, logh >= 1): the four elements the two stages combine, kept
 * in registers, with exactly the two stages' butterflies in their order
 * (the same bits as two veil_split_dif_item passes). */
VEIL_HD inline void veil_split_dif4_item(const veil_split_dims &d, const double2 *v, uint32_t logh,
                                         const double2 *roots_loc, uint32_t x, uint32_t *i,
                                         double2 *a) {
    const uint32_t h2 = 1u << (logh - 1); /* h / 2 */
    const uint32_t pos = x & (h2 - 1), i0 = ((x >> (logh - 1)) << (logh + 1)) + pos;
    double2 w1 = roots_loc[pos << (d.logM - 1 - logh)],
            w3 = roots_loc[(pos + h2) << (d.logM - 1 - logh)],
            w2 = roots_loc[pos << (d.logM - logh)];
    w1.y = -w1.y;
    w2.y = -w2.y;
    w3.y = -w3.y;
    VEIL_FUSED_UNROLL
    for (uint32_t m = 0; m < 4; m++) {
        i[m] = i0 + m * h2;
        a[m] = v[veil_fused_pad(d.loc, i[m])];
    }
    veil_split_dif2(a[0], a[2], w1); /* stage h */
    veil_split_dif2(a[1], a[3], w3);
    veil_split_dif2(a[0], a[1], w2); /* stage h / 2 */
    veil_split_dif2(a[2], a[3], w2);
}

/* The inverse stages inside the chunk but the last pass, as passes: the odd
 * stage first (radix 2) when log2 M is odd, then radix-4 passes; the kernel
 * runs them with a barrier after each, the emulation one after another.
 * veil_split_last_add does the last radix-4 pass (half sizes 2 and 1). */
VEIL_HD inline uint32_t veil_split_inverse_passes(const veil_split_dims &d) {
    return (d.logM & 1) + (d.logM >> 1) - 1;
}
template <uint32_t T>
VEIL_HD inline void veil_split_inverse_pass(const veil_split_dims &d, double2 *buf, uint32_t k,
                                            const double2 *roots_loc, uint32_t tid) {
    const uint32_t odd = d.logM & 1;
    if (odd && k == 0) {
        VEIL_FUSED_FOR_T(x, d.M / 2, T) {
            uint32_t i[2];
            double2 a[2];
            veil_split_dif_item(d, buf, d.logM - 1, roots_loc, x, i, a);
            buf[veil_fused_pad(d.loc, i[0])] = a[0];
            buf[veil_fused_pad(d.loc, i[1])] = a[1];
        }
        return;
    }
    const uint32_t logh = d.logM - 1 - odd - 2 * (k - odd);
    VEIL_FUSED_FOR_T(x, d.M / 4, T) {
        uint32_t i[4];
        double2 a[4];
        veil_split_dif4_item(d, buf, logh, roots_loc, x, i, a);
        VEIL_FUSED_UNROLL
        for (uint32_t m = 0; m < 4; m++)
            buf[veil_fused_pad(d.loc, i[m])] = a[m];
    }
}

/* The last inverse pass (radix 4: half sizes 2 and 1) with the
 * accumulation, acc += round(untwist / H), in registers: the chunk,
 * bit-reversed, holds complex index S u + c at position bitrev(u). */
template <uint32_t S, uint32_t T>
VEIL_HD inline void veil_split_last_add(const veil_split_dims &d, uint64_t *A, const double2 *buf,
                                        uint32_t c, const double2 *tw, const double2 *roots_loc,
                                        uint32_t tid) {
    const double scale = 1.0 / (double)d.H;
    VEIL_FUSED_FOR_T(x, d.M / 4, T) {
        uint32_t i[4];
        double2 a[4];
        veil_split_dif4_item(d, buf, 1, roots_loc, x, i, a);
        VEIL_FUSED_UNROLL
        for (uint32_t m = 0; m < 4; m++) {
            const uint32_t u = veil_fused_bitrev(i[m], d.logM);
            const double2 z = veil_dev_untwist(a[m], tw[u * S + c], scale);
            A[u] += veil_dev_f64_to_torus(z.x);
            A[u + d.M] += veil_dev_f64_to_torus(z.y);
        }
    }
}

/* Block (q, b)'s part of the sample extraction into D+1 words (D = in_dim >=
 * kN): mask polynomial q's words at its coefficients (q < k); for q = k, its
 * share of the zeros from kN to D and (c = 0) the body at D. o.acc: its
 * coefficients of polynomial q of the accumulator as they are. */
template <uint32_t S, uint32_t T>
VEIL_HD inline void veil_split_extract(const veil_split_dims &d, const uint64_t *A, uint64_t *out,
                                       uint32_t q, uint32_t b, uint32_t c, const veil_pbs_out &o,
                                       uint32_t tid) {
    const uint32_t in_dim = o.in_dim;
    if (o.acc) {
        VEIL_FUSED_FOR_T(u, d.N / S, T) {
            out[(size_t)q * d.N + u * S + c] = A[u];
        }
        return;
    }
    if (q == d.k) {
        const uint32_t zeros = in_dim - d.k * d.N;
        VEIL_FUSED_FOR_T(z, (zeros + S - 1) / S, T) {
            const uint32_t w = z * S + b;
            if (w < zeros) out[(size_t)d.k * d.N + w] = 0;
        }
        if (c == 0 && tid == 0) out[in_dim] = A[0];
        return;
    }
    VEIL_FUSED_FOR_T(u, d.N / S, T) {
        const uint32_t j = u * S + c;
        out[(size_t)q * d.N + (j == 0 ? 0 : d.N - j)] = j == 0 ? A[0] : (uint64_t)0 - A[u];
    }
}

/* The kernel's phases on the host for one ciphertext (every block of the
 * cluster, every thread in turn): veil_cuda_pbs_fused_emulate with
 * VEIL_CUDA_PBS_SPLIT. */
int veil_split_emulate(const veil_cuda_params *p, const double *bsk_fourier, const uint32_t *ms,
                       const uint64_t *lut_poly, uint64_t *out_big);
/* S for p on this device (0: the split kernel cannot run there). */
int veil_split_factor_on(const veil_cuda_params *p, int device, uint32_t *S);
int veil_split_launch(cudaStream_t stream, const veil_cuda_params *p, uint32_t S, uint64_t *d_out,
                      const uint32_t *d_ms, const veil_cuda_lut_set *luts, const double2 *d_bsk,
                      const double2 *d_tw, const double2 *d_roots, const double2 *d_roots_loc,
                      uint32_t count);
/* Clusters of this shape the device runs at once (0: none), or a negative
 * CUDA error code. */
int veil_split_max_active(const veil_cuda_params *p, uint32_t S, int device);

#endif
