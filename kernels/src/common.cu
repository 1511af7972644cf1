/* Error names and the parameter check shared by every entry point. */
#include <cstdio>

#include "common.cuh"

static const char *cufft_name(int r) {
    switch (r) {
    case CUFFT_INVALID_PLAN:
        return "cuFFT: invalid plan";
    case CUFFT_ALLOC_FAILED:
        return "cuFFT: allocation failed";
    case CUFFT_INVALID_VALUE:
        return "cuFFT: invalid value";
    case CUFFT_INTERNAL_ERROR:
        return "cuFFT: internal error";
    case CUFFT_EXEC_FAILED:
        return "cuFFT: execution failed";
    case CUFFT_SETUP_FAILED:
        return "cuFFT: setup failed";
    case CUFFT_INVALID_SIZE:
        return "cuFFT: invalid size";
    case CUFFT_NOT_SUPPORTED:
        return "cuFFT: not supported";
    default:
        return "cuFFT: error";
    }
}

extern "C" const char *veil_cuda_error_string(int err) {
    if (err == 0) return "no error";
    if (err == VEIL_CUDA_ERR_UNSUPPORTED) return "parameters not supported by the CUDA kernels";
    if (err == VEIL_CUDA_ERR_ARG) return "invalid argument to a CUDA kernel entry";
    if (err > VEIL_CUDA_ERR_CUFFT && err < VEIL_CUDA_ERR_UNSUPPORTED)
        return cufft_name(err - VEIL_CUDA_ERR_CUFFT);
    return cudaGetErrorString((cudaError_t)err);
}

extern "C" int veil_cuda_error_is_sticky(int err) {
    switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
        return 1;
    default:
        return 0;
    }
}

extern "C" int veil_cuda_params_check(const veil_cuda_params *p, char *why, size_t why_len) {
    const char *bad = NULL;
    switch (p->poly_size) {
    case 256:
    case 512:
    case 1024:
    case 2048:
    case 4096:
    case 8192:
    case 16384:
    case 32768:
        break;
    default:
        bad = "polynomial size N must be one of 256, 512, 1024, 2048, 4096, 8192, 16384, 32768";
    }
    if (!bad && (p->glwe_dim < 1 || p->glwe_dim > 4)) bad = "GLWE dimension k must be 1..4";
    if (!bad && (p->pbs_level < 1 || p->pbs_level > VEIL_CUDA_MAX_LEVEL || p->pbs_base_log < 1 ||
                 p->pbs_base_log > 63 || p->pbs_base_log * p->pbs_level > 64))
        bad =
            "PBS decomposition must have 1..16 levels, base_log 1..63 and base_log * levels <= 64";
    if (!bad && (p->ks_level < 1 || p->ks_level > VEIL_CUDA_MAX_LEVEL || p->ks_base_log < 1 ||
                 p->ks_base_log > 63 || p->ks_base_log * p->ks_level > 64))
        bad =
            "keyswitch decomposition must have 1..16 levels, base_log 1..63 and base_log * levels "
            "<= 64";
    if (!bad && p->lwe_dim < 1) bad = "LWE dimension n must be > 0";
    if (!bad && p->in_dim && p->in_dim < p->glwe_dim * p->poly_size)
        bad = "input dimension D must be 0 (k*N) or at least k*N";
    if (!bad && p->ks_rows > veil_cuda_in_dim(p))
        bad = "keyswitch rows must be 0 (D) or at most the input dimension D";
    if (!bad && p->pbs_kernel > VEIL_CUDA_PBS_SPLIT)
        bad = "pbs_kernel must be auto, cufft, fused, cluster or split";
    if (!bad && p->split &&
        (p->pbs_kernel != VEIL_CUDA_PBS_SPLIT ||
         (p->split != 2 && p->split != 4 && p->split != 8) || (p->glwe_dim + 1) * p->split > 16 ||
         p->poly_size / 2 / p->split < 64))
        bad = "split must be 0, or 2, 4 or 8 with the split kernel, (k+1) * split <= 16 and "
              "N/2/split >= 64";
    if (!bad && (p->grouping == 1 || p->grouping > 4 || (p->grouping && p->lwe_dim % p->grouping)))
        bad = "multi-bit grouping must be 0 or 2..4 dividing n";
    if (!bad && p->grouping && p->pbs_kernel != VEIL_CUDA_PBS_AUTO &&
        p->pbs_kernel != VEIL_CUDA_PBS_CUFFT && p->pbs_kernel != VEIL_CUDA_PBS_CLUSTER)
        bad = "multi-bit PBS runs on the cufft path and the cluster kernel only (pbs_kernel "
              "auto, cufft or cluster)";
    if (bad) {
        if (why && why_len) snprintf(why, why_len, "%s", bad);
        return VEIL_CUDA_ERR_UNSUPPORTED;
    }
    return 0;
}

std::mutex &veil_cuda_launch_lock() {
    static std::mutex m;
    return m;
}

int veil_cuda_kernel_sm90(const void *kernel) {
    cudaFuncAttributes a;
    const cudaError_t e = cudaFuncGetAttributes(&a, kernel);
    if (e != cudaSuccess) return -(int)e;
    return a.ptxVersion >= 90;
}
