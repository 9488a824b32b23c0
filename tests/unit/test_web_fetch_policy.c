/*
 * test_web_fetch_policy.c - the address policy of jarvis.web.fetch
 * (plugins/core/web_fetch_policy.c) as pure functions: every spelling of a
 * host that reaches an internal address, every default-denied range and
 * its IPv4-mapped, -compatible, NAT64 and 6to4 forms, public addresses,
 * the re-allowed ranges and ports lists and their errors. Nothing here
 * resolves a name or opens a socket: the addresses are only classified.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../../plugins/core/web_fetch_policy.h"
#include "testutil.h"

/* The default verdict on a host spelling: 1 denied, 0 allowed, -1 a name. */
static int host_denied(const char *host)
{
    unsigned char a[16];

    if (wf_addr_parse_host(host, a) != 0)
        return -1;
    return wf_addr_denied(a) != NULL;
}

#define ASSERT_HOST(host, want)                                                                    \
    do {                                                                                           \
        int got_ = host_denied(host);                                                              \
        if (got_ != (want))                                                                        \
            fprintf(stderr, "\n  %s: got %d want %d\n", host, got_, want);                         \
        CU_ASSERT_EQUAL(got_, want);                                                               \
    } while (0)

static void test_loopback_spellings(void)
{
    static const char *const denied[] = {
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "017700000001",
        "0x7f.1",
        "127.0.1",
        "0177.0.0.1",
        "0.0.0.0",
        "0",
        "::1",
        "::ffff:127.0.0.1",
        "::127.0.0.1",
        "::ffff:7f00:1",
        "0:0:0:0:0:0:0:1",
        "::",
        "::ffff:0.0.0.0",
        "::1%lo",
        "127.255.255.254",
        "0X7F000001",
    };
    size_t i;

    for (i = 0; i < sizeof denied / sizeof denied[0]; i++)
        ASSERT_HOST(denied[i], 1);
    /* names are judged at connect time, by their resolved addresses */
    ASSERT_HOST("localhost", -1);
    ASSERT_HOST("example.com", -1);
    ASSERT_HOST("127.0.0.1.nip.io", -1);
    ASSERT_HOST("", -1);
    ASSERT_HOST("1.2.3.4.5", -1);
    ASSERT_HOST("256.0.0.1", -1);
}

static void test_denied_ranges(void)
{
    static const char *const denied[] = {
        /* IPv4 */
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "100.64.0.1",
        "100.127.255.255",
        "169.254.169.254",
        "169.254.0.1",
        "192.0.0.8",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "198.18.0.1",
        "198.19.255.255",
        "192.88.99.1",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        /* IPv6 */
        "fe80::1",
        "febf::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "ff05::2",
        "2001:db8::1",
        "2001::1",
        "64:ff9b:1::1",
        "100::1",
        "4000::1",
        "::2:1",
        /* embedded IPv4 of denied ranges */
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:192.168.0.1",
        "::10.0.0.1",
        "::169.254.169.254",
        "64:ff9b::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
        "2002:c0a8:0101::",
        "::ffff:0:127.0.0.1",
        "::ffff:255.255.255.255",
    };
    size_t i;

    for (i = 0; i < sizeof denied / sizeof denied[0]; i++)
        ASSERT_HOST(denied[i], 1);
}

static void test_public_allowed(void)
{
    static const char *const allowed[] = {
        "8.8.8.8",         "1.1.1.1",        "93.184.216.34",    "172.15.255.255",
        "172.32.0.1",      "100.63.255.255", "100.128.0.1",      "169.253.1.1",
        "192.167.1.1",     "198.17.0.1",     "198.20.0.1",       "223.255.255.255",
        "11.0.0.1",        "0x08080808",     "134744072",        "2606:4700::1111",
        "2001:4860::8888", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:0808:0808::1",
        "2a00:1450::1",    "::8.8.8.8",
    };
    size_t i;

    for (i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        ASSERT_HOST(allowed[i], 0);
}

static void test_range_names(void)
{
    unsigned char a[16];

    CU_ASSERT_EQUAL_FATAL(wf_addr_parse_host("169.254.169.254", a), 0);
    CU_ASSERT_STRING_EQUAL(wf_addr_denied(a), "link-local (169.254.0.0/16)");
    CU_ASSERT_EQUAL_FATAL(wf_addr_parse_host("::ffff:127.0.0.1", a), 0);
    CU_ASSERT_STRING_EQUAL(wf_addr_denied(a), "loopback (127.0.0.0/8)");
    CU_ASSERT_EQUAL_FATAL(wf_addr_parse_host("::1", a), 0);
    CU_ASSERT_STRING_EQUAL(wf_addr_denied(a), "loopback (::1/128)");
    CU_ASSERT_EQUAL_FATAL(wf_addr_parse_host("fe80::1%eth0", a), 0);
    CU_ASSERT_STRING_EQUAL(wf_addr_denied(a), "link-local (fe80::/10)");
}

static void test_sockaddr(void)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(8080)};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    struct sockaddr un = {.sa_family = AF_UNIX};
    unsigned char a[16];
    int port = 0;

    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    CU_ASSERT_EQUAL(wf_addr_from_sockaddr((struct sockaddr *)&in, a, &port), 0);
    CU_ASSERT_EQUAL(port, 8080);
    CU_ASSERT_STRING_EQUAL(wf_addr_denied(a), "loopback (127.0.0.0/8)");
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr);
    CU_ASSERT_EQUAL(wf_addr_from_sockaddr((struct sockaddr *)&in6, a, &port), 0);
    CU_ASSERT_EQUAL(port, 443);
    CU_ASSERT_STRING_EQUAL(wf_addr_denied(a), "private (10.0.0.0/8)");
    inet_pton(AF_INET6, "2606:4700::1111", &in6.sin6_addr);
    CU_ASSERT_EQUAL(wf_addr_from_sockaddr((struct sockaddr *)&in6, a, &port), 0);
    CU_ASSERT_PTR_NULL(wf_addr_denied(a));
    CU_ASSERT_EQUAL(wf_addr_from_sockaddr(&un, a, &port), -1);
}

/* wf_policy_check of host:port under the lists cidrs and ports. */
static int allowed(const char *cidrs, const char *ports, const char *host, int port)
{
    struct wf_policy p;
    unsigned char a[16];
    char err[128], why[WF_POLICY_WHY_LEN];

    CU_ASSERT_EQUAL_FATAL(wf_policy_parse(&p, cidrs, ports, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(wf_addr_parse_host(host, a), 0);
    return wf_policy_check(&p, a, port, why, sizeof why) == 0;
}

static void test_policy_lists(void)
{
    /* the defaults: public on 80 and 443 only; internal never */
    CU_ASSERT_TRUE(allowed(NULL, NULL, "8.8.8.8", 80));
    CU_ASSERT_TRUE(allowed(NULL, NULL, "8.8.8.8", 443));
    CU_ASSERT_FALSE(allowed(NULL, NULL, "8.8.8.8", 22));
    CU_ASSERT_FALSE(allowed(NULL, NULL, "8.8.8.8", 8080));
    CU_ASSERT_FALSE(allowed(NULL, NULL, "127.0.0.1", 80));
    CU_ASSERT_FALSE(allowed("", " , ", "10.0.0.1", 443));

    /* a range without a port: the ports list */
    CU_ASSERT_TRUE(allowed("127.0.0.0/8", NULL, "127.0.0.1", 80));
    CU_ASSERT_TRUE(allowed("127.0.0.0/8", NULL, "::ffff:127.9.9.9", 443));
    CU_ASSERT_FALSE(allowed("127.0.0.0/8", NULL, "127.0.0.1", 8080));
    CU_ASSERT_FALSE(allowed("127.0.0.0/8", NULL, "::1", 80));
    CU_ASSERT_TRUE(allowed("127.0.0.0/8", "8080", "127.0.0.1", 8080));
    /* with a port: that one; with "*": every one */
    CU_ASSERT_TRUE(allowed("127.0.0.1/32:8080", NULL, "127.0.0.1", 8080));
    CU_ASSERT_FALSE(allowed("127.0.0.1/32:8080", NULL, "127.0.0.1", 80));
    CU_ASSERT_FALSE(allowed("127.0.0.1/32:8080", NULL, "127.0.0.2", 8080));
    CU_ASSERT_TRUE(allowed("127.0.0.1:8080", NULL, "127.0.0.1", 8080));
    CU_ASSERT_TRUE(allowed("127.0.0.1/32:*", NULL, "127.0.0.1", 1));
    CU_ASSERT_TRUE(allowed(" 10.0.0.0/8 , ::1/128:9000 ", NULL, "::1", 9000));
    CU_ASSERT_FALSE(allowed("::1/128:9000", NULL, "::1", 9001));
    CU_ASSERT_TRUE(allowed("::1", "*", "::1", 9001));
    CU_ASSERT_TRUE(allowed("fd00::/8:*", NULL, "fd12::1", 5));
    CU_ASSERT_TRUE(allowed("169.254.169.0/24:80", NULL, "169.254.169.254", 80));
    /* an IPv4 range covers the mapped spelling only, not 6to4 or NAT64 */
    CU_ASSERT_FALSE(allowed("127.0.0.0/8:*", NULL, "2002:7f00:1::", 80));
    CU_ASSERT_FALSE(allowed("127.0.0.0/8:*", NULL, "64:ff9b::127.0.0.1", 80));
    /* a range only adds: public ports still come from the ports list */
    CU_ASSERT_TRUE(allowed("8.8.8.0/24:53", NULL, "8.8.8.8", 443));
    CU_ASSERT_TRUE(allowed("8.8.8.0/24:53", NULL, "8.8.8.8", 53));
    CU_ASSERT_FALSE(allowed(NULL, "8443", "8.8.8.8", 443));
    CU_ASSERT_TRUE(allowed(NULL, "8443, 443", "8.8.8.8", 443));
    CU_ASSERT_TRUE(allowed("0.0.0.0/0:*", NULL, "10.1.1.1", 1234));
}

static void test_policy_errors(void)
{
    static const char *const bad_cidrs[] = {
        "127.0.0.1/33",       "::1/129",     "127.1/8",    "localhost",      "127.0.0.1/32:0",
        "127.0.0.1/32:65536", "127.0.0.1/x", "127.0.0.1/", "10.0.0.0/8:80x", "1.2.3.4/8:",
        "0x7f000001",
    };
    struct wf_policy p;
    char err[128], many[WF_POLICY_MAX_CIDRS * 16 + 64];
    size_t i, o = 0;

    for (i = 0; i < sizeof bad_cidrs / sizeof bad_cidrs[0]; i++) {
        err[0] = '\0';
        if (wf_policy_parse(&p, bad_cidrs[i], NULL, err, sizeof err) != -1)
            fprintf(stderr, "\n  %s accepted\n", bad_cidrs[i]);
        CU_ASSERT_EQUAL(wf_policy_parse(&p, bad_cidrs[i], NULL, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS"));
    }
    CU_ASSERT_EQUAL(wf_policy_parse(&p, NULL, "80,http", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad port \"http\""));
    CU_ASSERT_EQUAL(wf_policy_parse(&p, NULL, "0", err, sizeof err), -1);
    CU_ASSERT_EQUAL(wf_policy_parse(&p, NULL, "-1", err, sizeof err), -1);
    for (i = 0; i <= WF_POLICY_MAX_CIDRS; i++)
        o += (size_t)snprintf(many + o, sizeof many - o, "10.0.0.%zu/32,", i % 250);
    CU_ASSERT_EQUAL(wf_policy_parse(&p, many, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than"));
    CU_ASSERT_EQUAL(wf_policy_parse(&p, "1.2.3.4/32:80,", "443,", err, sizeof err), 0);
    CU_ASSERT_EQUAL(p.ncidrs, 1);
    CU_ASSERT_EQUAL(p.nports, 1);
}

static void test_reasons(void)
{
    struct wf_policy p;
    unsigned char a[16];
    char err[128], why[WF_POLICY_WHY_LEN];

    CU_ASSERT_EQUAL_FATAL(wf_policy_parse(&p, "127.0.0.1/32:8080", NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(wf_addr_parse_host("0x7f000001", a), 0);
    CU_ASSERT_EQUAL(wf_policy_check(&p, a, 9090, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "address 127.0.0.1 port 9090: port not in"));
    CU_ASSERT_EQUAL_FATAL(wf_addr_parse_host("::ffff:a9fe:a9fe", a), 0);
    CU_ASSERT_EQUAL(wf_policy_check(&p, a, 80, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "address 169.254.169.254 is link-local (169.254.0.0/16)"));
    CU_ASSERT_EQUAL_FATAL(wf_addr_parse_host("fd00::1", a), 0);
    CU_ASSERT_EQUAL(wf_policy_check(&p, a, 80, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "address fd00::1 is unique local (fc00::/7)"));
}

static CU_TestInfo tests[] = {
    {"loopback in every spelling", test_loopback_spellings},
    {"denied ranges and embedded IPv4", test_denied_ranges},
    {"public addresses allowed", test_public_allowed},
    {"range names", test_range_names},
    {"sockaddr forms", test_sockaddr},
    {"allowed CIDRs and ports", test_policy_lists},
    {"bad lists refused", test_policy_errors},
    {"refusal reasons", test_reasons},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"web_fetch_policy", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
