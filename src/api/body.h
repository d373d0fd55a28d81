/*
 * body.h - what the HTTP API reads from requests: check parameters (query string or
 * JSON body), job uploads sent as JSON, the token file. Pure functions, no I/O but the
 * FILE the caller hands in, so they are unit-tested and fuzzed on their own
 * (tests/unit/test_api_body.c, tests/fuzz/fuzz_api_body.c).
 *
 * Every function returns 0 on success or -1 with a one-line message in err, which the
 * server sends back in a 400 answer.
 */
#ifndef MP_API_BODY_H
#define MP_API_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define API_EMAIL_MAX 1024u      /* longer than any valid address (RFC 5321: 254) */
#define API_WAIT_MAX_MS 300000u  /* the longest a caller may ask /v1/check to wait */
#define API_URL_MAX 2048u
#define API_COLUMN_MAX 256u
#define API_TOKEN_MIN 16u        /* shorter tokens are refused: they can be guessed */
#define API_TOKEN_MAX 256u

/* A /v1/check request. */
typedef struct {
    char email[API_EMAIL_MAX];
    int64_t wait_ms;     /* "timeout" in seconds (may be fractional); -1 = server default */
    bool transcript;     /* add the SMTP transcript */
    bool fresh;          /* do not answer from the cache */
} api_check_req_t;

/** GET /v1/check?email=...&timeout=S&transcript=1&fresh=1 (query without the '?'). */
int api_check_from_query(const char *query, api_check_req_t *out, char *err, size_t errsize);

/** POST /v1/check {"email": ..., "timeout": S, "transcript": bool, "fresh": bool}. */
int api_check_from_json(const char *body, size_t len, api_check_req_t *out, char *err,
                        size_t errsize);

/* Options of a job (query string of POST /v1/jobs, or the JSON object form). */
typedef struct {
    char column[API_COLUMN_MAX];  /* "" = detect */
    char webhook[API_URL_MAX];    /* "" = none; http:// only */
} api_job_opts_t;

/** Job options from a query string (column=, webhook=). */
int api_job_opts_from_query(const char *query, api_job_opts_t *out, char *err, size_t errsize);

/**
 * A job sent as JSON: an array of addresses and/or objects, or an object
 * {"emails": [...], "column": ..., "webhook": ...}. Writes one NDJSON line per element
 * to out ({"email": "..."} for a string, the object itself otherwise, so its other keys
 * come back in the results), and sets opts fields given in the object form.
 * *rows receives the number of lines written.
 */
int api_job_json_to_ndjson(const char *body, size_t len, FILE *out, api_job_opts_t *opts,
                           size_t *rows, char *err, size_t errsize);

/* GET /v1/jobs/ID/results parameters. */
typedef struct {
    bool ndjson;          /* format=ndjson (default csv) */
    char verdict[16];     /* "" = all rows; else deliverable, undeliverable, risky, unknown */
} api_results_req_t;

/** format=csv|ndjson, verdict=deliverable|undeliverable|risky|unknown. */
int api_results_from_query(const char *query, api_results_req_t *out, char *err,
                           size_t errsize);

/** A webhook URL we can call: http://host[:port]/path. */
int api_webhook_check(const char *url, char *err, size_t errsize);

/* Tokens: one a line; blank lines and '#' comments skipped; no spaces inside. */
typedef struct {
    char **tok;
    size_t n;
} api_tokens_t;

/** Parse a token file's text. */
int api_tokens_parse(const char *text, size_t len, api_tokens_t *out, char *err,
                     size_t errsize);

/** Index of the token equal to given (compared in constant time per token), or -1. */
int api_tokens_find(const api_tokens_t *t, const char *given);

void api_tokens_free(api_tokens_t *t);

/** Make s one line of valid UTF-8 in place: control characters and bytes that are not
 *  well-formed UTF-8 become '?' (messages quoting request bytes go into JSON). */
void api_text_clean(char *s);

#endif
