/* src/modelfile.h - the model file: configuration text plus named float tensors, checksummed,
 * written atomically. Embeddings and meta-learned models are both saved this way.
 *
 * Layout (all integers little-endian, floats as IEEE-754 binary32 bit patterns, little-endian):
 *   "KGMMODEL"             8 bytes, the magic number
 *   u32 version            KGM_MODELFILE_VERSION
 *   u64 total_size         bytes in the whole file, checksum included
 *   u32 config_len, bytes  the configuration: "key=value\n" lines, in the order set
 *   u32 n_tensors, then per tensor: u16 name_len, name bytes, u32 rows, u32 cols, rows*cols floats
 *   u64 checksum           FNV-1a 64 over every byte before it
 * Reading checks, in order: size, magic, version, total size (truncated / trailing bytes),
 * checksum (corrupted), structure; each refusal names the file and what is wrong. A tensor is
 * read with the shape the caller expects, and a different shape is refused.
 *
 * A kgm_modelfile owns copies of everything added to it; strings and data it returns are
 * borrowed and valid until kgm_modelfile_free(). */
#ifndef KGM_MODELFILE_H
#define KGM_MODELFILE_H

#include "tensor.h"

#define KGM_MODELFILE_VERSION 1

typedef struct kgm_modelfile kgm_modelfile;   /* opaque */

kgm_modelfile *kgm_modelfile_new(void);          /* empty; returns new (NULL: out of memory) */
void kgm_modelfile_free(kgm_modelfile *mf);      /* NULL is a no-op */

/* ---- building ---- */
/* Set configuration key (letters, digits, '_', '.', '-') to value (no newline); replaces. */
int kgm_modelfile_set(kgm_modelfile *mf, const char *key, const char *value);
/* Add a rows x cols tensor named `name` (unique, 1..255 bytes, no NUL); data is copied. */
int kgm_modelfile_add(kgm_modelfile *mf, const char *name, int rows, int cols, const float *data);
/* Add every view of `layout` over the flat buffer `flat`, named prefix + view name. */
int kgm_modelfile_add_layout(kgm_modelfile *mf, const char *prefix, const kgm_layout *layout,
                             const float *flat);
/* Write to `path` atomically: a temporary file beside it, fsync, rename, fsync the directory.
 * On error the old file (if any) is untouched. */
int kgm_modelfile_save(const kgm_modelfile *mf, const char *path);

/* ---- reading ---- */
/* Read and verify a whole file. Returns new in *out: kgm_modelfile_free(). */
int kgm_modelfile_load(kgm_modelfile **out, const char *path);
const char *kgm_modelfile_get(const kgm_modelfile *mf, const char *key);  /* NULL when absent */
int kgm_modelfile_config_count(const kgm_modelfile *mf);
/* The i-th configuration entry (0-based, in file order); returns KGM_ENOTFOUND past the end. */
int kgm_modelfile_config_at(const kgm_modelfile *mf, int i, const char **key, const char **value);
int kgm_modelfile_tensor_count(const kgm_modelfile *mf);
/* The data of tensor `name`, which must be rows x cols: KGM_ENOTFOUND when absent, KGM_EFORMAT
 * naming both shapes when different. */
int kgm_modelfile_tensor(const kgm_modelfile *mf, const char *name, int rows, int cols,
                         const float **data);
/* Copy every view of `layout` (named prefix + view name, shapes checked) into `flat`. All or
 * nothing: on error flat is unchanged. */
int kgm_modelfile_read_layout(const kgm_modelfile *mf, const char *prefix,
                              const kgm_layout *layout, float *flat);

#endif
