/* veil's negacyclic FFT, portable code path: the template of fft_template.h
 * for vectors of 2 doubles. Compiled with its own target flags
 * (engine/CMakeLists.txt); fft.c calls it only where the CPU has them. */
#define VEIL_W 2
#define VEIL_FFT_NAME(x) veil_fft_portable_##x
#define VEIL_FFT_KERNELS veil_fft_kernels_portable
#include "fft_template.h"
