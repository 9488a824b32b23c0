/*
 * hash_sha256.c - jarvis.core.hash.sha256: the SHA-256 of `content_base64`
 * (decoded) or else of `text` encoded with `encoding`, as lowercase hex.
 *
 * As the reference: base64 is decoded as base64.b64decode(s, validate=True)
 * does on CPython 3.12.4 and later (the alphabet only, groups of four, at
 * most two '=' and only at the end); an encoding name is looked up as
 * codecs.lookup() does (case-insensitive, punctuation runs as '_', its alias
 * table), for the three codecs this node knows: UTF-8, ASCII and Latin-1.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "jarvis/node.h"
#include "jarvis/util.h"
#include "nodes.h"

enum text_codec { CODEC_UNKNOWN = 0, CODEC_UTF8, CODEC_ASCII, CODEC_LATIN1 };

/* Python's names for the three codecs: alias keys of encodings.aliases, and
 * the codec modules' own names (found by import, so never with a '.'). */
static const struct {
    const char *name;
    enum text_codec codec;
    int is_module;
} codec_names[] = {
    {"utf_8", CODEC_UTF8, 1},
    {"u8", CODEC_UTF8, 0},
    {"utf", CODEC_UTF8, 0},
    {"utf8", CODEC_UTF8, 0},
    {"utf8_ucs2", CODEC_UTF8, 0},
    {"utf8_ucs4", CODEC_UTF8, 0},
    {"cp65001", CODEC_UTF8, 0},
    {"ascii", CODEC_ASCII, 1},
    {"646", CODEC_ASCII, 0},
    {"ansi_x3.4_1968", CODEC_ASCII, 0},
    {"ansi_x3.4_1986", CODEC_ASCII, 0},
    {"ansi_x3_4_1968", CODEC_ASCII, 0},
    {"cp367", CODEC_ASCII, 0},
    {"csascii", CODEC_ASCII, 0},
    {"ibm367", CODEC_ASCII, 0},
    {"iso646_us", CODEC_ASCII, 0},
    {"iso_646.irv_1991", CODEC_ASCII, 0},
    {"iso_ir_6", CODEC_ASCII, 0},
    {"us", CODEC_ASCII, 0},
    {"us_ascii", CODEC_ASCII, 0},
    {"latin_1", CODEC_LATIN1, 1},
    {"iso8859_1", CODEC_LATIN1, 1},
    {"8859", CODEC_LATIN1, 0},
    {"cp819", CODEC_LATIN1, 0},
    {"csisolatin1", CODEC_LATIN1, 0},
    {"ibm819", CODEC_LATIN1, 0},
    {"iso8859", CODEC_LATIN1, 0},
    {"iso_8859_1", CODEC_LATIN1, 0},
    {"iso_8859_1_1987", CODEC_LATIN1, 0},
    {"iso_ir_100", CODEC_LATIN1, 0},
    {"l1", CODEC_LATIN1, 0},
    {"latin", CODEC_LATIN1, 0},
    {"latin1", CODEC_LATIN1, 0},
};

#define CODEC_NAME_MAX 64

/* name as encodings.normalize_encoding() leaves it, lowercased: runs of
 * characters other than ASCII letters, digits and '.' become one '_', none
 * at either end. -1 when it is too long or not ASCII (Python would also
 * know no codec by a name we cannot normalize the same way). */
static int normalize_codec_name(const char *name, char out[CODEC_NAME_MAX])
{
    size_t o = 0;
    int punct = 0;

    for (; *name != '\0'; name++) {
        unsigned char c = (unsigned char)*name;
        if (c >= 0x80)
            return -1;
        if (!isalnum(c) && c != '.') {
            punct = 1;
            continue;
        }
        if (o + 2 >= CODEC_NAME_MAX)
            return -1;
        if (punct && o > 0)
            out[o++] = '_';
        out[o++] = (char)tolower(c);
        punct = 0;
    }
    out[o] = '\0';
    return 0;
}

static enum text_codec codec_lookup(const char *name)
{
    char norm[CODEC_NAME_MAX], undotted[CODEC_NAME_MAX];
    size_t i;

    if (normalize_codec_name(name, norm) != 0)
        return CODEC_UNKNOWN;
    memcpy(undotted, norm, sizeof norm);
    for (i = 0; undotted[i] != '\0'; i++)
        if (undotted[i] == '.')
            undotted[i] = '_';
    for (i = 0; i < sizeof codec_names / sizeof codec_names[0]; i++) {
        if (strcmp(norm, codec_names[i].name) == 0)
            return codec_names[i].codec;
        if (!codec_names[i].is_module && strcmp(undotted, codec_names[i].name) == 0)
            return codec_names[i].codec;
    }
    return CODEC_UNKNOWN;
}

/*
 * text (UTF-8, len bytes) as str.encode(codec) would give it, into out (room
 * for len bytes; UTF-8 and ASCII come out unchanged). Returns the encoded
 * length, or -1 after jarvis_ctx_fail with the offending code point.
 */
static long encode_text(jarvis_ctx *ctx, enum text_codec codec, const char *text, size_t len,
                        unsigned char *out)
{
    size_t i = 0, o = 0, pos = 0, step;
    uint32_t cp;

    for (; i < len; i += step, pos++) {
        step = jarvis_utf8_next(text + i, len - i, &cp);
        if (step == 0)
            return jarvis_ctx_fail(ctx, "text is not valid UTF-8 at byte %zu", i);
        if (codec == CODEC_ASCII && cp > 0x7f)
            return jarvis_ctx_fail(ctx, "text: 'ascii' cannot encode U+%04lX at position %zu",
                                   (unsigned long)cp, pos);
        if (codec == CODEC_LATIN1 && cp > 0xff)
            return jarvis_ctx_fail(ctx, "text: 'latin-1' cannot encode U+%04lX at position %zu",
                                   (unsigned long)cp, pos);
        if (codec == CODEC_LATIN1)
            out[o++] = (unsigned char)cp;
        else {
            memcpy(out + o, text + i, step);
            o += step;
        }
    }
    return (long)o;
}

static int emit_digest(jarvis_ctx *ctx, const unsigned char *data, size_t len,
                       json_object **outputs)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    char text[2 * EVP_MAX_MD_SIZE + 1];

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return jarvis_ctx_fail(ctx, "sha256: EVP_Digest failed");
    for (i = 0; i < mdlen; i++) {
        text[2 * i] = hex[md[i] >> 4];
        text[2 * i + 1] = hex[md[i] & 0x0f];
    }
    text[2 * mdlen] = '\0';
    return core_output_one(ctx, outputs, "sha256", json_object_new_string(text));
}

/* The member `key`, or NULL when it is absent or JSON null. Borrowed. */
static json_object *member(json_object *inputs, const char *key)
{
    json_object *v = NULL;

    json_object_object_get_ex(inputs, key, &v);
    return v;
}

/* The bytes to hash from content_base64 or text, into a new buffer. */
static int input_bytes(jarvis_ctx *ctx, json_object *b64, json_object *text, const char *encoding,
                       unsigned char **data, long *len)
{
    json_object *src = b64 != NULL ? b64 : text;
    const char *s = json_object_get_string(src), *why = "";
    size_t n = (size_t)json_object_get_string_len(src);
    enum text_codec codec = CODEC_UTF8;

    if (!json_object_is_type(src, json_type_string))
        return jarvis_ctx_fail(ctx, "%s must be a string", b64 != NULL ? "content_base64" : "text");
    if (b64 == NULL && (codec = codec_lookup(encoding)) == CODEC_UNKNOWN)
        return jarvis_ctx_fail(ctx, "encoding: unknown or unsupported encoding '%s'", encoding);
    *data = malloc(n > 0 ? n : 1);
    if (*data == NULL)
        return jarvis_ctx_fail(ctx, "out of memory");
    if (b64 != NULL) {
        *len = jarvis_base64_decode(s, n, JARVIS_BASE64_STRICT, *data, n > 0 ? n : 1, &why);
        if (*len < 0)
            return jarvis_ctx_fail(ctx, "content_base64 is not valid base64: %s", why);
        return JARVIS_OK;
    }
    *len = encode_text(ctx, codec, s, n, *data);
    return *len < 0 ? JARVIS_ERR_HANDLER : JARVIS_OK;
}

static int hash_sha256_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    json_object *b64 = member(inputs, "content_base64"), *text = member(inputs, "text");
    json_object *enc = member(inputs, "encoding");
    const char *encoding = "utf-8";
    unsigned char *data = NULL;
    long len = 0;
    int rc;

    if (b64 == NULL && text == NULL)
        return jarvis_ctx_fail(ctx, "provide either content_base64 or text");
    /* As the reference, checked even when content_base64 leaves it unused. */
    if (enc != NULL && !json_object_is_type(enc, json_type_string))
        return jarvis_ctx_fail(ctx, "encoding must be a string");
    if (enc != NULL && json_object_get_string_len(enc) > 0)
        encoding = json_object_get_string(enc);
    rc = input_bytes(ctx, b64, text, encoding, &data, &len);
    if (rc == JARVIS_OK)
        rc = emit_digest(ctx, data, (size_t)len, outputs);
    free(data);
    return rc;
}

const jarvis_node core_node_hash_sha256 = {
    .node_type_id = "jarvis.core.hash.sha256",
    .version = "0.3.8",
    .description = "Computes the SHA-256 of `content_base64` (preferred) or of `text` encoded "
                   "with `encoding` (default utf-8), as lowercase hex.",
    .input_schema = "{\"type\":\"object\",\"properties\":{"
                    "\"content_base64\":{\"type\":[\"string\",\"null\"]},"
                    "\"text\":{\"type\":[\"string\",\"null\"]},"
                    "\"encoding\":{\"type\":[\"string\",\"null\"]}},"
                    "\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"properties\":{"
                     "\"sha256\":{\"type\":\"string\",\"minLength\":64,\"maxLength\":64}},"
                     "\"required\":[\"sha256\"],\"additionalProperties\":false}",
    .side_effect = JARVIS_SIDE_EFFECT_READ,
    .handler = hash_sha256_handler,
};
