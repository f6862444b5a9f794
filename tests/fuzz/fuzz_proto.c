/* fuzz_proto: any line -> proto_parse, with invariants a valid parse must keep. */
#include "mqd/json.h"
#include "mqd/proto.h"
#include "mqd/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct proto_request req;
    enum proto_status st = proto_parse(line, size, &req);
    if (st == PROTO_BAD_UTF8 && utf8_valid(line, size))
        abort();
    if (st == PROTO_OK) {
        /* a valid command is valid UTF-8 and JSON, its topic holds no NUL
         * and a send's object lies inside the line, from '{' to '}' */
        struct json_value v;
        if (!utf8_valid(line, size) || !json_scan(line, size, &v) ||
            memchr(req.topic, '\0', req.topic_len))
            abort();
        if (req.command == PROTO_SEND &&
            (req.object < line || req.object + req.object_len > line + size ||
             req.object[0] != '{' || req.object[req.object_len - 1] != '}'))
            abort();
        proto_request_release(&req);
    }
    return 0;
}
