#include "mqd/alloc.h"

#include <stdlib.h>

void *alloc_system_malloc(size_t size) { return malloc(size); }
void *alloc_system_calloc(size_t count, size_t size) { return calloc(count, size); }
void *alloc_system_realloc(void *ptr, size_t size) { return realloc(ptr, size); }
