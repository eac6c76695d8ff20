/* Unaligned little-endian loads and stores for raftx._core.codec_c (any host byte order). */
#ifndef RAFTX_CODEC_LE_H
#define RAFTX_CODEC_LE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define RAFTX_LE32(x) __builtin_bswap32(x)
#define RAFTX_LE64(x) __builtin_bswap64(x)
#else
#define RAFTX_LE32(x) (x)
#define RAFTX_LE64(x) (x)
#endif

static inline uint32_t raftx_load_le32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return RAFTX_LE32(v);
}

static inline uint64_t raftx_load_le64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return RAFTX_LE64(v);
}

static inline void raftx_store_le32(unsigned char *p, uint32_t v) {
    v = RAFTX_LE32(v);
    memcpy(p, &v, 4);
}

static inline void raftx_store_le64(unsigned char *p, uint64_t v) {
    v = RAFTX_LE64(v);
    memcpy(p, &v, 8);
}

#endif /* RAFTX_CODEC_LE_H */
