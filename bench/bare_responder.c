/* A bare libfcgi responder: the ceiling bench/throughput measures the
 * executor against. One request at a time per process (run it under
 * spawn-fcgi + multiwatch for a pool), no parsing, no logging: it drains the
 * request body and answers a fixed JSON body with 200. */
#include <stdio.h>
#include <string.h>

#include <fcgiapp.h>

static const char BODY[] = "{\"node_run_id\":\"bare\",\"state\":\"succeeded\","
                           "\"outputs\":{\"echo\":\"pong\"}}";

int main(void)
{
    FCGX_Request req;
    char header[128];
    char sink[4096];
    int header_len;

    if (FCGX_Init() != 0) {
        fputs("jarvis-bare-responder: FCGX_Init failed\n", stderr);
        return 1;
    }
    /* Socket 0: the listening socket spawn-fcgi hands over. */
    if (FCGX_InitRequest(&req, 0, 0) != 0) {
        fputs("jarvis-bare-responder: FCGX_InitRequest failed\n", stderr);
        return 1;
    }
    header_len = snprintf(header, sizeof header,
                          "Status: 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          sizeof BODY - 1);
    if (header_len < 0 || (size_t)header_len >= sizeof header)
        return 1;

    while (FCGX_Accept_r(&req) >= 0) {
        /* Read the body as a real responder would before it answers. */
        while (FCGX_GetStr(sink, (int)sizeof sink, req.in) > 0) {
        }
        FCGX_PutStr(header, header_len, req.out);
        FCGX_PutStr(BODY, (int)(sizeof BODY - 1), req.out);
        FCGX_Finish_r(&req);
    }
    return 0;
}
