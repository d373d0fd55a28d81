/*
 * main.c - `mailprobe COMMAND ...`: dispatch to the sub-commands.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef MP_VERSION
#define MP_VERSION "dev"
#endif

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("mailprobe: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

void cli_finish_sessions(struct event_base *base, engine_t *engine)
{
    struct timeval grace = {5, 0};
    engine_close_idle(engine);
    if (engine_sessions(engine) == 0)
        return;
    event_base_loopexit(base, &grace);
    while (engine_sessions(engine) > 0) {
        if (event_base_loop(base, EVLOOP_ONCE) != 0)
            break;
        if (event_base_got_exit(base) || event_base_got_break(base))
            break; /* the grace time is over, or a signal */
    }
}

static void usage(FILE *out)
{
    fputs("usage: mailprobe COMMAND [options] ...\n"
          "\n"
          "Tell whether email addresses can receive mail, without sending any.\n"
          "\n"
          "commands:\n"
          "  check [options] ADDRESS... | -   check addresses ('-' reads stdin, one a line)\n"
          "  bulk [options] INPUT [-o OUTPUT] check a CSV or NDJSON list (resumable)\n"
          "  jobs [--store PATH]              list bulk jobs and their progress\n"
          "  serve [--listen ADDR:PORT]       HTTP API and web page (see serve --help)\n"
          "  worker --redis URL               check the lists bulk --redis submits\n"
          "  explain [--stage S] REPLY        show how an SMTP reply is read\n"
          "  config [--json]                  the effective settings and their sources\n"
          "  learn --deny-list FILE PATH...   learn from bounces and CSV exports\n"
          "  doctor [options]                 can this machine verify mail? what to fix\n"
          "  help                             this text; `mailprobe check --help` for options\n"
          "  version                          print the version\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "check") == 0)
        return cli_check(argc - 1, argv + 1);
    if (strcmp(cmd, "bulk") == 0)
        return cli_bulk(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "worker") == 0)
        return cli_worker(argc - 1, argv + 1);
    if (strcmp(cmd, "jobs") == 0)
        return cli_jobs(argc - 1, argv + 1);
    if (strcmp(cmd, "learn") == 0)
        return cli_learn(argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0)
        return cli_config(argc - 1, argv + 1);
    if (strcmp(cmd, "doctor") == 0)
        return cli_doctor(argc - 1, argv + 1);
    if (strcmp(cmd, "explain") == 0)
        return cli_explain(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mailprobe %s\n", MP_VERSION);
        return 0;
    }
    return cli_usage_error("unknown command '%s' (try 'mailprobe help')", cmd);
}
