#include "mqd/alloc.h"

#include <stdlib.h>

void *mqd_malloc(size_t size) { return malloc(size); }
void *mqd_calloc(size_t count, size_t size) { return calloc(count, size); }
void *mqd_realloc(void *ptr, size_t size) { return realloc(ptr, size); }
void mqd_free(void *ptr) { free(ptr); }
