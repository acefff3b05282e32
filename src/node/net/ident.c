/* The node's Ed25519 networking key (net_int.h), on OpenSSL 3: kept as a
 * PKCS#8 PEM file readable by the node's user only. */
#include "net_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct hcnn_ident {
    EVP_PKEY *key;
    uint8_t pub[HCNN_PUBKEY];
};

static hcnn_ident *wrap(EVP_PKEY *k, char *err, size_t errlen)
{
    hcnn_ident *id = calloc(1, sizeof *id);
    size_t n = HCNN_PUBKEY;
    if (id == NULL || EVP_PKEY_get_raw_public_key(k, id->pub, &n) != 1 ||
        n != HCNN_PUBKEY) {
        snprintf(err, errlen, "the networking key is not an Ed25519 key");
        free(id);
        EVP_PKEY_free(k);
        return NULL;
    }
    id->key = k;
    return id;
}

hcnn_ident *hcnn_ident_load(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
        return NULL;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/networking_key.pem", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
            EVP_PKEY_free(k);
            snprintf(err, errlen, "%s is not an Ed25519 private key in PEM",
                     path);
            return NULL;
        }
        return wrap(k, err, errlen);
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (k == NULL) {
        snprintf(err, errlen, "cannot make an Ed25519 key (OpenSSL)");
        return NULL;
    }
    /* written beside, then renamed: never half a key under the name */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (f)
        ok = (fflush(f) == 0 && fsync(fileno(f)) == 0) && ok;
    if (f)
        fclose(f);
    else if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        EVP_PKEY_free(k);
        return NULL;
    }
    return wrap(k, err, errlen);
}

void hcnn_ident_free(hcnn_ident *id)
{
    if (id == NULL)
        return;
    EVP_PKEY_free(id->key);
    free(id);
}

const uint8_t *hcnn_ident_pub(const hcnn_ident *id)
{
    return id->pub;
}

void hcnn_ident_pub_hex(const hcnn_ident *id, char out[2 * HCNN_PUBKEY + 1])
{
    for (int i = 0; i < HCNN_PUBKEY; i++)
        snprintf(out + 2 * i, 3, "%02x", id->pub[i]);
}

bool hcnn_ident_sign(const hcnn_ident *id, const uint8_t *msg, size_t len,
                     uint8_t sig[HCNN_SIG])
{
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    size_t n = HCNN_SIG;
    bool ok = x && EVP_DigestSignInit(x, NULL, NULL, NULL, id->key) == 1 &&
              EVP_DigestSign(x, sig, &n, msg, len) == 1 && n == HCNN_SIG;
    EVP_MD_CTX_free(x);
    return ok;
}

bool hcnn_ed25519_verify(const uint8_t pub[HCNN_PUBKEY], const uint8_t *msg,
                         size_t len, const uint8_t *sig, size_t sig_len)
{
    if (sig_len != HCNN_SIG)
        return false;
    EVP_PKEY *k =
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, HCNN_PUBKEY);
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    bool ok = k && x &&
              EVP_DigestVerifyInit(x, NULL, NULL, NULL, k) == 1 &&
              EVP_DigestVerify(x, sig, sig_len, msg, len) == 1;
    EVP_MD_CTX_free(x);
    EVP_PKEY_free(k);
    return ok;
}
