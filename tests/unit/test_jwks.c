// SPDX-License-Identifier: Apache-2.0
/*
 * JWKS sources against a real HTTPS server on 127.0.0.1: a CA and a server
 * certificate made here with OpenSSL, tests/unit/jwks_https_server.py
 * serving a temporary directory, ES256 keys k1 and k2 published as JWKS
 * documents and tokens signed here. Fetch and verify, rotation by kid
 * through the refresher thread, the periodic refresh, an untrusted
 * server, HTTP errors, the 1 MiB cap, malformed documents (the previous
 * keys are kept), URLs refused, the status, and a slow server that holds
 * up neither verification nor jwks_stop(). Run from the repository root.
 */
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bridle/jwks.h"

#define ISS "https://idp.example"
#define SERVER_SCRIPT "jwks_https_server.py"

static EVP_PKEY *k1, *k2;
static char dir[] = "/tmp/test_jwks_XXXXXX";
static char ca_path[64], other_ca_path[64];
static pid_t server_pid = -1;
static int port;
static char *jwks_k1, *jwks_k2, *tok_k1, *tok_k2;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = ms % 1000 * 1000000 };

	nanosleep(&ts, NULL);
}

static char *b64url(const uint8_t *in, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(len * 4 / 3 + 4), *o = out;
	size_t i;

	assert_non_null(out);
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
			     in[i + 2];

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (len - i == 1) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[(in[i] & 3) << 4];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		*o++ = tab[v >> 10];
		*o++ = tab[(v >> 4) & 63];
		*o++ = tab[(v & 15) << 2];
	}
	*o = 0;
	return out;
}

/* {"keys":[the EC public key @k as a JWK with kid @kid]} */
static char *jwks_of(EVP_PKEY *k, const char *kid)
{
	uint8_t pt[65];
	size_t len = 0;
	char *x, *y, *doc;
	json_t *root;

	assert_int_equal(EVP_PKEY_get_octet_string_param(
				 k, OSSL_PKEY_PARAM_PUB_KEY, pt, 65, &len),
			 1);
	assert_int_equal(len, 65);
	x = b64url(pt + 1, 32);
	y = b64url(pt + 33, 32);
	root = json_pack("{s:[{s:s,s:s,s:s,s:s,s:s,s:s}]}", "keys", "kty", "EC",
			 "crv", "P-256", "kid", kid, "alg", "ES256", "x", x,
			 "y", y);
	doc = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	free(x);
	free(y);
	assert_non_null(doc);
	return doc;
}

/* An ES256 token by @k with kid @kid, valid for ten minutes. */
static char *token(EVP_PKEY *k, const char *kid)
{
	char hdr[64], payload[160], *h, *p, *sig, *tok;
	uint8_t der[128], rs[64];
	const uint8_t *dp = der;
	size_t derlen = sizeof(der);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ECDSA_SIG *es;
	size_t n;

	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
	snprintf(payload, sizeof(payload),
		 "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"aud\":\"bridle\","
		 "\"exp\":%lld}",
		 (long long)time(NULL) + 600);
	h = b64url((const uint8_t *)hdr, strlen(hdr));
	p = b64url((const uint8_t *)payload, strlen(payload));
	n = strlen(h) + strlen(p) + 2;
	tok = malloc(n + 100);
	assert_non_null(tok);
	snprintf(tok, n, "%s.%s", h, p);
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k),
			 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &derlen, (uint8_t *)tok,
					strlen(tok)),
			 1);
	EVP_MD_CTX_free(ctx);
	es = d2i_ECDSA_SIG(NULL, &dp, (long)derlen);
	assert_non_null(es);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32), 32);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32), 32);
	ECDSA_SIG_free(es);
	sig = b64url(rs, 64);
	strcat(tok, ".");
	strcat(tok, sig);
	free(h);
	free(p);
	free(sig);
	return tok;
}

static void add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);

	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for @key: a CA when @issuer is NULL (self-signed), else
 * a server certificate for 127.0.0.1 signed by @issuer. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer,
		       EVP_PKEY *issuer_key)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	add_ext(x, &v3, NID_subject_key_identifier, "hash");
	add_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
	if (!issuer) {
		add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, &v3, NID_basic_constraints, "CA:FALSE");
		add_ext(x, &v3, NID_key_usage, "critical,digitalSignature");
		add_ext(x, &v3, NID_ext_key_usage, "serverAuth");
		add_ext(x, &v3, NID_subject_alt_name, "IP:127.0.0.1");
	}
	assert_true(X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (cert)
		assert_int_equal(PEM_write_X509(f, cert), 1);
	if (key)
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0,
						      NULL, NULL),
				 1);
	assert_int_equal(fclose(f), 0);
}

/* Replace @name in the served directory at once (write, then rename). */
static void serve(const char *name, const char *data, size_t len)
{
	char path[128], tmp[140];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void serve_str(const char *name, const char *data)
{
	serve(name, data, strlen(data));
}

static void copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "r"), *out = fopen(to, "w");
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

static const char *url(const char *path)
{
	static char buf[4][128];
	static int i;
	char *u = buf[i++ % 4];

	snprintf(u, sizeof(buf[0]), "https://127.0.0.1:%d/%s", port, path);
	return u;
}

static struct jwt_expect expect(void)
{
	static const char *const aud[] = { "bridle" };
	struct jwt_expect ex = { .issuer = ISS,
				 .audiences = aud,
				 .naudiences = 1,
				 .skew_s = 30,
				 .now = time(NULL) };
	return ex;
}

/* jwks_verify of @tok against @s: 0 or -1, the reason in @err. */
static int verify(struct jwks_source *s, const char *tok, char *err,
		  size_t errlen)
{
	struct jwt_expect ex = expect();
	struct jwt_claims c;
	int rc = jwks_verify(s, tok, strlen(tok), &ex, &c, err, errlen);

	if (rc == 0) {
		assert_string_equal(c.sub, "alice");
		jwt_claims_release(&c);
	}
	return rc;
}

static void assert_verifies(struct jwks_source *s, const char *tok)
{
	char err[512] = "";

	if (verify(s, tok, err, sizeof(err)))
		fail_msg("verify: %s", err);
}

/* A copy of jwks_status_json's entry for @u, or NULL. */
static json_t *status_of(const char *u)
{
	json_t *all = jwks_status_json(), *e, *found = NULL;
	size_t i;

	assert_true(json_is_array(all));
	json_array_foreach(all, i, e) {
		if (!strcmp(json_string_value(json_object_get(e, "url")), u))
			found = json_deep_copy(e);
	}
	json_decref(all);
	return found;
}

static json_int_t status_int(const char *u, const char *field)
{
	json_t *st = status_of(u);
	json_int_t v;

	assert_non_null(st);
	v = json_integer_value(json_object_get(st, field));
	json_decref(st);
	return v;
}

static void start_server(void)
{
	char cert[64], key[64], script[256], line[32] = "";
	const char *src = __FILE__, *slash = strrchr(src, '/');
	struct pollfd pfd;
	int fds[2];
	ssize_t n;

	snprintf(cert, sizeof(cert), "%s.d/server.pem", dir);
	snprintf(key, sizeof(key), "%s.d/server.key", dir);
	snprintf(script, sizeof(script), "%.*s%s",
		 slash ? (int)(slash - src + 1) : 0, src, SERVER_SCRIPT);
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	server_pid = fork();
	assert_true(server_pid >= 0);
	if (server_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execlp("python3", "python3", script, dir, cert, key,
		       (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	/* The whole line: the pipe closed early would kill the server. */
	pfd = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	for (size_t got = 0; !strchr(line, '\n') && got < sizeof(line) - 1;
	     got += (size_t)n) {
		if (poll(&pfd, 1, 10000) != 1)
			break;
		n = read(fds[0], line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			break;
	}
	close(fds[0]);
	port = atoi(line);
	if (port <= 0)
		fail_msg("%s did not print its port", script);
}

static int setup(void **state)
{
	EVP_PKEY *ca_key, *other_key, *srv_key;
	X509 *ca, *other, *srv;
	char path[64];

	(void)state;
	/* Nothing but 127.0.0.1: no proxy from the environment. */
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	setenv("NO_PROXY", "*", 1);
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s.d", dir);
	if (mkdir(path, 0700))
		return -1;
	k1 = EVP_EC_gen("P-256");
	k2 = EVP_EC_gen("P-256");
	ca_key = EVP_EC_gen("P-256");
	other_key = EVP_EC_gen("P-256");
	srv_key = EVP_EC_gen("P-256");
	if (!k1 || !k2 || !ca_key || !other_key || !srv_key)
		return -1;
	ca = make_cert("bridle test CA", ca_key, NULL, NULL);
	other = make_cert("another CA", other_key, NULL, NULL);
	srv = make_cert("127.0.0.1", srv_key, ca, ca_key);
	snprintf(ca_path, sizeof(ca_path), "%s.d/ca.pem", dir);
	snprintf(other_ca_path, sizeof(other_ca_path), "%s.d/other.pem", dir);
	write_pem(ca_path, ca, NULL);
	write_pem(other_ca_path, other, NULL);
	snprintf(path, sizeof(path), "%s.d/server.pem", dir);
	write_pem(path, srv, NULL);
	snprintf(path, sizeof(path), "%s.d/server.key", dir);
	write_pem(path, NULL, srv_key);
	X509_free(ca);
	X509_free(other);
	X509_free(srv);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(srv_key);
	jwks_k1 = jwks_of(k1, "k1");
	jwks_k2 = jwks_of(k2, "k2");
	tok_k1 = token(k1, "k1");
	tok_k2 = token(k2, "k2");
	start_server();
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	char path[64];

	(void)state;
	jwks_stop();
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
	}
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	snprintf(path, sizeof(path), "%s.d", dir);
	nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	free(jwks_k1);
	free(jwks_k2);
	free(tok_k1);
	free(tok_k2);
	return 0;
}

static void test_url_refused(void **state)
{
	static const struct {
		const char *url, *want;
	} v[] = {
		{ "http://127.0.0.1/jwks.json", "is not https://" },
		{ "HTTP://127.0.0.1/jwks.json", "is not https://" },
		{ "ftp://127.0.0.1/jwks.json", "is not https://" },
		{ "127.0.0.1/jwks.json", "is not https://" },
		{ "https://", "bad JWKS URL" },
		{ "https://127.0.0.1/a b", "a space, a control" },
		{ "https://127.0.0.1:99999/", "bad JWKS URL" },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		err[0] = 0;
		if (jwks_source_get(v[i].url, NULL, 60, err, sizeof(err)))
			fail_msg("\"%s\" accepted", v[i].url);
		if (!strstr(err, v[i].want))
			fail_msg("\"%s\": \"%s\", want \"%s\"", v[i].url, err,
				 v[i].want);
	}
	assert_null(jwks_source_get(url("a.json"), NULL, 0, err, sizeof(err)));
	assert_string_equal(err, "JWKS refresh interval must be >= 1 s");
}

static void test_fetch_and_verify(void **state)
{
	struct jwks_source *s, *again, *other;
	char err[512];
	json_t *st;

	(void)state;
	serve_str("a.json", jwks_k1);
	s = jwks_source_get(url("a.json"), ca_path, 60, err, sizeof(err));
	if (!s)
		fail_msg("get: %s", err);
	/* Shared by URL and CA file. */
	again = jwks_source_get(url("a.json"), ca_path, 60, err, sizeof(err));
	other = jwks_source_get(url("a.json"), NULL, 60, err, sizeof(err));
	assert_ptr_equal(again, s);
	assert_non_null(other);
	assert_ptr_not_equal(other, s);
	jwks_source_put(again);
	jwks_source_put(other);

	assert_int_equal(verify(s, tok_k1, err, sizeof(err)), -1);
	assert_string_equal(err,
			    "the issuer's keys are not loaded yet (fetching)");
	st = status_of(url("a.json"));
	assert_non_null(st);
	assert_int_equal(json_integer_value(json_object_get(st, "keys")), 0);
	assert_true(json_is_null(json_object_get(st, "last_ok_ms")));
	assert_true(json_is_null(json_object_get(st, "last_error")));
	json_decref(st);

	if (jwks_fetch_now(s, err, sizeof(err)))
		fail_msg("fetch: %s", err);
	assert_verifies(s, tok_k1);
	assert_int_equal(verify(s, tok_k2, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown key id \"k2\"");

	st = status_of(url("a.json"));
	assert_int_equal(json_integer_value(json_object_get(st, "keys")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "fetches")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "failures")),
			 0);
	assert_true(json_integer_value(json_object_get(st, "last_ok_ms")) >
		    (json_int_t)(time(NULL) - 60) * 1000);
	assert_true(json_is_null(json_object_get(st, "last_error")));
	json_decref(st);
	jwks_source_put(s);
	assert_null(status_of(url("a.json")));
}

/* Wait up to 5 s for @tok to verify against @s. */
static void wait_verifies(struct jwks_source *s, const char *tok)
{
	int64_t deadline = now_ms() + 5000;
	char err[512] = "";

	while (verify(s, tok, err, sizeof(err))) {
		if (now_ms() > deadline)
			fail_msg("still refused after 5 s: %s", err);
		sleep_ms(20);
	}
}

static void test_rotation(void **state)
{
	struct jwks_source *s;
	char err[512];

	(void)state;
	serve_str("rot.json", jwks_k1);
	s = jwks_source_get(url("rot.json"), ca_path, 3600, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(jwks_start(), 0);
	assert_int_equal(jwks_start(), 0); /* idempotent */
	wait_verifies(s, tok_k1); /* fetched by the thread at start */
	assert_int_equal(status_int(url("rot.json"), "fetches"), 1);

	/* The issuer rotates to k2: the first k2 token is refused and
	 * triggers the refresh that lets the next ones through. */
	serve_str("rot.json", jwks_k2);
	assert_int_equal(verify(s, tok_k2, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown key id \"k2\"");
	wait_verifies(s, tok_k2);
	assert_int_equal(status_int(url("rot.json"), "fetches"), 2);

	/* k1 is gone now; asking again within 10 s fetches nothing. */
	assert_int_equal(verify(s, tok_k1, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown key id \"k1\"");
	sleep_ms(100);
	assert_int_equal(status_int(url("rot.json"), "fetches"), 2);
	jwks_stop();
	jwks_stop(); /* idempotent */
	jwks_source_put(s);
}

/* Registered while the thread runs: fetched at once, then every second. */
static void test_periodic(void **state)
{
	struct jwks_source *s;
	int64_t deadline;
	char err[512];

	(void)state;
	serve_str("per.json", jwks_k1);
	assert_int_equal(jwks_start(), 0);
	s = jwks_source_get(url("per.json"), ca_path, 1, err, sizeof(err));
	assert_non_null(s);
	wait_verifies(s, tok_k1);
	serve_str("per.json", jwks_k2);
	deadline = now_ms() + 5000;
	while (status_int(url("per.json"), "fetches") < 2) {
		if (now_ms() > deadline)
			fail_msg("no periodic refresh after 5 s");
		sleep_ms(20);
	}
	assert_verifies(s, tok_k2);
	jwks_stop();
	jwks_source_put(s);
}

static void test_untrusted(void **state)
{
	char trust[80], err[512];
	struct jwks_source *s, *never;
	json_t *st;

	(void)state;
	serve_str("u.json", jwks_k1);
	snprintf(trust, sizeof(trust), "%s.d/trust.pem", dir);
	copy_file(ca_path, trust);
	s = jwks_source_get(url("u.json"), trust, 60, err, sizeof(err));
	assert_non_null(s);
	if (jwks_fetch_now(s, err, sizeof(err)))
		fail_msg("fetch: %s", err);

	/* The CA file now names a CA that did not sign the server's
	 * certificate: the fetch fails, the keys stay. */
	copy_file(other_ca_path, trust);
	assert_int_equal(jwks_fetch_now(s, err, sizeof(err)), -1);
	if (!strstr(err, "certificate"))
		fail_msg("untrusted server: \"%s\"", err);
	assert_verifies(s, tok_k1);
	st = status_of(url("u.json"));
	assert_int_equal(json_integer_value(json_object_get(st, "keys")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "fetches")), 2);
	assert_int_equal(json_integer_value(json_object_get(st, "failures")),
			 1);
	assert_string_equal(
		json_string_value(json_object_get(st, "last_error")), err);
	assert_true(json_is_integer(json_object_get(st, "last_ok_ms")));
	json_decref(st);

	/* Never trusted: the keys are never loaded, and the reason shows. */
	never = jwks_source_get(url("u.json"), other_ca_path, 60, err,
				sizeof(err));
	assert_non_null(never);
	assert_int_equal(jwks_fetch_now(never, err, sizeof(err)), -1);
	assert_int_equal(verify(never, tok_k1, err, sizeof(err)), -1);
	if (strncmp(err, "the issuer's keys are not loaded yet (", 38) ||
	    !strstr(err, "certificate"))
		fail_msg("never loaded: \"%s\"", err);
	jwks_source_put(never);
	jwks_source_put(s);
}

/* One fetch of @path by a new source: its error, "" when it went well. */
static void fetch_once(const char *path, char *err, size_t errlen)
{
	struct jwks_source *s =
		jwks_source_get(url(path), ca_path, 60, err, errlen);

	assert_non_null(s);
	if (!jwks_fetch_now(s, err, errlen))
		err[0] = 0;
	jwks_source_put(s);
}

static void test_http_errors(void **state)
{
	size_t doc_len = strlen(jwks_k1), big = JWKS_MAX_BODY;
	char *body = malloc(big + 1), err[512], want[256];

	(void)state;
	assert_non_null(body);
	fetch_once("missing.json", err, sizeof(err));
	snprintf(want, sizeof(want), "%s: HTTP status 404 (want 200)",
		 url("missing.json"));
	assert_string_equal(err, want);

	/* Exactly 1 MiB (the document after spaces) is fine, one byte more
	 * is not: with a Content-Length and without one. */
	memset(body, ' ', big + 1);
	memcpy(body + big - doc_len, jwks_k1, doc_len);
	serve("max.json", body, big);
	fetch_once("max.json", err, sizeof(err));
	assert_string_equal(err, "");
	fetch_once("stream/max.json", err, sizeof(err));
	assert_string_equal(err, "");
	memcpy(body + big + 1 - doc_len, jwks_k1, doc_len);
	serve("big.json", body, big + 1);
	free(body);
	fetch_once("big.json", err, sizeof(err));
	snprintf(want, sizeof(want),
		 "%s: the JWKS document is larger than 1 MiB", url("big.json"));
	assert_string_equal(err, want);
	fetch_once("stream/big.json", err, sizeof(err));
	snprintf(want, sizeof(want),
		 "%s: the JWKS document is larger than 1 MiB",
		 url("stream/big.json"));
	assert_string_equal(err, want);
}

static void test_malformed_keeps_keys(void **state)
{
	struct jwks_source *s;
	char err[512], want[256];
	json_t *st;

	(void)state;
	serve_str("m.json", jwks_k1);
	s = jwks_source_get(url("m.json"), ca_path, 60, err, sizeof(err));
	assert_non_null(s);
	if (jwks_fetch_now(s, err, sizeof(err)))
		fail_msg("fetch: %s", err);

	serve_str("m.json", "{\"keys\": 5}");
	assert_int_equal(jwks_fetch_now(s, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: JWKS: no \"keys\" array",
		 url("m.json"));
	assert_string_equal(err, want);
	assert_verifies(s, tok_k1);

	serve_str("m.json", "{\"keys\": [\xff");
	assert_int_equal(jwks_fetch_now(s, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: JWKS: line 1: ", url("m.json"));
	if (strncmp(err, want, strlen(want)))
		fail_msg("not JSON: \"%s\"", err);
	assert_verifies(s, tok_k1);

	st = status_of(url("m.json"));
	assert_int_equal(json_integer_value(json_object_get(st, "keys")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "fetches")), 3);
	assert_int_equal(json_integer_value(json_object_get(st, "failures")),
			 2);
	assert_string_equal(
		json_string_value(json_object_get(st, "last_error")), err);
	json_decref(st);

	/* A good document again clears the error. */
	serve_str("m.json", jwks_k2);
	if (jwks_fetch_now(s, err, sizeof(err)))
		fail_msg("fetch: %s", err);
	assert_verifies(s, tok_k2);
	st = status_of(url("m.json"));
	assert_true(json_is_null(json_object_get(st, "last_error")));
	json_decref(st);
	jwks_source_put(s);
}

/* While the thread waits on a slow server, verification, the status and
 * other fetches go on; jwks_stop() interrupts the slow fetch. */
static void test_slow_server(void **state)
{
	struct jwks_source *fast, *slow;
	char err[512];
	int64_t t;
	json_t *st;

	(void)state;
	serve_str("f.json", jwks_k1);
	fast = jwks_source_get(url("f.json"), ca_path, 60, err, sizeof(err));
	assert_non_null(fast);
	if (jwks_fetch_now(fast, err, sizeof(err)))
		fail_msg("fetch: %s", err);
	assert_int_equal(jwks_start(), 0);
	/* The thread refetches f.json at start; wait for it, so that the
	 * slow source is what it is busy with next. */
	t = now_ms() + 5000;
	while (status_int(url("f.json"), "fetches") < 2 && now_ms() < t)
		sleep_ms(10);
	slow = jwks_source_get(url("slow/f.json"), ca_path, 60, err,
			       sizeof(err));
	assert_non_null(slow);
	sleep_ms(300);

	t = now_ms();
	assert_verifies(fast, tok_k1);
	json_decref(jwks_status_json());
	if (jwks_fetch_now(fast, err, sizeof(err)))
		fail_msg("fetch: %s", err);
	t = now_ms() - t;
	if (t > 1000)
		fail_msg("held up %lld ms by a slow server", (long long)t);

	t = now_ms();
	jwks_stop();
	t = now_ms() - t;
	if (t > 2000)
		fail_msg("jwks_stop took %lld ms", (long long)t);
	st = status_of(url("slow/f.json"));
	assert_int_equal(json_integer_value(json_object_get(st, "failures")),
			 1);
	if (!strstr(json_string_value(json_object_get(st, "last_error")),
		    "interrupted"))
		fail_msg("slow: \"%s\"",
			 json_string_value(json_object_get(st, "last_error")));
	json_decref(st);
	jwks_source_put(slow);
	jwks_source_put(fast);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_refused),
		cmocka_unit_test(test_fetch_and_verify),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_periodic),
		cmocka_unit_test(test_untrusted),
		cmocka_unit_test(test_http_errors),
		cmocka_unit_test(test_malformed_keeps_keys),
		cmocka_unit_test(test_slow_server),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
