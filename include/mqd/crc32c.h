/*
 * crc32c: CRC-32C (Castagnoli), the checksum of the data directory's
 * records, as iSCSI, ext4 and RocksDB use it: reflected polynomial
 * 0x82F63B78, initial value and final xor 0xFFFFFFFF. The SSE4.2 crc32
 * instruction when the CPU has it (about 10 bytes a cycle), a table
 * otherwise; both give the same value.
 */
#ifndef MQD_CRC32C_H
#define MQD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc32c: the checksum of `len` bytes. crc32c("123456789", 9) is
 * 0xE3069283. O(len). */
uint32_t crc32c(const void *data, size_t len);

/* crc32c_portable: the same, always from the table (for tests). */
uint32_t crc32c_portable(const void *data, size_t len);

#endif
