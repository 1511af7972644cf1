/* veil's negacyclic FFT, avx2 code path: the template of fft_template.h
 * for vectors of 4 doubles. Compiled with its own target flags
 * (engine/CMakeLists.txt); fft.c calls it only where the CPU has them. */
#define VEIL_W 4
#define VEIL_FFT_NAME(x) veil_fft_avx2_##x
#define VEIL_FFT_KERNELS veil_fft_kernels_avx2
#include "fft_template.h"
