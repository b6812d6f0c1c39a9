/* bench/bench_startup.c - time from launch to prompt with an empty (scratch) store.
 * Two figures, each the median of N runs: (1) batch, `kgmeta --no-rc -c ''` from exec to
 * exit; (2) interactive, kgmeta on a pseudo-terminal from fork to the first "kgmeta> "
 * on the screen (then Ctrl-D). The reference is /bin/true spawned the same way, the
 * floor any program pays here. Target: interactive median under 30 ms.
 *     usage: bench_startup [PATH-TO-KGMETA] [RUNS]   (default $KGM_BINARY, else ./kgmeta; 50) */
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* fork + exec + wait, stdout and stderr to /dev/null. */
static double batch_run(char *const argv[])
{
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    double t = now_ms() - t0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_startup: %s failed (status %d)\n", argv[0], st);
        exit(1);
    }
    return t;
}

/* Launch on a pty and wait for the prompt; -1 when it never came. */
static double prompt_run(const char *bin)
{
    int fd;
    double t0 = now_ms();
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    if (pid == 0) {
        setenv("TERM", "vt100", 1);
        setenv("KGMETA_HISTORY", "/dev/null", 1);
        execl(bin, bin, "--no-rc", (char *)NULL);
        _exit(127);
    }
    char buf[8192];
    size_t len = 0;
    double t = -1;
    while (now_ms() - t0 < 5000) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "kgmeta> ")) { t = now_ms() - t0; break; }
    }
    if (write(fd, "\x04", 1) != 1) kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fd);
    return t;
}

int main(int argc, char **argv)
{
    const char *bin = argc > 1 ? argv[1] : getenv("KGM_BINARY") ? getenv("KGM_BINARY") : "./kgmeta";
    int runs = argc > 2 ? atoi(argv[2]) : 50;
    if (runs < 1 || access(bin, X_OK) != 0) {
        fprintf(stderr, "usage: bench_startup [PATH-TO-KGMETA] [RUNS]  (%s not executable?)\n", bin);
        return 1;
    }
    double *ref = malloc(sizeof(double) * (size_t)runs), *batch = malloc(sizeof(double) * (size_t)runs),
           *prompt = malloc(sizeof(double) * (size_t)runs);
    char *true_argv[] = { "/bin/true", NULL };
    char *kgm_argv[] = { (char *)bin, "--no-rc", "-c", "", NULL };
    for (int i = 0; i < runs; i++) {     /* interleaved, so load on the machine hits all */
        ref[i] = batch_run(true_argv);
        batch[i] = batch_run(kgm_argv);
        prompt[i] = prompt_run(bin);
        if (prompt[i] < 0) { fprintf(stderr, "bench_startup: no prompt within 5 s\n"); return 1; }
    }
    double r = median(ref, runs), b = median(batch, runs), p = median(prompt, runs);
    printf("startup of %s, median of %d runs\n", bin, runs);
    printf("  /bin/true spawn (reference)   %7.2f ms\n", r);
    printf("  batch: -c '' to exit          %7.2f ms  (%.1fx reference)\n", b, b / r);
    printf("  interactive: launch to prompt %7.2f ms  (%.1fx reference)  target < 30 ms: %s\n",
           p, p / r, p < 30 ? "met" : "MISSED");
    free(ref);
    free(batch);
    free(prompt);
    return 0;
}
