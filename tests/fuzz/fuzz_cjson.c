/* fuzz_cjson: any line that proto_parse accepts reads the same to cJSON
 * (see tests/unit/cjson_agree.h): the strict parser and an independent one
 * agree on every command mqd runs. */
#include "../unit/cjson_agree.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    if (cjson_agree_line((const char *)data, size, why, sizeof(why)) == CJSON_DISAGREES) {
        fprintf(stderr, "fuzz_cjson: %s\n", why);
        abort();
    }
    return 0;
}
