/*
 * fuzz_util.c - the invariants shared by the fuzz targets (fuzz_util.h).
 */
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "log.h"
#include "utf8.h"

void fz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", file, line, what);
    __builtin_trap();
}

char *fz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    FZ_CHECK(s != NULL);
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

void fz_check_json(json_object *v)
{
    struct resp err;
    json_object *back = NULL;
    size_t len = 0;
    const char *text = resp_json_text(v, &len);

    FZ_CHECK(text != NULL && strlen(text) == len);
    FZ_CHECK(jarvis_utf8_valid(text, len));
    resp_init(&err);
    FZ_CHECK(body_parse_json(text, len, len + FZ_REPARSE_SLACK, &back, &err) == 0);
    FZ_CHECK(json_object_equal(v, back));
    json_object_put(back);
    resp_cleanup(&err);
}

static int known_status(int status)
{
    static const int known[] = {200, 204, 400, 401, 404, 405, 409, 411, 413, 414, 415, 500, 503};
    size_t i;

    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i] == status)
            return 1;
    return 0;
}

void fz_check_resp(const struct resp *r)
{
    json_object *err = NULL, *code = NULL, *msg = NULL;
    size_t i;

    FZ_CHECK(known_status(r->status));
    /* r->reason may hold the client's bytes as sent: it goes to the log
     * only, which writes bytes that are not UTF-8 as \xNN (log.c). */
    FZ_CHECK(strlen(r->reason) < sizeof r->reason);
    for (i = 0; i < r->n_headers; i++)
        for (const char *p = r->headers[i].value; *p != '\0'; p++)
            FZ_CHECK((unsigned char)*p >= ' ' && *p != 0x7f);
    if (r->body == NULL) {
        FZ_CHECK(r->status == 204);
        return;
    }
    fz_check_json(r->body);
    if (r->status < 400)
        return;
    FZ_CHECK(json_object_object_get_ex(r->body, "error", &err));
    FZ_CHECK(json_object_object_get_ex(err, "code", &code));
    FZ_CHECK(json_object_object_get_ex(err, "message", &msg));
    FZ_CHECK(json_object_is_type(code, json_type_string));
    FZ_CHECK(json_object_is_type(msg, json_type_string));
    FZ_CHECK(r->error_code != NULL && strcmp(r->error_code, json_object_get_string(code)) == 0);
}

long fz_body_read(void *arg, char *buf, size_t len)
{
    struct fz_body *f = arg;
    size_t n = f->len - f->pos;

    if (n > len)
        n = len;
    memcpy(buf, f->data + f->pos, n);
    f->pos += n;
    return (long)n;
}

void fz_quiet(void)
{
    log_set_level(JARVIS_LOG_ERROR);
}
