/* tests/fuzz_csv.c - libFuzzer target over the CSV reader (kg/csv.h): any bytes, with a
 * comma or a tab as delimiter (the first byte chooses). On success every cell is read and
 * every column converted to numbers, so the accessors and the number conversion see the
 * parsed result too; on failure the error must be one non-empty line. Built only with
 * -DKGM_FUZZ=ON and clang (tests/fuzz.cmake); seeds in tests/fuzz/csv/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536) return 0;
    char delim = (data[0] & 1) ? '\t' : ',';
    kgm_csv *c = NULL;
    if (kgm_csv_parse(&c, (const char *)data + 1, size - 1, "fuzz.csv", delim) != 0) {
        const char *msg = kgm_error();
        if (c || !msg || !*msg || strchr(msg, '\n')) abort();
        return 0;
    }
    size_t rows = kgm_csv_rows(c), cols = kgm_csv_cols(c);
    size_t seen = 0;
    for (size_t j = 0; j < cols; j++) {
        const char *name = kgm_csv_name(c, j);
        if (!name || !*name || kgm_csv_column(c, name) != (int)j) abort();   /* unique, non-empty */
        for (size_t i = 0; i < rows; i++) {
            const char *cell = kgm_csv_cell(c, i, j);
            if (!cell) abort();
            seen += strlen(cell);
            double v;
            (void)kgm_csv_number(c, i, j, &v);
        }
    }
    const char **names = malloc((cols ? cols : 1) * sizeof *names);
    double *out = malloc((rows * cols + 1) * sizeof *out);
    if (names && out) {
        for (size_t j = 0; j < cols; j++) names[j] = kgm_csv_name(c, j);
        (void)kgm_csv_numbers(c, names, cols, out);
    }
    free(names);
    free(out);
    kgm_csv_free(c);
    return seen > size ? (abort(), 0) : 0;   /* cells come from the input: never longer */
}
