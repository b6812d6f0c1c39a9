/* shell/main.c - the kgmeta program: placeholder front end until the shell lands. */
#include <stdio.h>
#include <string.h>

#include "kgm_version.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) { printf("kgmeta %s\n", KGM_VERSION); return 0; }
        if (!strcmp(argv[i], "--help")) { printf("usage: kgmeta [--help] [--version]\n"); return 0; }
        fprintf(stderr, "kgmeta: unknown option '%s' (try --help)\n", argv[i]);
        return 1;
    }
    printf("kgmeta %s\n", KGM_VERSION);
    return 0;
}
