/* CRC-32C (Castagnoli, RFC 3720 iSCSI) for raftx._core.codec_c.
 *
 * Three implementations behind one entry point, chosen once at module init:
 *   - x86_64: the SSE4.2 `crc32` instruction (8 bytes per step), compiled with
 *     __attribute__((target("sse4.2"))) and used only if the CPU reports sse4.2;
 *   - aarch64 with the ARMv8 CRC extension (compile time): __crc32cd;
 *   - anywhere else: portable slicing-by-8 tables.
 * All functions work on the raw register (callers do the ~ pre/post inversion).
 * The pure-Python twin (codec_py.crc32c) is the specification.
 */
#ifndef RAFTX_CRC32C_H
#define RAFTX_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec_le.h"

#define RAFTX_CRC32C_POLY 0x82F63B78u /* 0x1EDC6F41 bit-reflected */

static uint32_t raftx_crc32c_tab[8][256];

static void raftx_crc32c_build_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ RAFTX_CRC32C_POLY : c >> 1;
        raftx_crc32c_tab[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = raftx_crc32c_tab[0][n];
        for (int t = 1; t < 8; t++) {
            c = raftx_crc32c_tab[0][c & 0xff] ^ (c >> 8);
            raftx_crc32c_tab[t][n] = c;
        }
    }
}

/* Portable slicing-by-8 (tables must be built). */
static uint32_t raftx_crc32c_table(uint32_t crc, const unsigned char *p, size_t n) {
    while (n && ((uintptr_t)p & 7)) {
        crc = raftx_crc32c_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo = raftx_load_le32(p) ^ crc;
        uint32_t hi = raftx_load_le32(p + 4);
        crc = raftx_crc32c_tab[7][lo & 0xff] ^ raftx_crc32c_tab[6][(lo >> 8) & 0xff] ^
              raftx_crc32c_tab[5][(lo >> 16) & 0xff] ^ raftx_crc32c_tab[4][lo >> 24] ^
              raftx_crc32c_tab[3][hi & 0xff] ^ raftx_crc32c_tab[2][(hi >> 8) & 0xff] ^
              raftx_crc32c_tab[1][(hi >> 16) & 0xff] ^ raftx_crc32c_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = raftx_crc32c_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RAFTX_CRC32C_X86 1
__attribute__((target("sse4.2"))) static uint32_t raftx_crc32c_sse42(uint32_t crc, const unsigned char *p,
                                                                      size_t n) {
    uint64_t c = crc;
    while (n && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    while (n--) c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

#if defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#define RAFTX_CRC32C_ARM 1
static uint32_t raftx_crc32c_arm(uint32_t crc, const unsigned char *p, size_t n) {
    while (n && ((uintptr_t)p & 7)) {
        crc = __crc32cb(crc, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        crc = __crc32cd(crc, v);
        p += 8;
        n -= 8;
    }
    while (n--) crc = __crc32cb(crc, *p++);
    return crc;
}
#endif

typedef uint32_t (*raftx_crc32c_fn)(uint32_t, const unsigned char *, size_t);
static raftx_crc32c_fn raftx_crc32c_impl = raftx_crc32c_table;
static const char *raftx_crc32c_impl_name = "table";

/* Build the tables and pick the fastest implementation this CPU supports. */
static void raftx_crc32c_init(void) {
    raftx_crc32c_build_tables();
#if defined(RAFTX_CRC32C_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        raftx_crc32c_impl = raftx_crc32c_sse42;
        raftx_crc32c_impl_name = "sse4.2";
    }
#elif defined(RAFTX_CRC32C_ARM)
    raftx_crc32c_impl = raftx_crc32c_arm;
    raftx_crc32c_impl_name = "armv8-crc";
#endif
}

/* Continue a raw (non-inverted) CRC register over n bytes. */
static inline uint32_t raftx_crc32c_update(uint32_t crc, const unsigned char *p, size_t n) {
    return raftx_crc32c_impl(crc, p, n);
}

#endif /* RAFTX_CRC32C_H */
