/* test_peers.c - FCGI_WEB_SERVER_ADDRS: parsing, and IPv4/IPv6 peers judged by it. */
#include <arpa/inet.h>
#include <string.h>

#include "peers.h"
#include "testutil.h"

/* The peer at address text (IPv4 or IPv6) as accept4 gives it. */
static struct sockaddr_storage peer(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else {
        CU_ASSERT_FATAL(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1);
        ss.ss_family = AF_INET6;
    }
    return ss;
}

static int allowed(const struct peers *p, const char *text)
{
    struct sockaddr_storage ss = peer(text);

    return peers_allowed(p, (const struct sockaddr *)&ss);
}

static void test_no_list(void)
{
    struct peers p;
    char bad[16];

    CU_ASSERT_EQUAL(peers_parse(NULL, &p, bad, sizeof bad), 0);
    CU_ASSERT_TRUE(allowed(&p, "192.0.2.7"));
    CU_ASSERT_TRUE(allowed(&p, "2001:db8::7"));
    CU_ASSERT_EQUAL(peers_parse("", &p, bad, sizeof bad), 0);
    CU_ASSERT_TRUE(allowed(&p, "127.0.0.1"));
    CU_ASSERT_STRING_EQUAL(bad, "");
}

static void test_v4_list(void)
{
    struct peers p;
    char bad[16];

    CU_ASSERT_EQUAL(peers_parse("127.0.0.1,10.1.2.3", &p, bad, sizeof bad), 0);
    CU_ASSERT_TRUE(allowed(&p, "127.0.0.1"));
    CU_ASSERT_TRUE(allowed(&p, "10.1.2.3"));
    CU_ASSERT_FALSE(allowed(&p, "127.0.0.2"));
    CU_ASSERT_FALSE(allowed(&p, "10.1.2.4"));
    /* libfcgi let every IPv6 peer through whatever the list. */
    CU_ASSERT_FALSE(allowed(&p, "::1"));
    CU_ASSERT_FALSE(allowed(&p, "::"));
    /* An IPv4 client of a dual-stack socket is its IPv4 address. */
    CU_ASSERT_TRUE(allowed(&p, "::ffff:127.0.0.1"));
    CU_ASSERT_FALSE(allowed(&p, "::ffff:127.0.0.2"));
    /* ... but not the other embeddings (compatible, NAT64). */
    CU_ASSERT_FALSE(allowed(&p, "::127.0.0.1"));
    CU_ASSERT_FALSE(allowed(&p, "64:ff9b::127.0.0.1"));
}

static void test_v6_list(void)
{
    struct peers p;
    char bad[16];

    CU_ASSERT_EQUAL(peers_parse(" ::1 ,\t2001:db8::7", &p, bad, sizeof bad), 0);
    CU_ASSERT_TRUE(allowed(&p, "::1"));
    CU_ASSERT_TRUE(allowed(&p, "2001:0db8:0:0:0:0:0:7"));
    CU_ASSERT_FALSE(allowed(&p, "2001:db8::8"));
    CU_ASSERT_FALSE(allowed(&p, "127.0.0.1"));
    CU_ASSERT_FALSE(allowed(&p, "::ffff:127.0.0.1"));
    /* A mapped entry allows the mapped peer only as written. */
    CU_ASSERT_EQUAL(peers_parse("::ffff:127.0.0.1", &p, bad, sizeof bad), 0);
    CU_ASSERT_TRUE(allowed(&p, "::ffff:127.0.0.1"));
    CU_ASSERT_FALSE(allowed(&p, "127.0.0.1"));
}

/* An entry that is not an address matches no one: a typo refuses. */
static void test_bad_entries(void)
{
    struct peers p;
    char bad[16], small[5], long_entry[4 * INET6_ADDRSTRLEN];

    CU_ASSERT_EQUAL(peers_parse("127.0.0.1,localhost,127.1,,300.0.0.1", &p, bad, sizeof bad), 4);
    CU_ASSERT_STRING_EQUAL(bad, "localhost");
    CU_ASSERT_TRUE(allowed(&p, "127.0.0.1"));
    CU_ASSERT_FALSE(allowed(&p, "127.0.0.2"));
    CU_ASSERT_EQUAL(peers_parse("nobody", &p, bad, sizeof bad), 1);
    CU_ASSERT_FALSE(allowed(&p, "127.0.0.1"));
    CU_ASSERT_FALSE(allowed(&p, "::1"));
    CU_ASSERT_EQUAL(peers_parse(" ", &p, bad, sizeof bad), 1);
    CU_ASSERT_STRING_EQUAL(bad, "");
    CU_ASSERT_FALSE(allowed(&p, "127.0.0.1"));
    CU_ASSERT_EQUAL(peers_parse(",", &p, bad, sizeof bad), 2);
    CU_ASSERT_FALSE(allowed(&p, "127.0.0.1"));
    /* The bad entry's text is cut on a character boundary. */
    CU_ASSERT_EQUAL(peers_parse("ab\xc3\xa9x", &p, small, sizeof small), 1);
    CU_ASSERT_STRING_EQUAL(small, "ab\xc3\xa9");
    CU_ASSERT_EQUAL(peers_parse("abc\xc3\xa9", &p, small, sizeof small), 1);
    CU_ASSERT_STRING_EQUAL(small, "abc");
    /* Longer than any address (INET6_ADDRSTRLEN) is not one, and read no
     * further: at the bound and far beyond it. */
    memset(long_entry, '1', sizeof long_entry - 1);
    long_entry[sizeof long_entry - 1] = '\0';
    CU_ASSERT_EQUAL(peers_parse(long_entry, &p, bad, sizeof bad), 1);
    CU_ASSERT_EQUAL(strlen(bad), sizeof bad - 1);
    long_entry[INET6_ADDRSTRLEN] = '\0';
    CU_ASSERT_EQUAL(peers_parse(long_entry, &p, bad, sizeof bad), 1);
}

/* PEERS_MAX_ADDRS of each family; one more is left out (and said). */
static void test_bound(void)
{
    char list[PEERS_MAX_ADDRS * 2 * 24 + 64], bad[32];
    size_t len = 0;
    struct peers p;
    int i;

    for (i = 0; i <= PEERS_MAX_ADDRS; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "10.0.%d.%d,2001:db8::%x,", i / 256,
                                i % 256, i);
    list[len - 1] = '\0';
    CU_ASSERT_EQUAL(peers_parse(list, &p, bad, sizeof bad), 2);
    CU_ASSERT_STRING_EQUAL(bad, "10.0.0.64");
    CU_ASSERT_EQUAL(p.n_v4, PEERS_MAX_ADDRS);
    CU_ASSERT_EQUAL(p.n_v6, PEERS_MAX_ADDRS);
    CU_ASSERT_TRUE(allowed(&p, "10.0.0.63"));
    CU_ASSERT_TRUE(allowed(&p, "2001:db8::3f"));
    CU_ASSERT_FALSE(allowed(&p, "10.0.0.64"));
    CU_ASSERT_FALSE(allowed(&p, "2001:db8::40"));
}

/* Only IP peers are judged; anything else (AF_UNIX never reaches here) is refused. */
static void test_other_family(void)
{
    struct sockaddr sa = {.sa_family = AF_UNIX};
    struct peers p;
    char bad[16];

    CU_ASSERT_EQUAL(peers_parse("127.0.0.1", &p, bad, sizeof bad), 0);
    CU_ASSERT_FALSE(peers_allowed(&p, &sa));
}

static CU_TestInfo tests[] = {
    {"no list: every peer", test_no_list},
    {"an IPv4 list: IPv6 peers are judged too, mapped ones as IPv4", test_v4_list},
    {"an IPv6 list, blanks around entries", test_v6_list},
    {"entries that are not addresses match no one", test_bad_entries},
    {"at most PEERS_MAX_ADDRS of each family", test_bound},
    {"other families are refused", test_other_family},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"peers", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
