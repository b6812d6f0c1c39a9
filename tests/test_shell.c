/* tests/test_shell.c - the command language below the terminal: splitting lines,
 * options, quotes and comments; "did you mean"; arity and option errors; settings
 * changed all-or-nothing; -c splitting at ';'; completion of commands and options; that
 * all output goes through the shell's two streams; and that an adaptation or a model load
 * the store cannot record is not kept. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "error.h"
#include "shell.h"
#include "tmpdir.h"

/* ---- parsing ---- */

static void splits_words_options_and_terms(void **state)
{
    (void)state;
    kgm_shell_args a;
    assert_int_equal(kgm_shell_parse("  add ex:t1 rdfs:label \"two words\"@en  ", -1, &a), 0);
    assert_string_equal(a.name, "add");
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[2], "\"two words\"@en");      /* raw: the store parses it */
    kgm_shell_args_free(&a);

    assert_int_equal(kgm_shell_parse("set mode=csv path=\"a b\" ex:a=b <http://x?q=1>", -1, &a), 0);
    assert_int_equal(a.n_opts, 2);
    assert_string_equal(a.opt_name[0], "mode");
    assert_string_equal(a.opt_value[0], "csv");
    assert_string_equal(a.opt_value[1], "a b");
    assert_int_equal(a.argc, 2);                              /* RDF terms are never options */
    assert_string_equal(a.argv[0], "ex:a=b");
    assert_string_equal(a.argv[1], "<http://x?q=1>");
    kgm_shell_args_free(&a);
}

static void comments_blank_lines_and_raw_rest(void **state)
{
    (void)state;
    kgm_shell_args a;
    assert_int_equal(kgm_shell_parse("   # only a comment", -1, &a), 0);
    assert_null(a.name);
    kgm_shell_args_free(&a);
    assert_int_equal(kgm_shell_parse("show mode # why", -1, &a), 0);
    assert_int_equal(a.argc, 1);
    kgm_shell_args_free(&a);
    assert_int_equal(kgm_shell_parse("query SELECT ?s WHERE { ?s ?p \"x y\" }  ", 0, &a), 0);
    assert_int_equal(a.argc, 1);
    assert_string_equal(a.argv[0], "SELECT ?s WHERE { ?s ?p \"x y\" }");
    kgm_shell_args_free(&a);
}

static void refuses_unterminated_quotes_and_too_many_words(void **state)
{
    (void)state;
    kgm_shell_args a;
    assert_int_equal(kgm_shell_parse("add ex:a ex:b \"open", -1, &a), KGM_ESYNTAX);
    assert_non_null(strstr(kgm_error(), "unterminated quote"));
    kgm_shell_args_free(&a);
    char line[1024] = "echo";
    for (int i = 0; i < 70; i++) strcat(line, " w");
    assert_int_equal(kgm_shell_parse(line, -1, &a), KGM_ESYNTAX);
    assert_non_null(strstr(kgm_error(), "too many arguments"));
    kgm_shell_args_free(&a);
}

static void unquotes_in_place(void **state)
{
    (void)state;
    char a[] = "\"say \\\"hi\\\"\"", b[] = "'x'", c[] = "plain", d[] = "\"";
    assert_string_equal(kgm_shell_unquote(a), "say \"hi\"");
    assert_string_equal(kgm_shell_unquote(b), "x");
    assert_string_equal(kgm_shell_unquote(c), "plain");
    assert_string_equal(kgm_shell_unquote(d), "\"");
}

static void suggests_the_closest_command(void **state)
{
    (void)state;
    assert_string_equal(kgm_shell_closest("shwo"), "show");
    assert_string_equal(kgm_shell_closest("hlep"), "help");
    assert_string_equal(kgm_shell_closest("sle"), "sleep");   /* a prefix */
    assert_null(kgm_shell_closest("xyzzyplugh"));
}

/* ---- running, output captured ---- */

typedef struct { kgm_shell *sh; FILE *out, *err; char *obuf, *ebuf; size_t olen, elen; } rig;

static int rig_up(void **state)
{
    rig *r = calloc(1, sizeof *r);
    r->out = open_memstream(&r->obuf, &r->olen);
    r->err = open_memstream(&r->ebuf, &r->elen);
    assert_int_equal(kgm_shell_new(&r->sh, r->out, r->err), 0);
    *state = r;
    return 0;
}

static int rig_down(void **state)
{
    rig *r = *state;
    kgm_shell_free(r->sh);
    fclose(r->out);
    fclose(r->err);
    free(r->obuf);
    free(r->ebuf);
    free(r);
    return 0;
}

static void flush(rig *r) { fflush(r->out); fflush(r->err); }

static void errors_name_what_was_expected(void **state)
{
    rig *r = *state;
    assert_int_equal(kgm_shell_exec(r->sh, "shwo mode"), 1);
    assert_int_equal(kgm_shell_exec(r->sh, "sleep"), 1);
    assert_int_equal(kgm_shell_exec(r->sh, "show colour=red"), 1);
    flush(r);
    assert_non_null(strstr(r->ebuf, "unknown command 'shwo' (did you mean 'show'?"));
    assert_non_null(strstr(r->ebuf, "sleep: expected 1 argument, got 0 (usage: sleep MS)"));
    assert_non_null(strstr(r->ebuf, "show: unknown option 'colour='"));
    assert_int_equal(r->sh->n_errors, 3);
    assert_int_equal(r->olen, 0);                 /* errors never reach the result stream */
}

static void settings_change_all_or_nothing(void **state)
{
    rig *r = *state;
    assert_int_equal(kgm_shell_exec(r->sh, "set mode=csv seed=9"), 0);
    assert_int_equal(r->sh->mode, KGM_MODE_CSV);
    assert_int_equal(r->sh->seed, 9);
    assert_int_equal(kgm_shell_exec(r->sh, "set seed=10 threads=0"), 1);
    assert_int_equal(r->sh->seed, 9);             /* the good value beside the bad one too */
    assert_int_equal(kgm_shell_exec(r->sh, "set timer off"), 0);
    assert_int_equal(kgm_shell_exec(r->sh, "show seed"), 0);
    flush(r);
    assert_string_equal(r->obuf, "setting,value,values,meaning\r\n"
                                 "seed,9,0..4294967295,seed for every random choice\r\n");
}

static void command_strings_split_at_top_level_semicolons(void **state)
{
    rig *r = *state;
    assert_int_equal(kgm_shell_run_string(r->sh, "echo a; echo \"b;c\"; quit; echo never", "-c"), 2);
    flush(r);
    assert_string_equal(r->obuf, "a\n\"b;c\"\n");
    assert_int_equal(kgm_shell_run_string(r->sh, "echo x; nope; echo y", "-c"), 1);
    flush(r);
    assert_non_null(strstr(r->ebuf, "-c:2: unknown command 'nope'"));
    assert_null(strstr(r->obuf, "y\n"));          /* bail: the third part never ran */
}

static void scripts_stop_at_the_first_error_unless_told(void **state)
{
    rig *r = *state;
    const char *text = "echo one\n\n# comment\nbogus\necho two\n";
    FILE *in = fmemopen((void *)text, strlen(text), "r");
    assert_int_equal(kgm_shell_run_file(r->sh, in, "s.kgm"), 1);
    fclose(in);
    flush(r);
    assert_non_null(strstr(r->ebuf, "s.kgm:4: unknown command 'bogus'"));
    assert_null(strstr(r->obuf, "two"));
    r->sh->bail = 0;
    in = fmemopen((void *)text, strlen(text), "r");
    assert_int_equal(kgm_shell_run_file(r->sh, in, "s.kgm"), 0);
    fclose(in);
    flush(r);
    assert_non_null(strstr(r->obuf, "two"));
}

static char **complete(rig *r, const char *line)
{
    const char *sp = strrchr(line, ' ');
    int start = sp ? (int)(sp - line) + 1 : 0;
    return kgm_shell_complete(r->sh, line, start, line + start);
}

static int has(char **c, const char *s)
{
    for (; c && *c; c++)
        if (!strcmp(*c, s)) return 1;
    return 0;
}

static void free_list(char **c)
{
    for (char **p = c; p && *p; p++) free(*p);
    free(c);
}

static void completes_commands_and_options(void **state)
{
    rig *r = *state;
    char **c = complete(r, "sh");
    assert_true(has(c, "show"));
    assert_false(has(c, "set"));
    free_list(c);
    c = complete(r, "set mo");
    assert_true(has(c, "mode="));
    assert_false(has(c, "seed="));
    free_list(c);
    c = complete(r, "help sl");
    assert_true(has(c, "sleep"));
    free_list(c);
    assert_null(complete(r, "zzz"));
}

/* The output of the next command alone. */
static const char *output_of(rig *r, const char *line)
{
    flush(r);
    size_t from = r->olen;
    assert_int_equal(kgm_shell_exec(r->sh, line), 0);
    flush(r);
    return r->obuf + from;
}

/* Runs line with the journal at path unable to grow (a file-size limit at its current length
 * makes every append fail): the command must fail for that reason and leave the file as it was. */
static void exec_journal_full(rig *r, const char *journal, const char *line)
{
    struct stat st;
    assert_int_equal(stat(journal, &st), 0);
    struct rlimit was, cap;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    cap = was;
    cap.rlim_cur = (rlim_t)st.st_size;
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &cap), 0);
    int rc = kgm_shell_exec(r->sh, line);
    setrlimit(RLIMIT_FSIZE, &was);
    signal(SIGXFSZ, old);
    assert_int_equal(rc, 1);
    flush(r);
    assert_non_null(strstr(r->ebuf, "cannot write the journal"));
    assert_int_equal(stat(journal, &st), 0);
    assert_int_equal(st.st_size, cap.rlim_cur);
}

/* adapt records the adaptation in the store, and model load a file the store has no record
 * of, before the session keeps either: when the store cannot be written the command fails
 * and the session keeps the model and the adaptation it had. */
static void what_the_store_cannot_record_is_not_kept(void **state)
{
    rig *r = *state;
    char line[320], journal[300];
    assert_int_equal(tmpdir_make("shell"), 0);
    const char *dir = tmpdir;
    snprintf(line, sizeof line, "open %s/db", dir);
    snprintf(journal, sizeof journal, "%s/db/journal", dir);
    const char *setup =
        "prefix kgm <http://kgmeta.org/ns#>; prefix ex <http://example.org/>;"
        "add ex:G a kgm:Generator; add ex:G kgm:function kgm:Sine; add ex:G kgm:noiseStd 0.0;"
        "task ex:t1 role=train generator=ex:G a=1.0 b=0.5; task ex:t2 role=train generator=ex:G a=3.0 b=2.0;"
        "task ex:new role=test generator=ex:G a=2.5 b=0.3;"
        "train source=graph iterations=20 batch=2 threads=1 seed=7; adapt ex:t1 steps=2";
    assert_int_equal(kgm_shell_exec(r->sh, line), 0);
    assert_int_equal(kgm_shell_run_string(r->sh, setup, "-c"), 0);
    char *kept = strdup(output_of(r, "predict x=0,1.5"));
    exec_journal_full(r, journal, "adapt ex:new steps=5");
    assert_string_equal(output_of(r, "predict x=0,1.5"), kept);
    /* the same adaptation, recorded, changes the predictions: the comparison above can fail */
    assert_int_equal(kgm_shell_exec(r->sh, "adapt ex:new steps=5"), 0);
    free(kept);
    kept = strdup(output_of(r, "predict x=0,1.5"));
    snprintf(line, sizeof line, "model save %s/m.kgmm", dir);
    assert_int_equal(kgm_shell_exec(r->sh, line), 0);
    snprintf(line, sizeof line, "open %s/db2", dir);
    assert_int_equal(kgm_shell_exec(r->sh, line), 0);
    snprintf(journal, sizeof journal, "%s/db2/journal", dir);
    snprintf(line, sizeof line, "model load %s/m.kgmm", dir);
    exec_journal_full(r, journal, line);
    assert_string_equal(output_of(r, "predict x=0,1.5"), kept);
    /* loaded, the model starts unadapted: the comparison above can fail */
    assert_int_equal(kgm_shell_exec(r->sh, line), 0);
    assert_int_equal(kgm_shell_exec(r->sh, "predict x=0,1.5"), 1);
    free(kept);
    assert_int_equal(tmpdir_remove(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(splits_words_options_and_terms),
        cmocka_unit_test(comments_blank_lines_and_raw_rest),
        cmocka_unit_test(refuses_unterminated_quotes_and_too_many_words),
        cmocka_unit_test(unquotes_in_place),
        cmocka_unit_test(suggests_the_closest_command),
        cmocka_unit_test_setup_teardown(errors_name_what_was_expected, rig_up, rig_down),
        cmocka_unit_test_setup_teardown(settings_change_all_or_nothing, rig_up, rig_down),
        cmocka_unit_test_setup_teardown(command_strings_split_at_top_level_semicolons, rig_up, rig_down),
        cmocka_unit_test_setup_teardown(scripts_stop_at_the_first_error_unless_told, rig_up, rig_down),
        cmocka_unit_test_setup_teardown(completes_commands_and_options, rig_up, rig_down),
        cmocka_unit_test_setup_teardown(what_the_store_cannot_record_is_not_kept, rig_up, rig_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
