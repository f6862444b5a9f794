/*
 * check: `mqd --check-data DIR`, which reads a data directory as a start
 * would (datadir.h), without locking or changing it, and says what it
 * holds, as redis-check-aof does for an append-only file.
 *
 * It prints each file of the plan with its size, records and state, and
 * where a bad record is; then every topic named in the files, sorted, with
 * its next index and what its cache holds (with no cache size: everything
 * the files keep); then how many retired topics a snapshot keeps by hash
 * alone. It holds the whole state in memory, as mqd would.
 */
#ifndef MQD_CHECK_H
#define MQD_CHECK_H

#include <stdio.h>

/* check_data: the report on `out`; 0 when the directory loads as it is, 1
 * when only a torn tail of the last log is wrong (mqd cuts it at start),
 * 2 on damage, or when it cannot be read. */
int check_data(const char *dir, FILE *out);

#endif
