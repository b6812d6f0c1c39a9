/* tests/fuzz_modelfile.c - libFuzzer target over the model file reader (src/modelfile.h).
 * Random bytes almost never pass the checksum, so for inputs whose first byte is odd the
 * harness writes a correct total size and checksum over the rest first: then the structure
 * decoder (config lines, tensor names and shapes) sees hostile but checksummed input, as it
 * would from a file damaged before it was checksummed. A load must either succeed with every
 * configuration entry readable, or fail with one non-empty line and nothing returned.
 * Built only with -DKGM_FUZZ=ON and clang (tests/fuzz.cmake); seeds in tests/fuzz/modelfile/. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "modelfile.h"

static void put_le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* The format's checksum (FNV-1a 64), restated here so the harness does not reach into
 * modelfile.c's internals. */
static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 20) return 0;
    size_t n = size - 1;
    uint8_t *body = malloc(n ? n : 1);
    if (!body) return 0;
    memcpy(body, data + 1, n);
    if ((data[0] & 1) && n >= 20 + 8) {          /* magic 8, version 4, total size 8 */
        put_le(body + 12, n);
        put_le(body + n - 8, fnv1a64(body, n - 8));
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/kgm_fuzz_modelfile.%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (fwrite(body, 1, n, f) != n || fclose(f) != 0) abort();
    free(body);

    kgm_modelfile *mf = NULL;
    if (kgm_modelfile_load(&mf, path) != 0) {
        const char *msg = kgm_error();
        if (mf || !msg || !*msg || strchr(msg, '\n')) abort();
        unlink(path);
        return 0;
    }
    unlink(path);
    for (int i = 0; i < kgm_modelfile_config_count(mf); i++) {
        const char *k, *v;
        if (kgm_modelfile_config_at(mf, i, &k, &v) != 0 || !k || !v) abort();
        if (kgm_modelfile_get(mf, k) == NULL) abort();
    }
    const float *t;
    if (kgm_modelfile_tensor(mf, "", 1, 1, &t) == 0) abort();   /* names are 1..255 bytes */
    kgm_modelfile_free(mf);
    return 0;
}
