/* tests/test_store_crash.c - crash safety of a directory store, on 'trees' and "kgmeta":
 * a child process adds triples one at a time (each kgm_store_add journals and fsyncs
 * before it returns) and writes an acknowledgment to a pipe after each one; the parent
 * SIGKILLs it at a random moment, reopens the store and checks it holds exactly the
 * acknowledged triples, plus at most the one add in flight. In the second mode the child
 * also compacts every few adds (rewriting the snapshot and resetting the journal), so kills
 * land in the middle of snapshot rewrites too. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "error.h"
#include "store.h"
#include "tmpdir.h"

/* For LeakSanitizer builds: raptor 2.0.15's N-Triples parser, which "kgmeta" loads use,
 * leaves a URI of its world referenced after typed literals (one per datatype and world;
 * reproduced with raptor alone, see tests/test_istore.c). Matched by library because
 * raptor has no frame pointers. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libraptor2.so\n";
}

#define BASE   2000        /* triples loaded before the adds, so a compaction takes a while */
#define ROUNDS 4           /* kills per storage and mode */

static uint64_t rng = 12345;

static unsigned next_random(unsigned n)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static int setup(void **state)
{
    (void)state;
    return tmpdir_make("crash_test");
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove();
}

static void send_ack(int fd, uint32_t v)
{
    if (write(fd, &v, sizeof v) != sizeof v) _exit(3);
}

/* The child: a base graph, "ready" (ack 0), then add i and acknowledge i + 1, forever. */
static void child(const char *dir, const char *storage, int compact_every, int fd)
{
    kgm_store *s;
    if (kgm_store_open_with(&s, dir, storage)) _exit(2);
    char *text = malloc(BASE * 64), *p = text;
    for (int i = 0; i < BASE; i++) p += sprintf(p, "<http://ex.org/b%d> <http://ex.org/base> \"%d\" .\n", i, i);
    size_t n;
    if (kgm_store_load_string(s, text, "ntriples", NULL, &n)) _exit(2);
    send_ack(fd, 0);
    for (uint32_t i = 0;; i++) {
        char subj[64], obj[32];
        snprintf(subj, sizeof subj, "<http://ex.org/s%u>", i);
        snprintf(obj, sizeof obj, "%u", i);
        if (kgm_store_add(s, subj, "<http://ex.org/p>", obj)) _exit(2);
        send_ack(fd, i + 1);
        if (compact_every && (i + 1) % compact_every == 0 && kgm_store_compact(s)) _exit(2);
    }
}

/* Reads acknowledgments until the pipe closes; returns the last one (-1: none). */
static long last_ack(int fd)
{
    uint32_t v;
    long last = -1;
    while (read(fd, &v, sizeof v) == sizeof v) last = v;
    return last;
}

/* The reopened store must hold the base, adds 0 .. acked-1, and perhaps add `acked`. */
static void check_store(const char *dir, const char *storage, long acked)
{
    kgm_store *s;
    if (kgm_store_open_with(&s, dir, storage)) fail_msg("reopen: %s", kgm_error());
    kgm_table *t;
    assert_int_equal(kgm_store_query(s, "SELECT ?o WHERE { ?s <http://ex.org/p> ?o }", NULL, &t), 0);
    size_t rows = t->n_rows;
    if (rows != (size_t)acked && rows != (size_t)acked + 1)
        fail_msg("%s: %zu adds in the store, %ld acknowledged", storage, rows, acked);
    char *seen = calloc(rows + 1, 1);
    for (size_t r = 0; r < rows; r++) {
        unsigned long v = strtoul(kgm_table_cell(t, r, 0)->value, NULL, 10);
        assert_true(v < rows);
        seen[v] = 1;
    }
    for (size_t r = 0; r < rows; r++) assert_true(seen[r]);     /* exactly 0 .. rows-1 */
    free(seen);
    kgm_table_free(t);
    assert_int_equal(kgm_store_size(s), BASE + rows);
    /* The store still works after the crash: one more change survives a reopen. */
    assert_int_equal(kgm_store_add(s, "<http://ex.org/after>", "<http://ex.org/q>", "1"), 0);
    kgm_store_free(s);
    assert_int_equal(kgm_store_open_with(&s, dir, storage), 0);
    assert_int_equal(kgm_store_size(s), BASE + rows + 1);
    kgm_store_free(s);
}

static void kill_rounds(const char *storage, int compact_every)
{
    for (int round = 0; round < ROUNDS; round++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s-%d-%d", tmpdir, storage, compact_every, round);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(dir, storage, compact_every, fds[1]);
        }
        close(fds[1]);
        uint32_t ready;
        assert_int_equal(read(fds[0], &ready, sizeof ready), sizeof ready);
        usleep(1000 + next_random(25000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));              /* it died by the kill, not by an error */
        long acked = last_ack(fds[0]);
        close(fds[0]);
        if (acked < 0) acked = ready;
        check_store(dir, storage, acked);
    }
}

static void killed_while_appending_trees(void **state)  { (void)state; kill_rounds("trees", 0); }
static void killed_while_appending_kgmeta(void **state) { (void)state; kill_rounds("kgmeta", 0); }
static void killed_while_compacting_trees(void **state)  { (void)state; kill_rounds("trees", 3); }
static void killed_while_compacting_kgmeta(void **state) { (void)state; kill_rounds("kgmeta", 3); }

int main(void)
{
    rng ^= (uint64_t)time(NULL);           /* different kill moments on every run */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(killed_while_appending_trees),
        cmocka_unit_test(killed_while_appending_kgmeta),
        cmocka_unit_test(killed_while_compacting_trees),
        cmocka_unit_test(killed_while_compacting_kgmeta),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
