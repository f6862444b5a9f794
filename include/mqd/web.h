/*
 * web: the web console's files, built into the binary from web/ and the
 * JavaScript client (clients/js/src), for ws.h to serve on the WebSocket
 * port: no CDN, no framework, nothing read from disk at run time.
 */
#ifndef MQD_WEB_H
#define MQD_WEB_H

#include <stddef.h>

struct web_file {
    const char *path; /* "/console.js" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
};

/* web_find: the file served at the `len` bytes of `path` ("/" is
 * "/index.html"), or NULL. O(files). */
const struct web_file *web_find(const char *path, size_t len);

/* the files, in web_files.c, which CMake writes from the sources */
extern const struct web_file web_files[];
extern const size_t web_file_count;

#endif
