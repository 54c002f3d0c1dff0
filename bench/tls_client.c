/* The load generator of bench section `tls` (bench/tls.py compiles and runs it): one process
 * opening new connections to 127.0.0.1:PORT for SECONDS, one request each
 * (GET /nginx-health, Connection: close), read to the end. MODE:
 *   plain    no TLS;
 *   full     TLS, a full handshake every time (no session offered);
 *   resumed  TLS, every connection offers the session of the one before (as a browser does;
 *            the first is a full handshake), and counts those the server did not resume;
 *   resumed12  the same with TLS 1.2 at most: a session-ID resumption has no key exchange,
 *            so it costs what the TLS machinery costs without any public-key operation.
 * Prints one JSON line: {"count": N, "failed": N, "not_resumed": N}. C, so that the client's
 * own cost is OpenSSL's and the kernel's, not an interpreter's. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int tcp_connect(int port) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The answer's first 15 bytes (its status line's start) into head, across reads. */
static void keep_head(char *head, size_t *got, const char *buf, int n) {
    size_t take = *got < 15 ? 15 - *got : 0;
    if ((size_t)n < take) take = (size_t)n;
    memcpy(head + *got, buf, take);
    *got += take;
}

/* One connection; 0 when the answer was 200, -1 otherwise. */
static int one(int port, const char *host, SSL_CTX *ctx, SSL_SESSION **session, int *reused) {
    char request[256], buf[4096], head[16] = "";
    size_t got = 0;
    int n, ok = -1, fd = tcp_connect(port);
    SSL *ssl = NULL;
    if (fd < 0) return -1;
    snprintf(request, sizeof request, "GET /nginx-health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
    if (ctx) {
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, host);
        if (session && *session) SSL_set_session(ssl, *session);
        if (SSL_connect(ssl) != 1 || SSL_write(ssl, request, strlen(request)) <= 0) goto out;
        while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
            keep_head(head, &got, buf, n);
        *reused = SSL_session_reused(ssl);
        if (session) {
            SSL_SESSION_free(*session);
            *session = SSL_get1_session(ssl);
        }
    } else {
        if (write(fd, request, strlen(request)) <= 0) goto out;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            keep_head(head, &got, buf, n);
    }
    ok = strncmp(head, "HTTP/1.1 200 OK", 15) == 0 ? 0 : -1;
out:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    close(fd);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s plain|full|resumed|resumed12 PORT HOST SECONDS\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *host = argv[3];
    int port = atoi(argv[2]), reused = 0;
    double end = now() + atof(argv[4]);
    long count = 0, failed = 0, not_resumed = 0;
    SSL_CTX *ctx = NULL;
    SSL_SESSION *session = NULL, **offer = NULL;
    if (strcmp(mode, "plain") != 0) {
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        if (strcmp(mode, "resumed12") == 0) SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
        if (strncmp(mode, "resumed", 7) == 0) {
            offer = &session;
            if (one(port, host, ctx, offer, &reused) != 0) failed++;  /* the first, full handshake */
        }
    }
    while (now() < end) {
        reused = 0;
        if (one(port, host, ctx, offer, &reused) != 0) failed++;
        else if (offer && !reused) not_resumed++;
        count++;
    }
    printf("{\"count\": %ld, \"failed\": %ld, \"not_resumed\": %ld}\n", count, failed, not_resumed);
    return 0;
}
