/* server_common.h — what the veil-server tests share: a raw HTTP/1.1 client
 * on loopback (for requests libcurl would not send, and for timing), and
 * starting the veil-server binary as a child process. */
#ifndef VEIL_TESTS_SERVER_COMMON_H
#define VEIL_TESTS_SERVER_COMMON_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a raw HTTP/1.1 client, for requests libcurl would not send ---------------- */

typedef struct http_res {
    int status;
    char *raw; /* the whole answer, NUL-terminated */
    const char *body;
    size_t body_len;
} http_res;

static inline void http_res_free(http_res *r) {
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* A loopback connection to port (receive timeout 60 s), -1 with errno set. */
static inline int conn_open(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* Reads one answer from fd: up to the end of its Content-Length body, or
 * to EOF. 0 when an HTTP status line came. */
static inline int read_response(int fd, http_res *r) {
    memset(r, 0, sizeof *r);
    size_t cap = 65536, n = 0, want = (size_t)-1;
    char *buf = malloc(cap);
    while (n < want) {
        if (n + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t got = recv(fd, buf + n, cap - n - 1, 0);
        if (got <= 0) break;
        n += (size_t)got;
        buf[n] = 0;
        char *hend = strstr(buf, "\r\n\r\n");
        const char *cl = hend ? strstr(buf, "Content-Length: ") : NULL;
        if (cl && cl < hend) want = (size_t)(hend + 4 - buf) + strtoull(cl + 16, NULL, 10);
    }
    buf[n] = 0;
    r->raw = buf;
    if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) return -1;
    char *b = strstr(buf, "\r\n\r\n");
    r->body = b ? b + 4 : buf + n;
    r->body_len = (size_t)(buf + n - r->body);
    return 0;
}

/* Sends method path with headers (each ending in \r\n) and body; when
 * send_body is 0, announces content_length but sends no body; content_length
 * (size_t)-1 with send_body: chunked transfer encoding (no length up front). */
static inline int http_raw_port(uint16_t port, const char *method, const char *path,
                                const char *headers, const uint8_t *body, size_t len, int send_body,
                                size_t content_length, http_res *r) {
    memset(r, 0, sizeof *r);
    int fd = conn_open(port);
    if (fd < 0) return -1;
    char head[2048];
    const int chunked = content_length == (size_t)-1;
    char cl[64];
    snprintf(cl, sizeof cl, chunked ? "Transfer-Encoding: chunked" : "Content-Length: %zu",
             send_body ? len : content_length);
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s\r\n\r\n",
                      method, path, headers ? headers : "", cl);
    send(fd, head, (size_t)hn, MSG_NOSIGNAL);
    for (size_t off = 0; chunked && off < len;) { /* 64 KiB chunks, no length announced */
        size_t n = len - off < 65536 ? len - off : 65536;
        char ch[32];
        int cn = snprintf(ch, sizeof ch, "%zx\r\n", n);
        if (send(fd, ch, (size_t)cn, MSG_NOSIGNAL) <= 0 ||
            send(fd, body + off, n, MSG_NOSIGNAL) <= 0 || send(fd, "\r\n", 2, MSG_NOSIGNAL) <= 0)
            break;
        off += n;
        if (off == len) send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL);
    }
    for (size_t off = 0; send_body && !chunked && off < len;) {
        ssize_t w = send(fd, body + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) break; /* the server may answer and close early (413) */
        off += (size_t)w;
    }
    int rc = read_response(fd, r);
    close(fd);
    return rc;
}

static inline int has_code(const http_res *r, const char *code) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"error\":\"%s\"", code);
    return r->body && strstr(r->body, pat) != NULL;
}

/* build/tests/test_* -> build/host/veil-server; 0 when it is there. */
static inline int server_binary(char *out, size_t cap) {
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return -1;
    *slash = 0;
    snprintf(out, cap, "%s/../host/veil-server", self);
    return access(out, X_OK);
}

/* Starts bin (veil-server) with args (NULL-terminated, after argv[0]),
 * which must listen on 127.0.0.1 (port 0: any); returns its pid, the port it
 * announced on stderr, and the read end of its stderr in *errfd. */
static inline pid_t spawn_server(const char *bin, const char *const *args, uint16_t *port,
                                 int *errfd) {
    int p[2];
    *port = 0;
    *errfd = -1;
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        const char *argv[64] = {"veil-server"};
        for (int i = 0; args[i] && i < 62; i++)
            argv[i + 1] = args[i];
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    *errfd = p[0];
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) { /* until "(port N)" */
        ssize_t got = read(p[0], buf + n, sizeof buf - 1 - n);
        if (got <= 0) break;
        n += (size_t)got;
        buf[n] = 0;
        const char *q = strstr(buf, "(port ");
        unsigned v;
        if (q && strchr(q, ')') && sscanf(q, "(port %u)", &v) == 1) {
            *port = (uint16_t)v;
            break;
        }
    }
    if (!*port) fprintf(stderr, "veil-server did not start: %s\n", buf);
    return pid;
}

/* waitpid with a deadline in seconds; -1 when still running. */
static inline int wait_exit(pid_t pid, int seconds, int *status) {
    for (int i = 0; i < seconds * 100; i++) {
        if (waitpid(pid, status, WNOHANG) == pid) return 0;
        usleep(10000);
    }
    return -1;
}

#endif
