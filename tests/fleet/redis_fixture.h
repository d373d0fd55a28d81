/*
 * redis_fixture.h - a real redis-server for the unit tests that need one (test_fleet.c,
 * test_sched_lease.c): started on 127.0.0.1 on a free port, in a temporary directory,
 * without persistence, and killed by pid. Debian's redis-server missing: the test fails.
 * Header-only, for one test file each: setup()/teardown() are the cmocka group fixtures;
 * `url` names the server and `base` is the test's event loop.
 */
#ifndef MP_TEST_REDIS_FIXTURE_H
#define MP_TEST_REDIS_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "fleet/fleet.h"

#define REDIS_BIN "/usr/bin/redis-server"

static pid_t redis_pid = -1;
static unsigned redis_port;
static char redis_dir[64];
static char url[64];
static struct event_base *base;

static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof in;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof in), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
    close(fd);
    return ntohs(in.sin_port);
}

static void redis_start(void)
{
    char port[16], log[128];
    snprintf(port, sizeof port, "%u", redis_port);
    snprintf(log, sizeof log, "%s/redis.log", redis_dir);
    if (access(REDIS_BIN, X_OK) != 0)
        fail_msg("%s is missing: install Debian's redis-server (scripts/deps test)", REDIS_BIN);
    redis_pid = fork();
    assert_true(redis_pid >= 0);
    if (redis_pid == 0) {
        execl(REDIS_BIN, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", redis_dir, "--logfile", log, "--daemonize", "no",
              (char *)NULL);
        _exit(127);
    }
    char err[256];
    for (int i = 0; i < 100; i++) { /* up to 10 s */
        fleet_t *f = fleet_open(base, url, 500, err, sizeof err);
        if (f) {
            fleet_free(f);
            return;
        }
        usleep(100000);
    }
    fail_msg("redis-server did not start: %s", err);
}

static void redis_kill(int sig)
{
    if (redis_pid > 0) {
        kill(redis_pid, sig);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
    }
}

static int setup(void **state)
{
    (void)state;
    base = event_base_new();
    snprintf(redis_dir, sizeof redis_dir, "/tmp/mp-test-fleet-XXXXXX");
    if (!base || !mkdtemp(redis_dir))
        return -1;
    redis_port = free_port();
    snprintf(url, sizeof url, "redis://127.0.0.1:%u", redis_port);
    redis_start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redis_kill(SIGTERM);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", redis_dir);
    if (system(cmd) != 0)
        return -1;
    event_base_free(base);
    return 0;
}

#endif
