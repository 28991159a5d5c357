/*
 * taskmill/plugin_mp.h -- an optional msgpack reader and writer for C
 * plugins. Header-only C99, no dependency beyond the C library, every
 * function `static inline` with the tm_mp_ prefix.
 *
 * Reader: a cursor over a BORROWED buffer (e.g. tm_task.payload). Every read
 * checks the bytes left before touching them, so no input, however
 * truncated or hostile, makes it read out of bounds. A read returns 1 and
 * moves past the value, or returns 0 and leaves the cursor where it was
 * (wrong type, truncated input, number out of range), so a caller may try
 * another type. The reader never allocates. Strings and bins it returns
 * point into the input buffer.
 *
 *     tm_mp_reader r, ms;
 *     int64_t n;
 *     tm_mp_reader_init(&r, task->payload.data, task->payload.size);
 *     if (tm_mp_map_find(&r, "ms", &ms) && tm_mp_read_int(&ms, &n)) ...
 *
 * Writer: into a caller buffer (tm_mp_writer_init) or a growable one
 * (tm_mp_writer_init_growable, released with tm_mp_writer_free). A write
 * that does not fit sets `overflow`, which stays set; later writes do
 * nothing and what was written is incomplete. Check tm_mp_writer_ok() once
 * at the end.
 *
 * Integers are written in their smallest encoding, strings as str (fixstr,
 * str8/16/32), floats as float64.
 */
#ifndef TASKMILL_PLUGIN_MP_H
#define TASKMILL_PLUGIN_MP_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#ifdef __cplusplus
#define TM_MP_CAST(type, x) static_cast<type>(x)
extern "C" {
#else
#define TM_MP_CAST(type, x) ((type)(x))
#endif

/* ===================================================================== */
/* Reader                                                                */
/* ===================================================================== */

/* What tm_mp_next_type() sees next. */
#define TM_MP_INVALID 0 /* end of input, or a byte no reader accepts */
#define TM_MP_NIL 1
#define TM_MP_BOOL 2
#define TM_MP_INT 3 /* any integer encoding, signed or not */
#define TM_MP_FLOAT 4
#define TM_MP_STR 5
#define TM_MP_BIN 6
#define TM_MP_ARRAY 7
#define TM_MP_MAP 8
#define TM_MP_EXT 9 /* only tm_mp_skip() reads these */

typedef struct tm_mp_reader {
    const uint8_t* data; /* borrowed */
    size_t size;
    size_t pos; /* the next byte to read */
} tm_mp_reader;

static inline void tm_mp_reader_init(tm_mp_reader* r, const void* data, size_t size) {
    r->data = TM_MP_CAST(const uint8_t*, data);
    r->size = data != NULL ? size : 0;
    r->pos = 0;
}

/* Bytes not read yet. */
static inline size_t tm_mp_left(const tm_mp_reader* r) { return r->pos <= r->size ? r->size - r->pos : 0; }

/* 1 once every byte has been read. */
static inline int tm_mp_done(const tm_mp_reader* r) { return tm_mp_left(r) == 0; }

/* Big-endian unsigned of `n` bytes (1..8) at r->pos + at; 0 if not there. */
static inline int tm_mpi_be(const tm_mp_reader* r, size_t at, size_t n, uint64_t* out) {
    size_t i;
    uint64_t v = 0;
    if (tm_mp_left(r) < at || tm_mp_left(r) - at < n) return 0;
    for (i = 0; i < n; ++i) v = (v << 8) | r->data[r->pos + at + i];
    *out = v;
    return 1;
}

static inline int tm_mp_next_type(const tm_mp_reader* r) {
    uint8_t c;
    if (tm_mp_left(r) == 0) return TM_MP_INVALID;
    c = r->data[r->pos];
    if (c <= 0x7f || c >= 0xe0) return TM_MP_INT;
    if ((c & 0xf0) == 0x80 || c == 0xde || c == 0xdf) return TM_MP_MAP;
    if ((c & 0xf0) == 0x90 || c == 0xdc || c == 0xdd) return TM_MP_ARRAY;
    if ((c & 0xe0) == 0xa0 || (c >= 0xd9 && c <= 0xdb)) return TM_MP_STR;
    if (c == 0xc0) return TM_MP_NIL;
    if (c == 0xc2 || c == 0xc3) return TM_MP_BOOL;
    if (c >= 0xc4 && c <= 0xc6) return TM_MP_BIN;
    if (c == 0xca || c == 0xcb) return TM_MP_FLOAT;
    if (c >= 0xcc && c <= 0xd3) return TM_MP_INT;
    if ((c >= 0xc7 && c <= 0xc9) || (c >= 0xd4 && c <= 0xd8)) return TM_MP_EXT;
    return TM_MP_INVALID; /* 0xc1, never used */
}

static inline int tm_mp_read_nil(tm_mp_reader* r) {
    if (tm_mp_next_type(r) != TM_MP_NIL) return 0;
    r->pos += 1;
    return 1;
}

static inline int tm_mp_read_bool(tm_mp_reader* r, int* out) {
    if (tm_mp_next_type(r) != TM_MP_BOOL) return 0;
    *out = r->data[r->pos] == 0xc3;
    r->pos += 1;
    return 1;
}

/* Any integer encoding, as a sign and a magnitude; 0 if not an integer or
 * truncated. Moves nothing. `len` gets the encoded size. */
static inline int tm_mpi_peek_int(const tm_mp_reader* r, int* negative, uint64_t* bits, size_t* len) {
    uint8_t c;
    size_t n;
    if (tm_mp_next_type(r) != TM_MP_INT) return 0;
    c = r->data[r->pos];
    if (c <= 0x7f || c >= 0xe0) {
        *negative = c >= 0xe0;
        *bits = c >= 0xe0 ? (UINT64_MAX << 8) | c : c; /* sign-extended two's complement */
        *len = 1;
        return 1;
    }
    n = TM_MP_CAST(size_t, 1) << (c >= 0xd0 ? c - 0xd0 : c - 0xcc);
    if (!tm_mpi_be(r, 1, n, bits)) return 0;
    *negative = 0;
    if (c >= 0xd0 && n < 8 && (*bits >> (8 * n - 1)) != 0) *bits |= UINT64_MAX << (8 * n);
    if (c >= 0xd0) *negative = (*bits >> 63) != 0;
    *len = 1 + n;
    return 1;
}

/* A signed integer; 0 for a uint64 above INT64_MAX. */
static inline int tm_mp_read_int(tm_mp_reader* r, int64_t* out) {
    int negative;
    uint64_t bits;
    size_t len;
    if (!tm_mpi_peek_int(r, &negative, &bits, &len)) return 0;
    if (!negative && bits > TM_MP_CAST(uint64_t, INT64_MAX)) return 0;
    if (negative) {
        /* two's complement back to signed without implementation-defined casts */
        *out = -TM_MP_CAST(int64_t, ~bits) - 1;
    } else {
        *out = TM_MP_CAST(int64_t, bits);
    }
    r->pos += len;
    return 1;
}

/* A non-negative integer of any encoding. */
static inline int tm_mp_read_uint(tm_mp_reader* r, uint64_t* out) {
    int negative;
    uint64_t bits;
    size_t len;
    if (!tm_mpi_peek_int(r, &negative, &bits, &len) || negative) return 0;
    *out = bits;
    r->pos += len;
    return 1;
}

/* A float32/float64, or an integer converted to double. */
static inline int tm_mp_read_float(tm_mp_reader* r, double* out) {
    uint64_t bits;
    int64_t i;
    uint8_t c;
    if (tm_mp_next_type(r) == TM_MP_INT) {
        if (tm_mp_read_int(r, &i)) {
            *out = TM_MP_CAST(double, i);
            return 1;
        }
        if (!tm_mp_read_uint(r, &bits)) return 0;
        *out = TM_MP_CAST(double, bits);
        return 1;
    }
    if (tm_mp_next_type(r) != TM_MP_FLOAT) return 0;
    c = r->data[r->pos];
    if (c == 0xca) {
        uint32_t b32;
        float f;
        if (!tm_mpi_be(r, 1, 4, &bits)) return 0;
        b32 = TM_MP_CAST(uint32_t, bits);
        memcpy(&f, &b32, sizeof f);
        *out = f;
        r->pos += 5;
        return 1;
    }
    if (!tm_mpi_be(r, 1, 8, &bits)) return 0;
    memcpy(out, &bits, sizeof *out);
    r->pos += 9;
    return 1;
}

/* Header of a str/bin/array/map: the count and the header's size. */
static inline int tm_mpi_header(const tm_mp_reader* r, uint64_t* count, size_t* len) {
    uint8_t c = r->data[r->pos];
    size_t n = 0;
    if ((c & 0xe0) == 0xa0 || (c & 0xf0) == 0x80 || (c & 0xf0) == 0x90) {
        *count = (c & 0xe0) == 0xa0 ? (c & 0x1fu) : (c & 0x0fu);
        *len = 1;
        return 1;
    }
    switch (c) {
        case 0xc4:
        case 0xd9: n = 1; break;
        case 0xc5:
        case 0xda:
        case 0xdc:
        case 0xde: n = 2; break;
        case 0xc6:
        case 0xdb:
        case 0xdd:
        case 0xdf: n = 4; break;
        default: return 0;
    }
    if (!tm_mpi_be(r, 1, n, count)) return 0;
    *len = 1 + n;
    return 1;
}

/* str or bin: the bytes, borrowed from the input. */
static inline int tm_mpi_read_blob(tm_mp_reader* r, int type, const uint8_t** data, size_t* size) {
    uint64_t n;
    size_t len;
    if (tm_mp_next_type(r) != type || !tm_mpi_header(r, &n, &len)) return 0;
    if (n > tm_mp_left(r) - len) return 0;
    *data = r->data + r->pos + len;
    *size = TM_MP_CAST(size_t, n);
    r->pos += len + TM_MP_CAST(size_t, n);
    return 1;
}

/* A string, borrowed from the input; not NUL-terminated. */
static inline int tm_mp_read_str(tm_mp_reader* r, tm_str* out) {
    const uint8_t* data;
    size_t size;
    if (!tm_mpi_read_blob(r, TM_MP_STR, &data, &size)) return 0;
    out->data = TM_MP_CAST(const char*, TM_MP_CAST(const void*, data));
    out->size = size;
    return 1;
}

/* A bin, borrowed from the input. */
static inline int tm_mp_read_bin(tm_mp_reader* r, tm_bytes* out) {
    return tm_mpi_read_blob(r, TM_MP_BIN, &out->data, &out->size);
}

/* An array or map header. The count is checked against the input (every
 * element takes at least one byte), so a hostile count cannot make a
 * caller loop far past the end. */
static inline int tm_mpi_read_container(tm_mp_reader* r, int type, uint32_t* count) {
    uint64_t n;
    size_t len;
    uint64_t per_item = type == TM_MP_MAP ? 2 : 1;
    if (tm_mp_next_type(r) != type || !tm_mpi_header(r, &n, &len)) return 0;
    if (n > (tm_mp_left(r) - len) / per_item) return 0;
    *count = TM_MP_CAST(uint32_t, n);
    r->pos += len;
    return 1;
}

/* An array header; then read `*count` values. */
static inline int tm_mp_read_array(tm_mp_reader* r, uint32_t* count) {
    return tm_mpi_read_container(r, TM_MP_ARRAY, count);
}

/* A map header; then read `*count` key/value pairs. */
static inline int tm_mp_read_map(tm_mp_reader* r, uint32_t* count) {
    return tm_mpi_read_container(r, TM_MP_MAP, count);
}

/* Skips one whole value (containers with all they hold). Iterative, so
 * nesting depth costs no stack; the work is bounded by the input size. 0,
 * and nothing moved, if the value is malformed or truncated. */
static inline int tm_mp_skip(tm_mp_reader* r) {
    tm_mp_reader t = *r;
    uint64_t pending = 1; /* values still to skip */
    while (pending > 0) {
        uint64_t n = 0;
        size_t len = 0;
        uint8_t c;
        int type = tm_mp_next_type(&t);
        if (pending > tm_mp_left(&t)) return 0; /* each value takes a byte */
        pending -= 1;
        c = type != TM_MP_INVALID ? t.data[t.pos] : 0;
        switch (type) {
            case TM_MP_NIL:
            case TM_MP_BOOL: len = 1; break;
            case TM_MP_INT:
                len = (c <= 0x7f || c >= 0xe0) ? 1 : 1 + (TM_MP_CAST(size_t, 1) << (c >= 0xd0 ? c - 0xd0 : c - 0xcc));
                break;
            case TM_MP_FLOAT: len = c == 0xca ? 5 : 9; break;
            case TM_MP_STR:
            case TM_MP_BIN:
                if (!tm_mpi_header(&t, &n, &len) || n > tm_mp_left(&t) - len) return 0;
                len += TM_MP_CAST(size_t, n);
                break;
            case TM_MP_ARRAY:
            case TM_MP_MAP:
                if (!tm_mpi_header(&t, &n, &len)) return 0;
                pending += type == TM_MP_MAP ? 2 * n : n;
                break;
            case TM_MP_EXT:
                if (c >= 0xd4) {
                    len = 2 + (TM_MP_CAST(size_t, 1) << (c - 0xd4)); /* fixext 1..16 */
                } else {
                    size_t w = TM_MP_CAST(size_t, 1) << (c - 0xc7); /* ext 8/16/32 */
                    if (!tm_mpi_be(&t, 1, w, &n) || n > tm_mp_left(&t) - (2 + w)) return 0;
                    len = 2 + w + TM_MP_CAST(size_t, n);
                }
                break;
            default: return 0;
        }
        if (len > tm_mp_left(&t)) return 0;
        t.pos += len;
    }
    *r = t;
    return 1;
}

/* Looks up `key` in the map at the reader's position, without moving the
 * reader. On 1, `value` is a reader positioned on the key's value. 0 if the
 * next value is not a map, is malformed before the key, or has no such
 * string key. */
static inline int tm_mp_map_find_n(const tm_mp_reader* r, const char* key, size_t key_size, tm_mp_reader* value) {
    tm_mp_reader t = *r;
    uint32_t count;
    uint32_t i;
    if (!tm_mp_read_map(&t, &count)) return 0;
    for (i = 0; i < count; ++i) {
        tm_str k;
        int is_str = tm_mp_read_str(&t, &k);
        if (!is_str && !tm_mp_skip(&t)) return 0; /* a non-string key, or a malformed one */
        if (is_str && k.size == key_size && (key_size == 0 || memcmp(k.data, key, key_size) == 0)) {
            *value = t;
            return 1;
        }
        if (!tm_mp_skip(&t)) return 0; /* the value */
    }
    return 0;
}

/* tm_mp_map_find_n for a NUL-terminated key. */
static inline int tm_mp_map_find(const tm_mp_reader* r, const char* key, tm_mp_reader* value) {
    return tm_mp_map_find_n(r, key, strlen(key), value);
}

/* ===================================================================== */
/* Writer                                                                */
/* ===================================================================== */

typedef struct tm_mp_writer {
    uint8_t* data;
    size_t size;     /* bytes written */
    size_t capacity; /* bytes available at data */
    int overflow;    /* set once a write did not fit; stays set */
    int growable;    /* data is malloc'd by the writer */
} tm_mp_writer;

/* Writes into `buffer` (capacity bytes), never beyond. */
static inline void tm_mp_writer_init(tm_mp_writer* w, void* buffer, size_t capacity) {
    w->data = TM_MP_CAST(uint8_t*, buffer);
    w->size = 0;
    w->capacity = buffer != NULL ? capacity : 0;
    w->overflow = 0;
    w->growable = 0;
}

/* Writes into a buffer that grows with malloc/realloc; release it with
 * tm_mp_writer_free() (also after an overflow, i.e. out of memory). */
static inline void tm_mp_writer_init_growable(tm_mp_writer* w) {
    tm_mp_writer_init(w, NULL, 0);
    w->growable = 1;
}

static inline void tm_mp_writer_free(tm_mp_writer* w) {
    if (w->growable) free(w->data);
    w->data = NULL;
    w->size = 0;
    w->capacity = 0;
}

/* 1 if every write so far fitted. */
static inline int tm_mp_writer_ok(const tm_mp_writer* w) { return !w->overflow; }

/* What was written, e.g. for host->set_result(). Borrowed from the writer. */
static inline tm_bytes tm_mp_writer_bytes(const tm_mp_writer* w) {
    tm_bytes b;
    b.data = w->data;
    b.size = w->size;
    return b;
}

/* Makes room for n more bytes; 0 (and overflow set) if there is none. */
static inline int tm_mpi_reserve(tm_mp_writer* w, size_t n) {
    size_t want;
    uint8_t* grown;
    if (w->overflow) return 0;
    if (n <= w->capacity - w->size) return 1;
    if (!w->growable || n > SIZE_MAX / 2 - w->size) {
        w->overflow = 1;
        return 0;
    }
    want = w->capacity < 64 ? 64 : w->capacity;
    while (want - w->size < n) want *= 2;
    grown = TM_MP_CAST(uint8_t*, realloc(w->data, want));
    if (grown == NULL) {
        w->overflow = 1;
        return 0;
    }
    w->data = grown;
    w->capacity = want;
    return 1;
}

static inline void tm_mpi_put(tm_mp_writer* w, const void* bytes, size_t n) {
    if (n == 0 || !tm_mpi_reserve(w, n)) return;
    memcpy(w->data + w->size, bytes, n);
    w->size += n;
}

/* A type byte followed by `n` big-endian bytes of v, written at once. */
static inline void tm_mpi_put_be(tm_mp_writer* w, uint8_t tag, uint64_t v, size_t n) {
    uint8_t buf[9];
    size_t i;
    buf[0] = tag;
    for (i = 0; i < n; ++i) buf[1 + i] = TM_MP_CAST(uint8_t, v >> (8 * (n - 1 - i)));
    tm_mpi_put(w, buf, 1 + n);
}

static inline void tm_mp_write_nil(tm_mp_writer* w) { tm_mpi_put_be(w, 0xc0, 0, 0); }

static inline void tm_mp_write_bool(tm_mp_writer* w, int b) { tm_mpi_put_be(w, b ? 0xc3 : 0xc2, 0, 0); }

static inline void tm_mp_write_uint(tm_mp_writer* w, uint64_t v) {
    if (v <= 0x7f) {
        tm_mpi_put_be(w, TM_MP_CAST(uint8_t, v), 0, 0);
    } else if (v <= 0xff) {
        tm_mpi_put_be(w, 0xcc, v, 1);
    } else if (v <= 0xffff) {
        tm_mpi_put_be(w, 0xcd, v, 2);
    } else if (v <= 0xffffffffu) {
        tm_mpi_put_be(w, 0xce, v, 4);
    } else {
        tm_mpi_put_be(w, 0xcf, v, 8);
    }
}

static inline void tm_mp_write_int(tm_mp_writer* w, int64_t v) {
    uint64_t bits = TM_MP_CAST(uint64_t, v); /* two's complement, defined for unsigned */
    if (v >= 0) {
        tm_mp_write_uint(w, bits);
    } else if (v >= -32) {
        tm_mpi_put_be(w, TM_MP_CAST(uint8_t, bits & 0xff), 0, 0);
    } else if (v >= INT8_MIN) {
        tm_mpi_put_be(w, 0xd0, bits, 1);
    } else if (v >= INT16_MIN) {
        tm_mpi_put_be(w, 0xd1, bits, 2);
    } else if (v >= INT32_MIN) {
        tm_mpi_put_be(w, 0xd2, bits, 4);
    } else {
        tm_mpi_put_be(w, 0xd3, bits, 8);
    }
}

static inline void tm_mp_write_float(tm_mp_writer* w, double d) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    tm_mpi_put_be(w, 0xcb, bits, 8);
}

/* A str/bin/array/map header of count n in the smallest form. fix is the
 * fix-form tag (0 if none) for counts up to fix_max. */
static inline void tm_mpi_put_header(tm_mp_writer* w, uint64_t n, uint8_t fix, uint64_t fix_max, uint8_t c8,
                                     uint8_t c16, uint8_t c32) {
    if (fix != 0 && n <= fix_max) {
        tm_mpi_put_be(w, TM_MP_CAST(uint8_t, fix | n), 0, 0);
    } else if (c8 != 0 && n <= 0xff) {
        tm_mpi_put_be(w, c8, n, 1);
    } else if (n <= 0xffff) {
        tm_mpi_put_be(w, c16, n, 2);
    } else if (n <= 0xffffffffu) {
        tm_mpi_put_be(w, c32, n, 4);
    } else {
        w->overflow = 1; /* msgpack cannot say it */
    }
}

/* A UTF-8 string of `size` bytes (need not be NUL-terminated). */
static inline void tm_mp_write_str_n(tm_mp_writer* w, const char* s, size_t size) {
    tm_mpi_put_header(w, size, 0xa0, 31, 0xd9, 0xda, 0xdb);
    tm_mpi_put(w, s, size);
}

static inline void tm_mp_write_str(tm_mp_writer* w, const char* s) { tm_mp_write_str_n(w, s, strlen(s)); }

static inline void tm_mp_write_bin(tm_mp_writer* w, const void* data, size_t size) {
    tm_mpi_put_header(w, size, 0, 0, 0xc4, 0xc5, 0xc6);
    tm_mpi_put(w, data, size);
}

/* An array header: write `count` values after it. */
static inline void tm_mp_write_array(tm_mp_writer* w, uint32_t count) {
    tm_mpi_put_header(w, count, 0x90, 15, 0, 0xdc, 0xdd);
}

/* A map header: write `count` key/value pairs after it. */
static inline void tm_mp_write_map(tm_mp_writer* w, uint32_t count) {
    tm_mpi_put_header(w, count, 0x80, 15, 0, 0xde, 0xdf);
}

/* Copies one whole value from a reader (e.g. part of the payload) into the
 * writer; 0 if the value is malformed (nothing is written then). */
static inline int tm_mp_write_copy(tm_mp_writer* w, tm_mp_reader* r) {
    size_t from = r->pos;
    if (!tm_mp_skip(r)) return 0;
    tm_mpi_put(w, r->data + from, r->pos - from);
    return 1;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TASKMILL_PLUGIN_MP_H */
