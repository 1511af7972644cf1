/* veil's negacyclic FFT, avx512 code path: the template of fft_template.h
 * for vectors of 8 doubles. Compiled with its own target flags
 * (engine/CMakeLists.txt); fft.c calls it only where the CPU has them. */
#define VEIL_W 8
#define VEIL_FFT_NAME(x) veil_fft_avx512_##x
#define VEIL_FFT_KERNELS veil_fft_kernels_avx512
#include "fft_template.h"
