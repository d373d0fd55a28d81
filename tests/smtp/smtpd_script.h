/*
 * smtpd_script.h - a scripted one-connection SMTP server for tests (curl's test server,
 * OpenSMTPD's smtpscript): it plays a fixed list of steps on 127.0.0.1 (an ephemeral
 * port) in its own thread, so the client under test runs its event loop undisturbed.
 *
 * It records the conversation as "C: line\n" (what the client sent) and "S: line\n"
 * (what the script sent) in the order the bytes went over the socket, so a test asserts
 * the exact commands of the client. It can send a reply byte by byte or trickle it,
 * close, stay silent, and switch to TLS with a throwaway self-signed certificate.
 *
 * Header-only (static functions) so that any test can include it without build changes.
 * Does not: parse or check commands (the test compares the log), serve more than one
 * connection. Owner: the test; smtpd_start() allocates, smtpd_wait() frees the thread
 * and sockets, smtpd_free() the rest.
 */
#ifndef MP_TEST_SMTPD_SCRIPT_H
#define MP_TEST_SMTPD_SCRIPT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

typedef enum {
    SS_END = 0,  /* end of script: read until the client closes, then close */
    SS_SEND,     /* send data */
    SS_SEND_BYTES, /* send data one byte per write (n: ms between bytes, 0 = 1 ms) */
    SS_READ,     /* wait until n more complete lines came from the client */
    SS_CLOSE,    /* close the connection now (script ends) */
    SS_SLEEP,    /* sleep n ms */
    SS_TLS,      /* server side of a TLS handshake; later I/O is over TLS */
    SS_SILENT    /* say nothing; read until the client closes (script ends) */
} ss_op_t;

typedef struct {
    ss_op_t op;
    const char *data;
    int n;
} ss_step_t;

#define SS_SEND_(s) {SS_SEND, (s), 0}
#define SS_BYTES_(s, ms) {SS_SEND_BYTES, (s), (ms)}
#define SS_READ_(k) {SS_READ, NULL, (k)}
#define SS_CLOSE_() {SS_CLOSE, NULL, 0}
#define SS_SLEEP_(ms) {SS_SLEEP, NULL, (ms)}
#define SS_TLS_() {SS_TLS, NULL, 0}
#define SS_SILENT_() {SS_SILENT, NULL, 0}
#define SS_END_() {SS_END, NULL, 0}

#define SMTPD_LOG_MAX 262144

typedef struct {
    int lfd, fd;
    unsigned short port;
    const ss_step_t *steps;
    pthread_t th;
    bool started;
    SSL_CTX *tls_ctx; /* created on demand for SS_TLS */
    SSL *ssl;
    char log[SMTPD_LOG_MAX]; /* conversation, "C: "/"S: " lines */
    size_t loglen;
    char pend[SMTPD_LOG_MAX]; /* client bytes received and not yet consumed by SS_READ */
    size_t pendlen, pendlines;
    size_t partial; /* bytes of pend already logged as part of an incomplete line */
    unsigned recv_chunks_rcpt; /* recv() results that contained "RCPT TO" */
    unsigned recv_chunks;      /* recv() results: the client's writes, when it waits
                                  for a reply after each */
    bool saw_eof;
    char err[128];
} smtpd_t;

static void smtpd_log_add(smtpd_t *d, const char *pfx, const char *p, size_t n)
{
    /* split into lines; each logged line is pfx + text without CR LF + "\n" */
    size_t b = 0;
    while (b < n) {
        const char *lf = memchr(p + b, '\n', n - b);
        size_t e = lf ? (size_t)(lf - p) : n;
        size_t c = e;
        if (c > b && p[c - 1] == '\r')
            c--;
        if (d->loglen + 4 + (c - b) + 2 < sizeof d->log) {
            memcpy(d->log + d->loglen, pfx, 3);
            d->loglen += 3;
            memcpy(d->log + d->loglen, p + b, c - b);
            d->loglen += c - b;
            if (!lf) {
                memcpy(d->log + d->loglen, "\\", 1); /* marks a line without LF */
                d->loglen++;
            }
            d->log[d->loglen++] = '\n';
            d->log[d->loglen] = '\0';
        }
        b = e + 1;
    }
}

static EVP_PKEY *smtpd_tls_key;
static X509 *smtpd_tls_cert;

/* A throwaway self-signed certificate (P-256, CN=mx.test), made once per test run. */
static bool smtpd_tls_init(smtpd_t *d)
{
    if (!smtpd_tls_key) {
        smtpd_tls_key = EVP_EC_gen("P-256");
        X509 *x = X509_new();
        if (!smtpd_tls_key || !x)
            return false;
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, smtpd_tls_key);
        X509_NAME *nm = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"mx.test", -1,
                                   -1, 0);
        X509_set_issuer_name(x, nm);
        if (!X509_sign(x, smtpd_tls_key, EVP_sha256())) {
            X509_free(x);
            return false;
        }
        smtpd_tls_cert = x;
    }
    d->tls_ctx = SSL_CTX_new(TLS_server_method());
    if (!d->tls_ctx || SSL_CTX_use_certificate(d->tls_ctx, smtpd_tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey(d->tls_ctx, smtpd_tls_key) != 1)
        return false;
    return true;
}

static void smtpd_tls_global_cleanup(void)
{
    X509_free(smtpd_tls_cert);
    EVP_PKEY_free(smtpd_tls_key);
    smtpd_tls_cert = NULL;
    smtpd_tls_key = NULL;
}

static ssize_t smtpd_io_send(smtpd_t *d, const char *p, size_t n)
{
    if (d->ssl) {
        int r = SSL_write(d->ssl, p, (int)n);
        return r > 0 ? r : -1;
    }
    return send(d->fd, p, n, MSG_NOSIGNAL);
}

static ssize_t smtpd_io_recv(smtpd_t *d, char *p, size_t n)
{
    if (d->ssl) {
        int r = SSL_read(d->ssl, p, (int)n);
        return r > 0 ? r : (SSL_get_error(d->ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
    }
    return recv(d->fd, p, n, 0);
}

/* Receive once (blocking, with the socket's receive timeout); log complete lines. */
static bool smtpd_recv_some(smtpd_t *d)
{
    char buf[8192];
    if (d->pendlen >= sizeof d->pend - 1)
        return false;
    size_t room = sizeof d->pend - 1 - d->pendlen;
    ssize_t r = smtpd_io_recv(d, buf, room < sizeof buf - 1 ? room : sizeof buf - 1);
    if (r <= 0) {
        d->saw_eof = true;
        return false;
    }
    buf[r] = '\0';
    d->recv_chunks++;
    if (strstr(buf, "RCPT TO"))
        d->recv_chunks_rcpt++;
    /* log the lines completed by this chunk */
    size_t old = d->pendlen;
    memcpy(d->pend + d->pendlen, buf, (size_t)r);
    d->pendlen += (size_t)r;
    size_t start = old - d->partial;
    size_t i = old;
    for (; i < d->pendlen; i++) {
        if (d->pend[i] == '\n') {
            smtpd_log_add(d, "C: ", d->pend + start, i + 1 - start);
            d->pendlines++;
            start = i + 1;
        }
    }
    d->partial = d->pendlen - start;
    return true;
}

/* Consume k complete lines from pend. */
static void smtpd_consume_lines(smtpd_t *d, int k)
{
    size_t i = 0;
    for (int done = 0; done < k && i < d->pendlen; i++)
        if (d->pend[i] == '\n')
            done++;
    memmove(d->pend, d->pend + i, d->pendlen - i);
    d->pendlen -= i;
    d->pendlines -= (size_t)k;
}

static void smtpd_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *smtpd_thread(void *arg)
{
    smtpd_t *d = arg;
    struct pollfd pfd = {.fd = d->lfd, .events = POLLIN};
    if (poll(&pfd, 1, 5000) != 1) {
        snprintf(d->err, sizeof d->err, "no connection");
        return NULL;
    }
    d->fd = accept(d->lfd, NULL, NULL);
    if (d->fd < 0) {
        snprintf(d->err, sizeof d->err, "accept: %s", strerror(errno));
        return NULL;
    }
    struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
    setsockopt(d->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    for (const ss_step_t *st = d->steps;; st++) {
        switch (st->op) {
        case SS_SEND:
            smtpd_log_add(d, "S: ", st->data, strlen(st->data));
            if (smtpd_io_send(d, st->data, strlen(st->data)) < 0)
                goto out;
            break;
        case SS_SEND_BYTES:
            smtpd_log_add(d, "S: ", st->data, strlen(st->data));
            for (size_t i = 0; st->data[i]; i++) {
                if (smtpd_io_send(d, st->data + i, 1) < 0)
                    goto out;
                smtpd_sleep_ms(st->n ? st->n : 1);
            }
            break;
        case SS_READ:
            while (d->pendlines < (size_t)st->n)
                if (!smtpd_recv_some(d)) {
                    snprintf(d->err, sizeof d->err, "client sent %zu of %d lines",
                             d->pendlines, st->n);
                    goto out;
                }
            smtpd_consume_lines(d, st->n);
            break;
        case SS_SLEEP:
            smtpd_sleep_ms(st->n);
            break;
        case SS_TLS:
            if (!smtpd_tls_init(d) || !(d->ssl = SSL_new(d->tls_ctx)) ||
                SSL_set_fd(d->ssl, d->fd) != 1 || SSL_accept(d->ssl) != 1) {
                snprintf(d->err, sizeof d->err, "TLS accept failed");
                goto out;
            }
            break;
        case SS_CLOSE:
            goto out;
        case SS_SILENT:
        case SS_END:
            while (smtpd_recv_some(d))
                ;
            goto out;
        }
    }
out:
    if (d->ssl) {
        SSL_shutdown(d->ssl);
        SSL_free(d->ssl);
        d->ssl = NULL;
    }
    close(d->fd);
    d->fd = -1;
    return NULL;
}

/* Listen on 127.0.0.1:0 and run the script in a thread. NULL on failure. */
static smtpd_t *smtpd_start(const ss_step_t *steps)
{
    smtpd_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->fd = -1;
    d->steps = steps;
    d->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    if (d->lfd < 0 || bind(d->lfd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        listen(d->lfd, 1) != 0 || getsockname(d->lfd, (struct sockaddr *)&sin, &sl) != 0) {
        if (d->lfd >= 0)
            close(d->lfd);
        free(d);
        return NULL;
    }
    d->port = ntohs(sin.sin_port);
    if (pthread_create(&d->th, NULL, smtpd_thread, d) != 0) {
        close(d->lfd);
        free(d);
        return NULL;
    }
    d->started = true;
    return d;
}

/* Wait for the script to end. */
static void smtpd_wait(smtpd_t *d)
{
    if (d->started)
        pthread_join(d->th, NULL);
    d->started = false;
    if (d->lfd >= 0)
        close(d->lfd);
    d->lfd = -1;
}

static void smtpd_free(smtpd_t *d)
{
    if (!d)
        return;
    smtpd_wait(d);
    SSL_CTX_free(d->tls_ctx);
    free(d);
}

/* A port on 127.0.0.1 where nothing listens (bound, then closed). 0 on failure. */
static unsigned short smtpd_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    unsigned short port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
        port = ntohs(sin.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

#endif
