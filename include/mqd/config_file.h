/*
 * config_file: the format of mqd's configuration file, without knowing any
 * option: one `key value` per line, e.g. `max-output 64m`.
 *
 * Space and tab (and a CR, for files written on Windows) around a line are
 * trimmed; key and value are separated by spaces or tabs. Blank lines and
 * lines whose first other character is `#` are skipped. A value is one word:
 * a line with no value, or with more after it, is an error, as are a line
 * longer than CONFIG_FILE_LINE_MAX bytes and a control character in a line.
 * What the keys mean is the caller's business (see options.h).
 */
#ifndef MQD_CONFIG_FILE_H
#define MQD_CONFIG_FILE_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_FILE_LINE_MAX 4096

/* config_visit: takes one setting. `key` and `value` live only during the
 * call. Returns 0, or -1 after writing what is wrong into `err` (the caller
 * adds the file name and line number in front). */
typedef int (*config_visit)(void *ctx, const char *key, const char *value, char *err,
                            size_t err_len);

/* config_file_read: calls `visit` for each setting of `in`, in file order,
 * stopping at the first error. `name` (the file's path) only appears in
 * messages. 0, or -1 with a one-line message such as
 * "/etc/mqd/mqd.conf:3: unknown key 'max-outptu'" or
 * "cannot read /etc/mqd/mqd.conf: Is a directory" in `err`. */
int config_file_read(FILE *in, const char *name, config_visit visit, void *ctx, char *err,
                     size_t err_len);

#endif
