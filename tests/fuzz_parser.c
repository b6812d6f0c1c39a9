/* tests/fuzz_parser.c - libFuzzer target over the shell's command language: the line
 * splitter, unquoting, "did you mean", multi-line detection, completion, and running the
 * command itself on a scratch shell for every command without side effects outside the
 * process. Built only with -DKGM_FUZZ=ON and clang (tests/fuzz.cmake). Any crash, hang
 * or sanitizer report is a bug in the shell: scripts feed it arbitrary text. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "shell.h"

/* Commands that touch files, run long (training), sleep or leave: parsed and checked, but not run here. */
static int has_side_effects(const char *name)
{
    static const char *const skip[] = { "sleep", "open", "load", "export", "compact",
                                        "train", "embed", "model", "plot", NULL };   /* long or write files */
    for (const char *const *s = skip; *s; s++)
        if (!strcmp(name, *s)) return 1;
    return 0;
}

static kgm_shell *scratch_shell(void)
{
    static kgm_shell *sh;
    if (!sh) {
        FILE *null = fopen("/dev/null", "w");
        if (!null || kgm_shell_new(&sh, null, null) != 0) abort();
        sh->bail = 0;
    }
    return sh;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int raw_after = size ? (int)(data[0] % 4) - 1 : -1;

    kgm_shell_args a;
    if (kgm_shell_parse(text, raw_after, &a) == 0 && a.name) {
        kgm_shell_closest(a.name);
        for (int i = 0; i < a.argc; i++) kgm_shell_unquote(a.argv[i]);
    }
    kgm_shell_args_free(&a);
    kgm_shell_needs_more(text);

    kgm_shell *sh = scratch_shell();
    int start = (int)(size ? data[size - 1] % (size + 1) : 0);
    char **c = kgm_shell_complete(sh, text, start, text + start);
    for (char **p = c; p && *p; p++) free(*p);
    free(c);

    kgm_shell_args first;
    int ok = kgm_shell_parse(text, 0, &first) == 0 && first.name && !has_side_effects(first.name);
    kgm_shell_args_free(&first);
    if (ok && !strchr(text, ';')) kgm_shell_exec(sh, text);
    kgm_error_clear();
    free(text);
    return 0;
}
