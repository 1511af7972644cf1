/* launch.c — tritonserver as a child process (see launch.h). */
#define _POSIX_C_SOURCE 200809L
#include "launch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "veil/client.h"

veil_status veil_triton_env_find(const char *source_dir, veil_triton_env *out) {
    memset(out, 0, sizeof *out);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/setup-triton.sh' --env 2>&1", source_dir);
    FILE *p = popen(cmd, "r");
    if (!p) return veil_error(VEIL_ERR_IO, "cannot run scripts/setup-triton.sh");
    char line[8192], last[8192] = "";
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "export ", 7)) {
            /* export VEIL_TRITON_VENV=... TRITONSERVER=... TRITON_LIBS=... */
            for (char *t = strtok(line + 7, " "); t; t = strtok(NULL, " ")) {
                if (!strncmp(t, "TRITONSERVER=", 13))
                    snprintf(out->server, sizeof out->server, "%s", t + 13);
                else if (!strncmp(t, "TRITON_LIBS=", 12))
                    snprintf(out->libs, sizeof out->libs, "%s", t + 12);
                else if (!strncmp(t, "VEIL_TRITON_VENV=", 17))
                    snprintf(out->python, sizeof out->python, "%.4000s/bin/python", t + 17);
            }
        } else if (line[0]) {
            snprintf(last, sizeof last, "%s", line);
        }
    }
    int rc = pclose(p);
    const char *why = last[0] ? last : "scripts/setup-triton.sh failed";
    /* Exit 77: Triton cannot be had here, or its install failed outside CI
     * (scripts/venv-lib.sh venv_fail_status, the one rule): the tests skip.
     * Any other failure (an install that should have worked, under
     * VEIL_REQUIRE_VENVS=1) is an error they report. */
    if (rc != 0 && !(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 77))
        return veil_error(VEIL_ERR_IO, "scripts/setup-triton.sh failed: %s", why);
    if (rc != 0 || !out->server[0] || access(out->server, X_OK) != 0)
        return veil_error(VEIL_ERR_UNSUPPORTED, "no Triton Inference Server here: %s", why);
    return VEIL_OK;
}

static veil_status write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        return veil_error(VEIL_ERR_IO, "%s: %s", path, strerror(errno));
    return VEIL_OK;
}

static veil_status model_dir(const char *repo, const char *name, const char *model_path) {
    char d[4400], l[4500];
    snprintf(d, sizeof d, "%s/%s", repo, name);
    if (mkdir(d, 0755) && errno != EEXIST)
        return veil_error(VEIL_ERR_IO, "%s: %s", d, strerror(errno));
    snprintf(d, sizeof d, "%s/%s/1", repo, name);
    if (mkdir(d, 0755) && errno != EEXIST)
        return veil_error(VEIL_ERR_IO, "%s: %s", d, strerror(errno));
    snprintf(l, sizeof l, "%s/model.h5", d);
    unlink(l);
    char abs[4096];
    if (!realpath(model_path, abs))
        return veil_error(VEIL_ERR_IO, "%s: %s", model_path, strerror(errno));
    if (symlink(abs, l)) return veil_error(VEIL_ERR_IO, "%s: %s", l, strerror(errno));
    return VEIL_OK;
}

veil_status veil_triton_repo_write(const char *repo, const veil_triton_repo_options *o) {
    if (mkdir(repo, 0755) && errno != EEXIST)
        return veil_error(VEIL_ERR_IO, "%s: %s", repo, strerror(errno));
    VEIL_TRY(model_dir(repo, o->name, o->model_path));
    VEIL_TRY(model_dir(repo, "veil_keys", o->model_path));
    char group[256] = "", gpus[128] = "";
    if (o->gpu && o->gpus > 0) {
        size_t n = (size_t)snprintf(gpus, sizeof gpus, ", gpus: [");
        for (int g = 0; g < o->gpus && n < sizeof gpus - 8; g++)
            n += (size_t)snprintf(gpus + n, sizeof gpus - n, "%s%d", g ? ", " : "", g);
        snprintf(gpus + n, sizeof gpus - n, "]");
    }
    snprintf(group, sizeof group, "instance_group [ { kind: %s, count: %d%s } ]",
             o->gpu ? "KIND_GPU" : "KIND_CPU", o->count > 0 ? o->count : 1, gpus);
    char *text = malloc(16384);
    if (!text) return veil_error(VEIL_ERR_NOMEM, "out of memory");
    snprintf(text, 16384,
             "name: \"%s\"\nbackend: \"veil\"\nmax_batch_size: %d\n"
             "dynamic_batching { max_queue_delay_microseconds: %d }\n%s\n"
             "input [\n  { name: \"KEY_ID\", data_type: TYPE_STRING, dims: [ 1 ] },\n"
             "  { name: \"CT_BATCH\", data_type: TYPE_STRING, dims: [ 1 ] }\n]\n"
             "output [ { name: \"RESULT\", data_type: TYPE_STRING, dims: [ 1 ] } ]\n"
             "parameters: { key: \"keys_dir\" value: { string_value: \"%s\" } }\n"
             "parameters: { key: \"max_batch\" value: { string_value: \"%zu\" } }\n%s",
             o->name, o->max_batch_size > 0 ? o->max_batch_size : 8,
             o->max_queue_delay_us > 0 ? o->max_queue_delay_us : 10000, group, o->keys_dir,
             o->max_batch ? o->max_batch : 16, o->extra ? o->extra : "");
    char path[4400];
    snprintf(path, sizeof path, "%s/%s/config.pbtxt", repo, o->name);
    veil_status st = write_file(path, text);
    snprintf(text, 16384,
             "name: \"veil_keys\"\nbackend: \"veil\"\nmax_batch_size: 0\n"
             "instance_group [ { kind: KIND_CPU, count: 1 } ]\n"
             "input [\n  { name: \"EVAL_KEY\", data_type: TYPE_STRING, dims: [ 1, 1 ], "
             "optional: true },\n"
             "  { name: \"DELETE_KEY_ID\", data_type: TYPE_STRING, dims: [ 1, 1 ], "
             "optional: true }\n]\n"
             "output [ { name: \"KEY_ID\", data_type: TYPE_STRING, dims: [ 1, 1 ] } ]\n"
             "parameters: { key: \"role\" value: { string_value: \"keys\" } }\n"
             "parameters: { key: \"keys_dir\" value: { string_value: \"%s\" } }\n%s",
             o->keys_dir, o->extra ? o->extra : "");
    snprintf(path, sizeof path, "%s/veil_keys/config.pbtxt", repo);
    if (!st) st = write_file(path, text);
    free(text);
    return st;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void log_tail(const char *path, char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f))
        if (strstr(line, "rror") || strstr(line, "failed") || strstr(line, "veil"))
            snprintf(out, cap, "%s", line);
    fclose(f);
    out[strcspn(out, "\n")] = 0;
}

/* Copies the last `lines` lines of path to f. */
static void copy_tail(const char *path, FILE *f, size_t lines) {
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(f, "  (cannot read %s)\n", path);
        return;
    }
    size_t total = 0;
    char line[2048];
    while (fgets(line, sizeof line, in))
        total += strchr(line, '\n') != NULL;
    rewind(in);
    size_t n = 0;
    while (fgets(line, sizeof line, in)) {
        if (n + lines >= total) fputs(line, f);
        n += strchr(line, '\n') != NULL;
    }
    fclose(in);
}

/* A server whose model never became ready: its log's tail, each thread's
 * state and kernel wait channel (/proc), and every thread's stack from gdb
 * when there is one (the child allowed its parent's descendants to trace
 * it), to stderr and to <log>.threads, so that the failure can be
 * diagnosed after the run (test_triton's "not ready" under ASan). */
static void dump_stuck(const veil_triton_server *s, const char *log_path) {
    fprintf(stderr, "\n---- tritonserver pid %d not ready: last 80 lines of %s ----\n", (int)s->pid,
            log_path);
    copy_tail(log_path, stderr, 80);
    fprintf(stderr, "---- threads (/proc/%d/task: tid comm state wchan) ----\n", (int)s->pid);
    char cmd[4600];
    snprintf(cmd, sizeof cmd,
             "for t in /proc/%d/task/*; do printf '%%s %%s %%s %%s\\n' \"${t##*/}\" "
             "\"$(cat $t/comm)\" \"$(awk '{print $3}' $t/stat)\" \"$(cat $t/wchan)\"; done "
             "2>/dev/null",
             (int)s->pid);
    FILE *p = popen(cmd, "r");
    char line[2048];
    while (p && fgets(line, sizeof line, p))
        fputs(line, stderr);
    if (p) pclose(p);
    char threads[4300];
    snprintf(threads, sizeof threads, "%s.threads", log_path);
    snprintf(cmd, sizeof cmd,
             "command -v gdb >/dev/null || { echo 'no gdb: no stacks'; exit 0; }; "
             "timeout 120 gdb -p %d -batch -nx -ex 'set pagination off' "
             "-ex 'thread apply all bt' 2>&1 | tee '%s'",
             (int)s->pid, threads);
    fprintf(stderr, "---- stacks (gdb; also in %s) ----\n", threads);
    fflush(stderr);
    p = popen(cmd, "r");
    while (p && fgets(line, sizeof line, p))
        fputs(line, stderr);
    if (p) pclose(p);
    fprintf(stderr, "---- end of tritonserver pid %d ----\n", (int)s->pid);
}

int veil_triton_server_alive(veil_triton_server *s) {
    if (s->pid <= 0) return 0;
    int status;
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r == s->pid) {
        s->pid = 0;
        return 0;
    }
    return r == 0;
}

veil_status veil_triton_server_start(const veil_triton_env *env, const char *repo,
                                     const char *backend_dir, const char *model,
                                     const char *log_path, int timeout_s, veil_triton_server *out) {
    memset(out, 0, sizeof *out);
    out->http_port = free_port();
    out->grpc_port = free_port();
    out->metrics_port = free_port();
    if (out->http_port < 0 || out->grpc_port < 0 || out->metrics_port < 0 ||
        out->http_port == out->grpc_port || out->grpc_port == out->metrics_port ||
        out->http_port == out->metrics_port)
        return veil_error(VEIL_ERR_IO, "no free loopback ports");
    snprintf(out->url, sizeof out->url, "http://127.0.0.1:%d", out->http_port);
    snprintf(out->log, sizeof out->log, "%s", log_path);
    char a_repo[4200], a_be[4200], a_http[32], a_grpc[32], a_met[32];
    snprintf(a_repo, sizeof a_repo, "--model-repository=%s", repo);
    snprintf(a_be, sizeof a_be, "--backend-directory=%s", backend_dir);
    snprintf(a_http, sizeof a_http, "--http-port=%d", out->http_port);
    snprintf(a_grpc, sizeof a_grpc, "--grpc-port=%d", out->grpc_port);
    snprintf(a_met, sizeof a_met, "--metrics-port=%d", out->metrics_port);
    pid_t pid = fork();
    if (pid < 0) return veil_error(VEIL_ERR_IO, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("LD_LIBRARY_PATH", env->libs, 1);
        /* the parent and its children (gdb, dump_stuck) may read its stacks
         * under Yama's ptrace_scope 1 */
        prctl(PR_SET_PTRACER, (unsigned long)getppid(), 0, 0, 0);
#ifdef VEIL_TRITON_PRELOAD
        /* A sanitizer build of the backend: its runtimes first; Triton's own
         * leaks at exit are not ours to report. */
        setenv("LD_PRELOAD", VEIL_TRITON_PRELOAD, 1);
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
#endif
        execl(env->server, env->server, a_repo, a_be, a_http, a_grpc, a_met,
              "--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1",
              "--exit-timeout-secs=10", (char *)NULL);
        _exit(127);
    }
    out->pid = pid;
    veil_remote_options ro;
    veil_remote_options_default(&ro);
    ro.retries = 0;
    ro.connect_timeout_s = 2;
    ro.timeout_s = 5;
    ro.triton_model = model;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (!veil_triton_server_alive(out)) {
            char tail[1024];
            log_tail(log_path, tail, sizeof tail);
            return veil_error(VEIL_ERR_IO, "tritonserver exited while starting (%s): %s", log_path,
                              tail);
        }
        size_t ms = 0;
        if (veil_remote_check_model(NULL, out->url, &ro, &ms) == VEIL_OK) return VEIL_OK;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > timeout_s) {
            char tail[1024];
            log_tail(log_path, tail, sizeof tail);
            dump_stuck(out, log_path);
            veil_triton_server_stop(out);
            return veil_error(VEIL_ERR_IO, "tritonserver: model %s not ready after %d s (%s): %s",
                              model, timeout_s, log_path, tail);
        }
        struct timespec d = {0, 250000000L};
        nanosleep(&d, NULL);
    }
}

void veil_triton_server_stop(veil_triton_server *s) {
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        struct timespec d = {0, 100000000L};
        nanosleep(&d, NULL);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}
