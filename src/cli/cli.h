/*
 * cli.h - the mailprobe command: shared pieces of its sub-commands.
 */
#ifndef MP_CLI_H
#define MP_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "doctor/doctor.h"
#include "sched/engine.h"

/* Exit codes (documented in the README). */
enum {
    EXIT_ALL_DELIVERABLE = 0,
    EXIT_UNDELIVERABLE = 1, /* at least one address is undeliverable */
    EXIT_USAGE = 2,         /* bad command line or configuration */
    EXIT_UNKNOWN = 3,       /* at least one unknown, none undeliverable */
    EXIT_RISKY = 4,         /* at least one risky, none undeliverable or unknown */
    EXIT_RUNTIME = 5        /* mailprobe itself failed (resolver, memory, I/O) */
};

/** Print "mailprobe: <message>" to stderr and return EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** After the last result: QUIT the engine's idle SMTP sessions and run the loop until
 *  they are closed (at most 5 s more), so that servers see a polite end. */
void cli_finish_sessions(struct event_base *base, engine_t *engine);

int cli_check(int argc, char **argv);
int cli_explain(int argc, char **argv);
int cli_bulk(int argc, char **argv);
int cli_jobs(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_worker(int argc, char **argv);
int cli_learn(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_doctor(int argc, char **argv);

struct cli_cfg;
/** The quick doctor checks (1, 2, 4, 5) for bulk, serve and check at start: adopt the
 *  forward-confirmed PTR as HELO when none was given; bulk and serve: warn on stderr
 *  now when warn is set (else later with cli_doctor_warn); check: only about the HELO. */
void cli_doctor_startup(struct cli_cfg *c, bool warn);

/** Print the start-up report's problems (checks 1, 4, 5) on stderr, one line each. */
void cli_doctor_warn(const struct cli_cfg *c);

/** The JSON form of doctor reports (malloc'd text, NULL when out of memory). */
char *cli_doctor_json(const doc_report_t *reps, size_t n);

#endif
