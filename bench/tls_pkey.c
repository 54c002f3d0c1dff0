/* The public-key operations of one TLS 1.3 connection, timed alone (bench section `tls`
 * compiles and runs it): what no TLS software using this OpenSSL on this CPU can avoid.
 *   usage: tls_pkey KEYFILE SECONDS
 * KEYFILE is nginx's ECDSA P-256 key (PEM). Each operation is repeated for SECONDS of this
 * process's CPU time, through the same EVP calls a TLS stack makes:
 *   sign     the server's CertificateVerify: ECDSA P-256 over SHA-256 of a 130-byte message
 *   verify   the client's check of that signature
 *   keygen   one ephemeral X25519 key (each side, every full handshake and every psk_dhe_ke
 *            resumption)
 *   derive   one X25519 shared secret (each side, the same connections)
 * Prints one JSON line with the OpenSSL version and microseconds of CPU per operation. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what) {
    fprintf(stderr, "tls_pkey: %s failed\n", what);
    exit(1);
}

static EVP_PKEY *load_key(const char *path) {
    FILE *f = fopen(path, "r");
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    if (!key) {
        fprintf(stderr, "tls_pkey: %s: not a readable PEM private key\n", path);
        exit(1);
    }
    return key;
}

static EVP_PKEY *x25519_keygen(void) {
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_keygen(ctx, &key) <= 0) fail("X25519 keygen");
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static size_t sign(EVP_PKEY *key, const unsigned char *msg, size_t len, unsigned char *sig, size_t cap) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
        EVP_DigestSign(md, sig, &cap, msg, len) <= 0)
        fail("ECDSA sign");
    EVP_MD_CTX_free(md);
    return cap;
}

static void verify(EVP_PKEY *key, const unsigned char *msg, size_t len, const unsigned char *sig, size_t sig_len) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
        EVP_DigestVerify(md, sig, sig_len, msg, len) != 1)
        fail("ECDSA verify");
    EVP_MD_CTX_free(md);
}

static void derive(EVP_PKEY *own, EVP_PKEY *peer) {
    unsigned char secret[64];
    size_t len = sizeof secret;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(own, NULL);
    if (!ctx || EVP_PKEY_derive_init(ctx) <= 0 || EVP_PKEY_derive_set_peer(ctx, peer) <= 0 ||
        EVP_PKEY_derive(ctx, secret, &len) <= 0)
        fail("X25519 derive");
    EVP_PKEY_CTX_free(ctx);
}

enum op { SIGN, VERIFY, KEYGEN, DERIVE };

/* Microseconds of CPU per operation, repeated for `seconds` of CPU. */
static double time_op(enum op op, double seconds, EVP_PKEY *key, EVP_PKEY *own, EVP_PKEY *peer) {
    unsigned char msg[130] = {0}, sig[128];
    size_t sig_len = sign(key, msg, sizeof msg, sig, sizeof sig);
    long n = 0;
    double start = cpu_now(), elapsed;
    do {
        switch (op) {
        case SIGN: sign(key, msg, sizeof msg, sig, sizeof sig); break;
        case VERIFY: verify(key, msg, sizeof msg, sig, sig_len); break;
        case KEYGEN: EVP_PKEY_free(x25519_keygen()); break;
        case DERIVE: derive(own, peer); break;
        }
        n++;
    } while ((elapsed = cpu_now() - start) < seconds);
    return 1e6 * elapsed / n;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s KEYFILE SECONDS\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[2]);
    EVP_PKEY *key = load_key(argv[1]), *own = x25519_keygen(), *peer = x25519_keygen();
    printf("{\"openssl\": \"%s\", \"ecdsa_p256_sign_us\": %.1f, \"ecdsa_p256_verify_us\": %.1f, "
           "\"x25519_keygen_us\": %.1f, \"x25519_derive_us\": %.1f}\n",
           OpenSSL_version(OPENSSL_VERSION), time_op(SIGN, seconds, key, own, peer),
           time_op(VERIFY, seconds, key, own, peer), time_op(KEYGEN, seconds, key, own, peer),
           time_op(DERIVE, seconds, key, own, peer));
    return 0;
}
