/* h5util.h — HDF5 helpers shared by the loaders (private). Errors name the
 * HDF5 path ("<path>/<name>: ..."). */
#ifndef VEIL_H5UTIL_H
#define VEIL_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

#include "veil/status.h"

void veil_h5_quiet(void);
int veil_h5_has_attr(hid_t obj, const char *name);
veil_status veil_h5_attr_str(hid_t obj, const char *path, const char *name, char **out);
veil_status veil_h5_attr_i64(hid_t obj, const char *path, const char *name, int64_t *out,
                             size_t count);
veil_status veil_h5_attr_f64(hid_t obj, const char *path, const char *name, double *out,
                             size_t count);
/* Whole dataset; integers as int64. With want_float, float data is read as
 * double and *rank is negative (-rank); integer data as int64, *rank > 0. */
veil_status veil_h5_read(hid_t loc, const char *path, const char *name, int want_float,
                         int rank_min, int rank_max, hsize_t *dims, int *rank, void **out);

#endif
